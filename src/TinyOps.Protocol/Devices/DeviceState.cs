namespace TinyOps.Protocol.Devices;

/// <summary>Changing conditions a device reports with every sync.</summary>
public sealed record DeviceConditions
{
    /// <summary>Battery level 0..1, or null for mains-powered devices.</summary>
    public double? Battery { get; init; }
    public bool Charging { get; init; }
    /// <summary>"wifi", "ethernet", "lte", "3g", "metered", "none".</summary>
    public string NetworkType { get; init; } = "";
    public long FreeStorageBytes { get; init; }
}

/// <summary>The model a device has in one of its slots.</summary>
public sealed record InstalledModel
{
    public string ModelName { get; init; } = "";
    public string Version { get; init; } = "";
    public string VariantId { get; init; } = "";
    public string ArtifactSha256 { get; init; } = "";
}

/// <summary>Where an assignment stands on the device.</summary>
public enum InstallPhase
{
    Idle,
    Downloading,
    Verifying,
    Installing,
    HealthCheck,
    Installed,
    Failed,
}

/// <summary>What a device reports: its slots, the state of the current assignment, its conditions.</summary>
public sealed record ReportedState
{
    public string AgentVersion { get; init; } = "";
    /// <summary>"A" or "B"; empty when no model is installed.</summary>
    public string ActiveSlot { get; init; } = "";
    public InstalledModel? Active { get; init; }
    public InstalledModel? Standby { get; init; }
    /// <summary>The deployment the device is working on, if any.</summary>
    public string? DeploymentId { get; init; }
    public InstallPhase Phase { get; init; }
    /// <summary>Bytes downloaded of the assigned artifact (for progress).</summary>
    public long DownloadedBytes { get; init; }
    public string? LastError { get; init; }
    public DeviceConditions Conditions { get; init; } = new();
    /// <summary>Set when capabilities changed since enrollment.</summary>
    public DeviceCapabilities? Capabilities { get; init; }
}
