namespace TinyOps.Protocol.Devices;

/// <summary>A device's periodic call: here is my state, what should I run?</summary>
public sealed record SyncRequest
{
    public ReportedState Reported { get; init; } = new();
}

/// <summary>What the device should run. A null Assignment means: keep what you have.</summary>
public sealed record SyncResponse
{
    public Assignment? Assignment { get; init; }
    /// <summary>Seconds until the next sync (the agent adds jitter).</summary>
    public int PollSeconds { get; init; } = 60;
    /// <summary>Signing keys, including rotated ones endorsed by an older key the device already trusts.</summary>
    public IReadOnlyList<Manifests.SigningKeyInfo> SigningKeys { get; init; } = [];
}

/// <summary>The desired model for this device, as a signed manifest.</summary>
public sealed record Assignment
{
    public string DeploymentId { get; init; } = "";
    public Manifests.SignedManifest Manifest { get; init; } = new();
}
