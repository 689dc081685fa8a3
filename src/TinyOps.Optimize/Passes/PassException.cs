namespace TinyOps.Optimize.Passes;

/// <summary>A pass cannot be applied to a model; the message says which pass, where in the graph and what to do.</summary>
public sealed class PassException : Exception
{
    public PassException(string message) : base(message) { }
    public PassException(string message, Exception inner) : base(message, inner) { }
}
