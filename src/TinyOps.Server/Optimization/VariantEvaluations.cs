using TinyOps.Optimize.Evaluation;
using TinyOps.Protocol.Devices;
using TinyOps.Protocol.Management;
using TinyOps.Server.Deployments;

namespace TinyOps.Server.Optimization;

/// <summary>
/// Turns what <see cref="ModelEvaluator"/> measured into the registry's record of a variant: its evaluation, with the
/// latency estimated for every device-class profile (<see cref="DeviceProfile.EstimateLatencyMicros"/>), and the flat
/// metrics the deployment chooser ranks by (accuracy, accuracy_drop, latency_us).
/// </summary>
public static class VariantEvaluations
{
    public const string AccuracyDrop = "accuracy_drop";
    public const string WeightSparsity = "weight_sparsity";

    public static VariantEvaluationDto From(ModelEvaluation e, double? hostMacsPerSecond, double? baseAccuracy, double? accuracyDrop)
    {
        var perClass = new Dictionary<string, double>(StringComparer.Ordinal);
        if (hostMacsPerSecond is { } host && e.LatencyMedianMicros is { } here)
            foreach (var profile in DeviceProfile.All)
                perClass[profile.DeviceClass] = Math.Round(profile.EstimateLatencyMicros(here, host), 2);
        var ops = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (op, n) in e.Operators) ops[op] = n;
        return new VariantEvaluationDto
        {
            EvaluationSet = e.EvaluationSet,
            EvaluatedSamples = e.EvaluatedImages,
            Accuracy = e.Accuracy,
            BaseAccuracy = baseAccuracy,
            AccuracyDrop = accuracyDrop is { } d ? Math.Round(d, 4) : null,
            FileBytes = e.FileBytes,
            Operators = ops,
            Parameters = e.Parameters,
            Macs = e.Macs,
            PlannedPeakBytes = e.PlannedPeakBytes,
            WeightSparsity = Math.Round(e.WeightSparsity, 4),
            LatencyUs = e.LatencyMedianMicros is { } l ? Math.Round(l, 2) : null,
            LatencyRuns = e.LatencyRuns,
            HostMacsPerSecond = hostMacsPerSecond is { } h ? Math.Round(h) : null,
            DeviceLatencyUs = perClass,
            EvaluatedAt = DateTimeOffset.UtcNow,
        };
    }

    public static Dictionary<string, double> Metrics(VariantEvaluationDto e)
    {
        var m = new Dictionary<string, double>(StringComparer.Ordinal) { [WeightSparsity] = e.WeightSparsity };
        if (e.Accuracy is { } a) m[VariantChooser.Accuracy] = a;
        if (e.AccuracyDrop is { } d) m[AccuracyDrop] = d;
        if (e.LatencyUs is { } l) m[VariantChooser.LatencyUs] = l;
        return m;
    }
}
