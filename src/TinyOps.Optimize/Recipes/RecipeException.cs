namespace TinyOps.Optimize.Recipes;

/// <summary>A recipe is malformed or asks for something impossible; the message names the file, variant, pass and field.</summary>
public sealed class RecipeException : Exception
{
    public RecipeException(string message) : base(message) { }
    public RecipeException(string message, Exception inner) : base(message, inner) { }
}
