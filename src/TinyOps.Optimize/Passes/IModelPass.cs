using TinyOps.Engine.Ir;

namespace TinyOps.Optimize.Passes;

/// <summary>
/// One graph pass: reads a model and returns a new one (the input is never changed). Passes are built from a
/// <see cref="Recipes.PassSpec"/> by <see cref="Recipes.PassCatalog"/>, or constructed directly.
/// </summary>
public interface IModelPass
{
    /// <summary>The pass's recipe name, e.g. fold-constants.</summary>
    string Name { get; }

    PassOutcome Run(Model model, PassContext context);
}

/// <summary>What a pass produced: the new model and one line per change worth reporting.</summary>
public sealed record PassOutcome(Model Model, string Summary, IReadOnlyList<string> Details)
{
    public static PassOutcome Of(Model model, string summary, IEnumerable<string>? details = null) => new(model, summary, details?.ToList() ?? []);
}
