using System.Diagnostics;
using TinyOps.Engine.Data;
using TinyOps.Engine.Ir;
using TinyOps.Engine.Onnx;
using TinyOps.Engine.Profiling;
using TinyOps.Engine.Runtime;
using TinyOps.Engine.Tensors;
using TinyOps.Optimize.Pruning;
using TinyOps.Optimize.Quantization;

namespace TinyOps.Optimize.Evaluation;

/// <summary>Settings of <see cref="ModelEvaluator"/>.</summary>
public sealed record EvaluationOptions
{
    /// <summary>Labelled set for accuracy (fashion-mnist) or null for none.</summary>
    public string? DataSet { get; init; } = "fashion-mnist";
    /// <summary>Images evaluated (default all 10,000).</summary>
    public int? Limit { get; init; }
    public int Batch { get; init; } = 100;
    /// <summary>Timed batch-1 runs for the latency median (0: no latency).</summary>
    public int LatencyRuns { get; init; } = 200;
    public int WarmupRuns { get; init; } = 20;
    /// <summary>Keep warming up until this many milliseconds have passed (the JIT's tiering; `tinyops bench` waits as long).</summary>
    public int WarmupMilliseconds { get; init; } = 1000;
}

/// <summary>
/// Measures a model file the way variants are compared: accuracy on a labelled set, file size, operator set,
/// parameters and MACs, the engine's planned peak memory (as `tinyops model inspect` reports it) and batch-1
/// single-thread latency (median of N runs, measured here on this machine).
/// </summary>
public static class ModelEvaluator
{
    public static ModelEvaluation Evaluate(string path, EvaluationOptions? options = null, DataSets? sets = null, Action<int>? progress = null) =>
        Evaluate(File.ReadAllBytes(path), path, options, sets, progress);

