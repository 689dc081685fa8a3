namespace TinyOps.Agent;

/// <summary>A failure the agent reports with a clear reason (refused manifest, digest mismatch, server refusal).</summary>
public sealed class AgentException(string message, int? statusCode = null, Exception? inner = null) : Exception(message, inner)
{
    /// <summary>The HTTP status when the server refused the request.</summary>
    public int? StatusCode { get; } = statusCode;

    /// <summary>True when retrying the same request cannot succeed (a 4xx other than 408/429).</summary>
    public bool IsPermanent => StatusCode is >= 400 and < 500 and not 408 and not 429;
}
