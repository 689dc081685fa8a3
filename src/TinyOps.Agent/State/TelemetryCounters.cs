namespace TinyOps.Agent.State;

/// <summary>telemetry/counters.json: records dropped because the buffer was full.</summary>
public sealed record TelemetryCounters
{
    /// <summary>Dropped since the last cut batch; reported with the next one.</summary>
    public long Dropped { get; init; }
    public long DroppedTotal { get; init; }
    /// <summary>The last segment number already cut into a batch (for recovery after a crash).</summary>
    public long CutThrough { get; init; } = -1;
}
