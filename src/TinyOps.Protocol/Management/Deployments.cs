namespace TinyOps.Protocol.Management;

/// <summary>Roll a model (by version or alias) out to the devices whose tags include all of Selector.</summary>
public sealed record CreateDeploymentRequest
{
    public string Model { get; init; } = "";
    /// <summary>A version, or an alias such as "production".</summary>
    public string Version { get; init; } = "";
    public IReadOnlyList<string> Selector { get; init; } = [];
    /// <summary>Share of eligible devices in the first stage, 0-100. 100 means no canary stage.</summary>
    public int CanaryPercent { get; init; } = 10;
    /// <summary>Move from canary to all automatically once every canary device installed successfully.</summary>
    public bool AutoPromote { get; init; } = true;
    /// <summary>Share of canary devices that may fail before the deployment halts itself, 0-100.</summary>
    public int MaxFailurePercent { get; init; } = 20;
    /// <summary>
    /// Largest estimated latency per device class, µs ("*" for every class not named). A variant whose estimate for
    /// the device's class exceeds it (or that has no estimate) does not fit.
    /// </summary>
    public IReadOnlyDictionary<string, double>? LatencyBudgetsUs { get; init; }
}

/// <summary>Why a device got the variant it got (or none).</summary>
public sealed record TargetDto(string DeviceId, string DeviceName, string DeviceClass, string? VariantId, string State, string Reason, int Stage);

public sealed record DeploymentDto
{
    public string Id { get; init; } = "";
    public string Project { get; init; } = "";
    public string Model { get; init; } = "";
    public string Version { get; init; } = "";
    public IReadOnlyList<string> Selector { get; init; } = [];
    public int CanaryPercent { get; init; }
    /// <summary>"canary", "rolling", "paused", "completed", "aborted", "halted".</summary>
    public string Status { get; init; } = "";
    /// <summary>1 = canary, 2 = all.</summary>
    public int Stage { get; init; }
    public int Targeted { get; init; }
    public int Assigned { get; init; }
    public int Installed { get; init; }
    public int Failed { get; init; }
    public int Incompatible { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
    public string CreatedBy { get; init; } = "";
    public IReadOnlyDictionary<string, double> LatencyBudgetsUs { get; init; } = new Dictionary<string, double>();
    public IReadOnlyList<TargetDto> Targets { get; init; } = [];
}
