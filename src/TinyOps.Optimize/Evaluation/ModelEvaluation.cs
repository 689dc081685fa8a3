namespace TinyOps.Optimize.Evaluation;

/// <summary>
/// What <see cref="ModelEvaluator"/> measured for one model file. Accuracy is null without a labelled set, latency
/// null when no runs were asked for.
/// </summary>
public sealed record ModelEvaluation
{
    public required string Model { get; init; }
    public required long FileBytes { get; init; }
    /// <summary>Operator counts of the file's main graph ("com.microsoft:FusedConv" for other domains), most frequent first.</summary>
    public required IReadOnlyList<KeyValuePair<string, int>> Operators { get; init; }
    public required long Parameters { get; init; }
    public required long Macs { get; init; }
    /// <summary>The engine's planned activation arena at batch 1, in bytes.</summary>
    public required long PlannedPeakBytes { get; init; }
    public double? Accuracy { get; init; }
    public int EvaluatedImages { get; init; }
    public string? EvaluationSet { get; init; }
    /// <summary>Median of <see cref="LatencyRuns"/> timed batch-1 runs on one thread, in microseconds.</summary>
    public double? LatencyMedianMicros { get; init; }
    public int LatencyRuns { get; init; }
    /// <summary>Fraction of zeros among the weights of Conv/Gemm/MatMul (pruned models).</summary>
    public double WeightSparsity { get; init; }

    public string OperatorText => string.Join(", ", Operators.Select(o => $"{o.Key} x{o.Value}"));
}