    public static ModelEvaluation Evaluate(byte[] bytes, string name, EvaluationOptions? options = null, DataSets? sets = null, Action<int>? progress = null)
    {
        options ??= new EvaluationOptions();
        sets ??= new DataSets();
        var model = OnnxLoader.Load(bytes, name);
        var session = new InferenceSession(model);
        var profile = ModelProfiler.Profile(session, 1);
        var ops = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var n in model.Graph.Nodes)
        {
            string key = n.IsDefaultDomain ? n.OpType : n.Domain + ":" + n.OpType;
            ops[key] = ops.GetValueOrDefault(key) + 1;
        }
        double? accuracy = null;
        int evaluated = 0;
        if (options.DataSet is { } ds)
        {
            var test = sets.Test(ds);
            CheckShape(session, test, name);
            evaluated = Math.Min(test.Count, options.Limit ?? test.Count);
            accuracy = test.Accuracy(session, evaluated, options.Batch, progress).Accuracy;
        }
        return new ModelEvaluation
        {
            Model = name,
            FileBytes = bytes.LongLength,
            Operators = ops.OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key, StringComparer.Ordinal).ToList(),
            Parameters = profile.TotalParameters,
            Macs = profile.TotalMacs,
            PlannedPeakBytes = profile.PlannedArenaBytes,
            Accuracy = accuracy,
            EvaluatedImages = evaluated,
            EvaluationSet = options.DataSet,
            LatencyMedianMicros = options.LatencyRuns > 0 ? MedianLatency(model, options.LatencyRuns, options.WarmupRuns, options.WarmupMilliseconds) : null,
            LatencyRuns = options.LatencyRuns,
            WeightSparsity = WeightSparsity(model),
        };
    }

    /// <summary>Refuses a set whose samples do not have the shape the model's input takes (after the batch dimension).</summary>
    private static void CheckShape(InferenceSession session, LabelledSet set, string name)
    {
        if (session.Inputs.Count != 1) return; // the evaluator says so
        var input = session.Inputs[0];
        if (input.Shape is not { } shape) return;
        bool matches = shape.Length == set.SampleShape.Length + 1;
        for (int i = 1; matches && i < shape.Length; i++)
            matches = !shape[i].IsKnown || shape[i].Value == set.SampleShape[i - 1];
        if (!matches)
            throw new ArgumentException($"{set.Description} holds samples of shape {ShapeUtil.Format(set.SampleShape)}, but {name}'s input '{input.Name}' takes {input.ShapeText} (batch first); evaluate it on a set of its input's shape");
    }

    /// <summary>
    /// Median wall time of one batch-1 run (one thread, pseudo-random input) over <paramref name="runs"/> runs, in
    /// microseconds, after at least <paramref name="warmup"/> runs and <paramref name="warmupMilliseconds"/> of warm-up.
    /// </summary>
    public static double MedianLatency(Model model, int runs, int warmup = 20, int warmupMilliseconds = 1000)
    {
        var probe = new LatencyProbe(model);
        probe.WarmUp(warmup, warmupMilliseconds);
        return probe.Median(runs);
    }

    /// <summary>
    /// Latencies of several models measured side by side, so they compare fairly on a busy machine: each is warmed up
    /// once, then in each of <paramref name="rounds"/> rounds every model runs <paramref name="runs"/> times; a model's
    /// latency is its fastest round's median (other processes only add time). Null for a model that cannot be timed
    /// (not one input of known dimensions). Cancellation is checked between rounds.
    /// </summary>
    public static double?[] InterleavedMedianLatencies(IReadOnlyList<Model> models, int runs, int rounds = 5, int warmup = 20, int warmupMilliseconds = 1000,
        CancellationToken cancellation = default)
    {
        var probes = new LatencyProbe?[models.Count];
        for (int m = 0; m < models.Count; m++)
        {
            cancellation.ThrowIfCancellationRequested();
            try { probes[m] = new LatencyProbe(models[m]); }
            catch (ArgumentException) { continue; }
            probes[m]!.WarmUp(warmup, warmupMilliseconds);
        }
        var best = new double?[models.Count];
        for (int r = 0; r < Math.Max(1, rounds); r++)
        {
            cancellation.ThrowIfCancellationRequested();
            for (int m = 0; m < models.Count; m++)
                if (probes[m] is { } probe)
                    best[m] = Math.Min(best[m] ?? double.PositiveInfinity, probe.Median(runs));
        }
        return best;
    }

    /// <summary>A session timed at batch 1 on one thread with a fixed pseudo-random input.</summary>
    private sealed class LatencyProbe
    {
        private readonly InferenceSession _session;
        private readonly Tensor[] _inputs;
        private readonly Tensor[] _outputs;

        public LatencyProbe(Model model)
        {
            _session = new InferenceSession(model, new SessionOptions { Threads = 1 });
            if (_session.Inputs.Count != 1 || _session.Inputs[0].Shape is not { } shape || shape.Skip(1).Any(d => !d.IsKnown))
                throw new ArgumentException($"latency is measured on models with one input whose dimensions after the batch are known; this one takes {string.Join(", ", _session.Inputs)}");
            int[] dims = [1, .. shape.Skip(1).Select(d => checked((int)d.Value))];
            var x = Tensor.Zeros(DataType.Float32, dims);
            PseudoRandomInputs.Fill(0, x.Length, x.Span<float>());
            _inputs = [x];
            _outputs = new Tensor[_session.Outputs.Count];
        }

        /// <summary>Warms up by count and by time: the JIT's tiered compilation promotes hot methods only after a quiet period.</summary>
        public void WarmUp(int warmup, int warmupMilliseconds)
        {
            long start = Stopwatch.GetTimestamp();
            for (int i = 0; i < warmup || (Stopwatch.GetElapsedTime(start).TotalMilliseconds < warmupMilliseconds && i < 10_000_000); i++) _session.Run(_inputs, _outputs);
        }

        public double Median(int runs)
        {
            var times = new double[runs];
            for (int i = 0; i < runs; i++)
            {
                long t0 = Stopwatch.GetTimestamp();
                _session.Run(_inputs, _outputs);
                times[i] = Stopwatch.GetElapsedTime(t0).TotalMicroseconds;
            }
            Array.Sort(times);
            return runs % 2 == 1 ? times[runs / 2] : (times[runs / 2 - 1] + times[runs / 2]) / 2;
        }
    }

    /// <summary>Fraction of zeros among the constant weights of Conv, ConvTranspose, Gemm and MatMul.</summary>
    public static double WeightSparsity(Model model)
    {
        long zeros = 0, total = 0;
        foreach (var name in MagnitudePruning.WeightNames(model.Graph, model.IrVersion))
        {
            var w = model.Graph.Initializers[name].ReadOnlySpan<float>();
            zeros += MagnitudePruning.CountZeros(w);
            total += w.Length;
        }
        return total == 0 ? 0 : (double)zeros / total;
    }
}
