using TinyOps.Protocol.Devices;

namespace TinyOps.Agent.State;

/// <summary>
/// state.json: which slot is active and where the current assignment stands. Replaced atomically; the active
/// slot changes only through a write of this file after the new slot passed its health check.
/// </summary>
public sealed record AgentStateDocument
{
    /// <summary>"A", "B", or empty when no model was installed yet.</summary>
    public string ActiveSlot { get; init; } = "";
    /// <summary>The deployment whose model the active slot holds (set in the same write as the switch).</summary>
    public string? DeploymentId { get; init; }
    public InstallPhase Phase { get; init; }
    public string? LastError { get; init; }
    /// <summary>Signature of the manifest that last failed, so it is not retried on every sync.</summary>
    public string? FailedManifestSignature { get; init; }
    public int FailedAttempts { get; init; }
    public DateTimeOffset UpdatedAt { get; init; }
}
