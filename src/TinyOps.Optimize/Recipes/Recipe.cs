namespace TinyOps.Optimize.Recipes;

/// <summary>
/// A recipe: named variants to build from one base model, each a list of passes, the device classes it is meant for
/// and the accuracy it may lose. Read from YAML or JSON by <see cref="RecipeParser"/> (format in docs/optimize.md).
/// </summary>
public sealed record Recipe
{
    public required string Name { get; init; }
    /// <summary>Where it was read from (a file path, or a description), for messages.</summary>
    public required string Source { get; init; }
    /// <summary>Labelled set the accuracy gate uses (fashion-mnist), or null: variants are built but not gated.</summary>
    public string? Evaluation { get; init; }
    /// <summary>Timed runs for each variant's latency median (0: none).</summary>
    public int LatencyRuns { get; init; } = 200;
    public required IReadOnlyList<RecipeVariant> Variants { get; init; }
}

/// <summary>One variant of a recipe.</summary>
public sealed record RecipeVariant
{
    public required string Name { get; init; }
    public required IReadOnlyList<PassSpec> Passes { get; init; }
    /// <summary>Device classes (e.g. cortex-m4, phone) this variant is built for; may be empty (any).</summary>
    public IReadOnlyList<string> Targets { get; init; } = [];
    /// <summary>Largest accepted accuracy loss against the base model, in percentage points (default 1).</summary>
    public double MaxAccuracyDrop { get; init; } = 1.0;
    /// <summary>Line of the variant in its file (0 when not from a file).</summary>
    public int Line { get; init; }
}

/// <summary>One pass of a variant: its name (fold-constants, quantize, prune, ...) and its parameters as written.</summary>
public sealed record PassSpec(string Pass, IReadOnlyDictionary<string, string> Parameters, int Line = 0)
{
    public static PassSpec Of(string pass, params (string Key, string Value)[] parameters) =>
        new(pass, parameters.ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal));

    public override string ToString() => Parameters.Count == 0 ? Pass : $"{Pass}({string.Join(", ", Parameters.Select(p => $"{p.Key}={p.Value}"))})";
}
