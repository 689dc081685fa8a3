namespace TinyOps.Server.Hosting;

/// <summary>Validation of user-chosen names (projects, models, versions, tags).</summary>
public static class Names
{
    /// <summary>Refuses an empty, over-long or oddly spelled name with 400; <paramref name="field"/> names the request field at fault.</summary>
    public static void Require(string? value, string what, string? field = null)
    {
        ApiException Bad(string detail) => field is null ? ApiException.BadRequest(detail) : ApiException.BadField(field, detail);
        if (string.IsNullOrWhiteSpace(value)) throw Bad($"{what} is required");
        if (value.Length > 100) throw Bad($"{what} '{value[..20]}...' is longer than 100 characters");
        foreach (char ch in value)
            if (!(char.IsAsciiLetterOrDigit(ch) || ch is '-' or '_' or '.' or ':'))
                throw Bad($"{what} '{value}' may contain only letters, digits, '-', '_', '.' and ':'");
    }
}
