namespace TinyOps.Protocol;

/// <summary>The body of every error response (RFC 9457 problem details, the fields TinyOps uses).</summary>
public sealed record ProblemDetailsDto
{
    public string Title { get; init; } = "";
    public int Status { get; init; }
    public string Detail { get; init; } = "";
    /// <summary>The request field at fault, when one is (e.g. a recipe's variants[1].passes[0].sparsity).</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public string? Field { get; init; }
}
