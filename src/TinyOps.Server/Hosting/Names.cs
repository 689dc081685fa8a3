namespace TinyOps.Server.Hosting;

/// <summary>Validation of user-chosen names (projects, models, versions, tags).</summary>
public static class Names
{
    public static void Require(string? value, string what)
    {
        if (string.IsNullOrWhiteSpace(value)) throw ApiException.BadRequest($"{what} is required");
        if (value.Length > 100) throw ApiException.BadRequest($"{what} '{value[..20]}...' is longer than 100 characters");
        foreach (char ch in value)
            if (!(char.IsAsciiLetterOrDigit(ch) || ch is '-' or '_' or '.' or ':'))
                throw ApiException.BadRequest($"{what} '{value}' may contain only letters, digits, '-', '_', '.' and ':'");
    }
}
