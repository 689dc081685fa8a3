using System.Globalization;

namespace TinyOps.Optimize.Recipes;

/// <summary>
/// Reads and checks one pass's parameters for <see cref="PassCatalog"/>: each read names the parameter, every error
/// says where (<see cref="Where"/>: file, variant, pass) and what is allowed, and <see cref="CheckAllUsed"/> refuses
/// parameters the pass does not know. Errors carry the parameter's path (<paramref name="field"/>.name) in
/// <see cref="RecipeException.Field"/>.
/// </summary>
public sealed class PassParameters(PassSpec spec, string where, string? field = null)
{
    private readonly HashSet<string> _used = new(StringComparer.Ordinal);

    public string Where { get; } = where;

    private string? Raw(string name)
    {
        _used.Add(name);
        return spec.Parameters.TryGetValue(name, out var v) ? v : null;
    }

    public RecipeException Error(string name, string problem) => new($"{Where}: parameter '{name}' {problem}") { Field = FieldOf(name) };

    private string FieldOf(string name) => field is null ? name : $"{field}.{name}";

    public double Number(string name, double fallback, double min, double max, bool maxExclusive = false)
    {
        var raw = Raw(name);
        if (raw is null) return fallback;
        if (!double.TryParse(raw, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) || !double.IsFinite(v))
            throw Error(name, $"is '{raw}', which is not a number");
        if (v < min || (maxExclusive ? v >= max : v > max))
            throw Error(name, FormattableString.Invariant($"is {v}; it must be from {min} {(maxExclusive ? "up to (not including)" : "to")} {max}"));
        return v;
    }

    public int Integer(string name, int fallback, int min, int max)
    {
        var raw = Raw(name);
        if (raw is null) return fallback;
        if (!int.TryParse(raw, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v))
            throw Error(name, $"is '{raw}', which is not a whole number");
        if (v < min || v > max) throw Error(name, $"is {v}; it must be from {min} to {max}");
        return v;
    }

    public int? OptionalInteger(string name, int min, int max) => Raw(name) is null ? null : Integer(name, 0, min, max);

    public bool Bool(string name, bool fallback)
    {
        var raw = Raw(name);
        if (raw is null) return fallback;
        return raw.ToLowerInvariant() switch
        {
            "true" or "yes" or "on" => true,
            "false" or "no" or "off" => false,
            _ => throw Error(name, $"is '{raw}'; it must be true or false"),
        };
    }

    public string Choice(string name, string fallback, IReadOnlyCollection<string> allowed)
    {
        var raw = Raw(name);
        if (raw is null) return fallback;
        if (!allowed.Contains(raw)) throw Error(name, $"is '{raw}'; it must be one of: {string.Join(", ", allowed)}");
        return raw;
    }

    public void CheckAllUsed()
    {
        foreach (var k in spec.Parameters.Keys)
            if (!_used.Contains(k))
                throw new RecipeException($"{Where}: unknown parameter '{k}' (this pass takes: {(_used.Count == 0 ? "none" : string.Join(", ", _used))})") { Field = FieldOf(k) };
    }
}
