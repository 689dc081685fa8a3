namespace TinyOps.Protocol;

/// <summary>The body of every error response (RFC 9457 problem details, the fields TinyOps uses).</summary>
public sealed record ProblemDetailsDto
{
    public string Title { get; init; } = "";
    public int Status { get; init; }
    public string Detail { get; init; } = "";
}
