using TinyOps.Protocol.Devices;

namespace TinyOps.Agent.Inference;

/// <summary>POST /infer on the loopback endpoint: the model's (single) input as floats, with its shape (optional when fixed).</summary>
public sealed record InferRequest
{
    public float[] Input { get; init; } = [];
    public int[]? Shape { get; init; }
}

public sealed record InferOutput
{
    public string Name { get; init; } = "";
    public int[] Shape { get; init; } = [];
    public float[] Data { get; init; } = [];
}

public sealed record InferResponse
{
    public List<InferOutput> Outputs { get; init; } = [];
    /// <summary>Index of the largest value of the first output, or -1.</summary>
    public int ArgMax { get; init; } = -1;
    public double LatencyUs { get; init; }
    public double DeviceLatencyUs { get; init; }
    public InstalledModel? Model { get; init; }
}

/// <summary>GET /status on the loopback endpoint.</summary>
public sealed record AgentStatus
{
    public string DeviceId { get; init; } = "";
    public string ActiveSlot { get; init; } = "";
    public InstalledModel? Model { get; init; }
    public InstalledModel? Standby { get; init; }
    public string? DeploymentId { get; init; }
    public InstallPhase Phase { get; init; }
    public string? LastError { get; init; }
    public int TelemetryPending { get; init; }
    public long TelemetryDroppedTotal { get; init; }
}
