namespace TinyOps.Agent.Telemetry;

/// <summary>Bounds of the on-disk telemetry buffer.</summary>
public sealed record TelemetryBufferOptions
{
    /// <summary>Most bytes the buffer keeps on disk (segments and cut batches); beyond it the oldest are dropped.</summary>
    public long MaxBytes { get; init; } = 8L << 20;
    /// <summary>Most records the buffer keeps; beyond it the oldest are dropped.</summary>
    public int MaxRecords { get; init; } = 100_000;
    /// <summary>Records per segment file (the unit that is dropped when the buffer is full).</summary>
    public int SegmentRecords { get; init; } = 256;
    /// <summary>Records per uploaded batch (whole segments; at least one segment).</summary>
    public int BatchRecords { get; init; } = 1000;
}
