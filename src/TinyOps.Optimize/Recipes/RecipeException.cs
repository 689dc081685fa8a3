namespace TinyOps.Optimize.Recipes;

/// <summary>A recipe is malformed or asks for something impossible; the message names the file, variant, pass and field.</summary>
public sealed class RecipeException : Exception
{
    public RecipeException(string message) : base(message) { }
    public RecipeException(string message, Exception inner) : base(message, inner) { }

    /// <summary>
    /// The offending field as a path into the recipe, e.g. <c>variants[1].passes[0].sparsity</c> (indexes from 0),
    /// <c>evaluation</c>; null when the text itself does not parse.
    /// </summary>
    public string? Field { get; init; }
}
