namespace TinyOps.Protocol.Telemetry;

/// <summary>One inference as the device saw it.</summary>
public sealed record InferenceRecord
{
    public DateTimeOffset At { get; init; }
    public string ModelName { get; init; } = "";
    public string Version { get; init; } = "";
    public string VariantId { get; init; } = "";
    /// <summary>Latency as measured on this machine, microseconds.</summary>
    public double LatencyUs { get; init; }
    /// <summary>Latency scaled to the device class's profile, microseconds (equal to LatencyUs on real devices).</summary>
    public double DeviceLatencyUs { get; init; }
    /// <summary>"ok" or "error".</summary>
    public string Outcome { get; init; } = "ok";
    /// <summary>Predicted class index for classifiers, or -1.</summary>
    public int PredictedClass { get; init; } = -1;
}

/// <summary>Records uploaded together. The id makes a retried upload count once.</summary>
public sealed record TelemetryBatch
{
    public string BatchId { get; init; } = "";
    public IReadOnlyList<InferenceRecord> Records { get; init; } = [];
    /// <summary>Records the device dropped because its buffer was full, since the previous batch.</summary>
    public long Dropped { get; init; }
}

public sealed record TelemetryAck
{
    public string BatchId { get; init; } = "";
    public int Accepted { get; init; }
    /// <summary>True when this batch id was already stored; nothing was added.</summary>
    public bool Duplicate { get; init; }
}
