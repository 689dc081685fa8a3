using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using Spectre.Console;
using TinyOps.Engine;
using TinyOps.Engine.Runtime;
using TinyOps.Engine.Tensors;

namespace TinyOps.Cli.Commands;

/// <summary>
/// `tinyops bench MODEL`: load time, latency percentiles, planned arena and allocation per inference. Inputs are
/// filled like ../shared/peers/ort/bench.mjs fills them (value i = ((i*2654435761) % 1000)/1000, symbolic
/// dimensions bound to the batch for the first axis and 1 elsewhere), so the two measure the same work.
/// </summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var model = new Argument<string>("model") { Description = "an ONNX model file" };
        var batch = new Option<int>("--batch", "-b") { Description = "value bound to a symbolic first dimension (other symbolic dimensions are bound to 1)", DefaultValueFactory = _ => 1 };
        var threads = new Option<int>("--threads", "-t") { Description = "threads an operator may use", DefaultValueFactory = _ => 1 };
        var iterations = new Option<int>("--iterations", "-n") { Description = "timed runs", DefaultValueFactory = _ => 200 };
        var warmup = new Option<int>("--warmup", "-w") { Description = "untimed runs before timing", DefaultValueFactory = _ => 20 };
        var warmupMs = new Option<int>("--warmup-ms") { Description = "keep warming up until this many milliseconds have passed (lets the JIT finish tiering up)", DefaultValueFactory = _ => 1000 };
        var json = new Option<bool>("--json") { Description = "print one JSON line instead of a table" };
        var profile = new Option<bool>("--profile") { Description = "also time every node and print where the time goes (adds a little overhead per node)" };
        var exactAdds = new Option<bool>("--exact-quantized-adds") { Description = "add two quantized tensors exactly as separate DequantizeLinear, Add and QuantizeLinear would (slower); by default by ratio multipliers, as ONNX Runtime's QLinearAdd" };
        var cmd = new Command("bench", "Measure a model's load time, latency (p50/p90/p99), planned arena and allocation per inference");
        cmd.Arguments.Add(model);
        cmd.Options.Add(batch);
        cmd.Options.Add(threads);
        cmd.Options.Add(iterations);
        cmd.Options.Add(warmup);
        cmd.Options.Add(warmupMs);
        cmd.Options.Add(json);
        cmd.Options.Add(profile);
        cmd.Options.Add(exactAdds);
        cmd.SetAction(r => CliErrors.Guard(() =>
        {
            var settings = new Settings(r.GetValue(model)!, r.GetValue(batch), r.GetValue(threads), r.GetValue(iterations), r.GetValue(warmup), r.GetValue(warmupMs), r.GetValue(profile), r.GetValue(exactAdds));
            settings.Validate();
            var result = Measure(settings);
            if (r.GetValue(json)) Console.WriteLine(ToJson(settings, result));
            else PrintTable(settings, result);
            if (settings.Profile && !r.GetValue(json)) PrintProfile(result.Profile);
            return 0;
        }));
        return cmd;
    }

    private sealed record Settings(string Model, int Batch, int Threads, int Iterations, int Warmup, int WarmupMs, bool Profile, bool ExactQuantizedAdds = false)
    {
        public void Validate()
        {
            if (!File.Exists(Model)) throw new FileNotFoundException($"model file '{Model}' does not exist", Model);
            if (Batch < 1) throw new ArgumentException("--batch must be at least 1");
            if (Threads < 1) throw new ArgumentException("--threads must be at least 1");
            if (Iterations < 1) throw new ArgumentException("--iterations must be at least 1");
            if (Warmup < 1) throw new ArgumentException("--warmup must be at least 1 (the first run plans memory and is never timed)");
            if (WarmupMs < 0) throw new ArgumentException("--warmup-ms must not be negative");
        }
    }

    private sealed record Result(
        double LoadMs, double WarmLoadMs, double FirstRunMs, int WarmupRuns, double[] LatenciesUs, long ArenaBytes, long ScratchBytes,
        double AllocatedPerInference, double AllocatedPerInferenceAllThreads, string[] InputShapes,
        string OutputName, int[] OutputShape, float[] OutputHead, IReadOnlyList<NodeTime> Profile)
    {
        // Same rule as bench.mjs: sorted[min(n-1, floor(q*n))].
        public double Quantile(double q) => LatenciesUs[Math.Min(LatenciesUs.Length - 1, (int)Math.Floor(q * LatenciesUs.Length))];
        public double Mean { get { double s = 0; foreach (var v in LatenciesUs) s += v; return s / LatenciesUs.Length; } }
    }

    private static Result Measure(Settings s)
    {
        var options = new SessionOptions { Threads = s.Threads, ProfileNodes = s.Profile, ExactQuantizedAdds = s.ExactQuantizedAdds };
        long t0 = Stopwatch.GetTimestamp();
        var session = InferenceSession.Load(s.Model, options);
        double loadMs = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        // A second load in the same process: the loader's own work without first-call JIT compilation.
        t0 = Stopwatch.GetTimestamp();
        _ = InferenceSession.Load(s.Model, options);
        double warmLoadMs = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;

        var inputs = new Tensor[session.Inputs.Count];
        var shapes = new string[inputs.Length];
        for (int i = 0; i < inputs.Length; i++)
        {
            inputs[i] = DeterministicInput(session.Inputs[i], s.Batch);
            shapes[i] = "[" + string.Join(",", inputs[i].Shape) + "]";
        }
        var outputs = new Tensor[session.Outputs.Count];

        t0 = Stopwatch.GetTimestamp();
        session.Run(inputs, outputs);
        double firstMs = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;

        // Warm-up: at least W runs and at least --warmup-ms, so tiered JIT has promoted the hot kernels.
        int warm = 1;
        var warmWatch = Stopwatch.StartNew();
        while (warm < s.Warmup || warmWatch.ElapsedMilliseconds < s.WarmupMs)
        {
            session.Run(inputs, outputs);
            warm++;
        }
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        session.ResetNodeProfile();

        var ticks = new long[s.Iterations];
        long allocBefore = GC.GetAllocatedBytesForCurrentThread();
        long allocAllBefore = GC.GetTotalAllocatedBytes(precise: true);
        for (int i = 0; i < ticks.Length; i++)
        {
            long start = Stopwatch.GetTimestamp();
            session.Run(inputs, outputs);
            ticks[i] = Stopwatch.GetTimestamp() - start;
        }
        long allocAll = GC.GetTotalAllocatedBytes(precise: true) - allocAllBefore;
        long alloc = GC.GetAllocatedBytesForCurrentThread() - allocBefore;

        var latencies = new double[ticks.Length];
        for (int i = 0; i < ticks.Length; i++) latencies[i] = ticks[i] * 1e6 / Stopwatch.Frequency;
        Array.Sort(latencies);

        var first = outputs[0];
        var head = new float[Math.Min(10, first.Length)];
        for (int i = 0; i < head.Length; i++) head[i] = first.GetFloat(i);
        return new Result(loadMs, warmLoadMs, firstMs, warm, latencies, session.PlannedArenaBytes, session.ScratchBytes,
            (double)alloc / s.Iterations, (double)allocAll / s.Iterations, shapes,
            session.Outputs[0].Name, (int[])first.Shape.Clone(), head, session.NodeProfile());
    }

    /// <summary>
    /// The input bench.mjs builds: declared shape, symbolic or unknown dimensions bound to the batch on axis 0 and
    /// to 1 elsewhere, value i = ((i*2654435761) % 1000)/1000 (computed exactly, rounded once to float32).
    /// </summary>
    internal static Tensor DeterministicInput(Engine.Ir.ValueInfo info, int batch)
    {
        if (info.Shape is null)
            throw new InferenceInputException($"input '{info.Name}' has no declared rank; bench needs a declared shape to build its input");
        var shape = new int[info.Shape.Length];
        for (int d = 0; d < shape.Length; d++)
            shape[d] = info.Shape[d].IsKnown ? checked((int)info.Shape[d].Value) : (d == 0 ? batch : 1);
        var type = info.Type == DataType.Undefined ? DataType.Float32 : info.Type;
        var t = Tensor.Zeros(type, shape);
        if (type == DataType.Float32)
        {
            var span = t.Span<float>();
            for (int i = 0; i < span.Length; i++) span[i] = (float)((double)((ulong)i * 2654435761UL % 1000UL) / 1000.0);
        }
        return t; // other element types stay zero (bench.mjs only feeds float32)
    }

    private static string ToJson(Settings s, Result r)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream))
        {
            w.WriteStartObject();
            w.WriteString("engine", "tinyops");
            w.WriteString("version", EngineInfo.Version);
            w.WriteString("runtime", RuntimeInformation.FrameworkDescription);
            w.WriteString("model", s.Model);
            w.WriteNumber("batch", s.Batch);
            w.WriteNumber("threads", s.Threads);
            w.WriteNumber("iterations", s.Iterations);
            w.WriteNumber("warmup_runs", r.WarmupRuns);
            w.WriteNumber("load_ms", Math.Round(r.LoadMs, 3));
            w.WriteNumber("load_us", Math.Round(r.LoadMs * 1000));
            w.WriteNumber("load_again_ms", Math.Round(r.WarmLoadMs, 3));
            w.WriteNumber("first_run_ms", Math.Round(r.FirstRunMs, 3));
            w.WriteNumber("p50_us", Math.Round(r.Quantile(0.5), 3));
            w.WriteNumber("p90_us", Math.Round(r.Quantile(0.9), 3));
            w.WriteNumber("p99_us", Math.Round(r.Quantile(0.99), 3));
            w.WriteNumber("min_us", Math.Round(r.LatenciesUs[0], 3));
            w.WriteNumber("mean_us", Math.Round(r.Mean, 3));
            w.WriteNumber("arena_bytes", r.ArenaBytes);
            w.WriteNumber("scratch_bytes", r.ScratchBytes);
            w.WriteNumber("alloc_bytes_per_inference", r.AllocatedPerInference);
            w.WriteNumber("alloc_bytes_per_inference_all_threads", r.AllocatedPerInferenceAllThreads);
            w.WriteStartArray("input_shapes");
            foreach (var x in r.InputShapes) w.WriteStringValue(x);
            w.WriteEndArray();
            w.WriteString("output", r.OutputName);
            w.WriteStartArray("output_dims");
            foreach (var d in r.OutputShape) w.WriteNumberValue(d);
            w.WriteEndArray();
            w.WriteStartArray("output_head");
            foreach (var v in r.OutputHead) w.WriteNumberValue(v);
            w.WriteEndArray();
            if (s.Profile)
            {
                // --profile with --json: every node's mean microseconds, in graph order.
                w.WriteStartArray("nodes");
                foreach (var n in r.Profile)
                {
                    w.WriteStartObject();
                    w.WriteString("name", n.Name);
                    w.WriteString("op", n.OpType);
                    w.WriteString("output", n.OutputShape);
                    w.WriteNumber("us", Math.Round(n.MeanMicroseconds, 2));
                    w.WriteEndObject();
                }
                w.WriteEndArray();
            }
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }

    /// <summary>Where the time goes: per operator type, then the slowest nodes.</summary>
    private static void PrintProfile(IReadOnlyList<NodeTime> nodes)
    {
        double total = 0;
        foreach (var n in nodes) total += n.MeanMicroseconds;
        if (total <= 0) return;
        var byOp = new Dictionary<string, (int Count, double Us)>();
        foreach (var n in nodes)
        {
            byOp.TryGetValue(n.OpType, out var e);
            byOp[n.OpType] = (e.Count + 1, e.Us + n.MeanMicroseconds);
        }
        var ops = new Table().Title("time per operator type (mean of a run)").AddColumn("operator").AddColumn(new TableColumn("nodes").RightAligned())
            .AddColumn(new TableColumn("µs").RightAligned()).AddColumn(new TableColumn("share").RightAligned());
        foreach (var (op, e) in byOp.OrderByDescending(kv => kv.Value.Us))
            ops.AddRow(Markup.Escape(op), e.Count.ToString(CultureInfo.InvariantCulture), e.Us.ToString("N1", CultureInfo.InvariantCulture), (e.Us / total).ToString("P1", CultureInfo.InvariantCulture));
        AnsiConsole.Write(ops);
        var top = new Table().Title("slowest nodes").AddColumn("node").AddColumn("operator").AddColumn("output").AddColumn(new TableColumn("µs").RightAligned()).AddColumn(new TableColumn("share").RightAligned());
        foreach (var n in nodes.OrderByDescending(n => n.MeanMicroseconds).Take(25))
            top.AddRow(Markup.Escape(n.Name), Markup.Escape(n.OpType), Markup.Escape(n.OutputShape), n.MeanMicroseconds.ToString("N1", CultureInfo.InvariantCulture), (n.MeanMicroseconds / total).ToString("P1", CultureInfo.InvariantCulture));
        AnsiConsole.Write(top);
    }

    private static long ShapeLength(int[] shape)
    {
        long n = 1;
        foreach (var d in shape) n *= d;
        return n;
    }

    private static void PrintTable(Settings s, Result r)
    {
        static string F(double v, string format = "N1") => v.ToString(format, CultureInfo.InvariantCulture);
        var table = new Table().Border(TableBorder.Rounded).AddColumn("measure").AddColumn(new TableColumn("value").RightAligned());
        Console.WriteLine($"{Path.GetFileName(s.Model)}: batch {s.Batch}, {s.Threads} thread(s), {s.Iterations} timed runs after {r.WarmupRuns} warm-up runs");
        table.AddRow("input", Markup.Escape(string.Join(" ", r.InputShapes)));
        table.AddRow("load", F(r.LoadMs, "N2") + " ms");
        table.AddRow("load again (same process, JIT done)", F(r.WarmLoadMs, "N2") + " ms");
        table.AddRow("first run (plans memory)", F(r.FirstRunMs, "N2") + " ms");
        table.AddRow("p50", F(r.Quantile(0.5)) + " µs");
        table.AddRow("p90", F(r.Quantile(0.9)) + " µs");
        table.AddRow("p99", F(r.Quantile(0.99)) + " µs");
        table.AddRow("min", F(r.LatenciesUs[0]) + " µs");
        table.AddRow("mean", F(r.Mean) + " µs");
        table.AddRow("planned arena", F(r.ArenaBytes, "N0") + " B");
        table.AddRow("kernel scratch", F(r.ScratchBytes, "N0") + " B");
        table.AddRow("allocated / inference (this thread)", F(r.AllocatedPerInference, "N1") + " B");
        table.AddRow("allocated / inference (whole process)", F(r.AllocatedPerInferenceAllThreads, "N1") + " B");
        AnsiConsole.Write(table);
        Console.WriteLine($"{r.OutputName} [{string.Join(",", r.OutputShape)}]: "
            + string.Join(", ", Array.ConvertAll(r.OutputHead, v => v.ToString("G5", CultureInfo.InvariantCulture))) + (r.OutputShape.Length > 0 && r.OutputHead.Length < ShapeLength(r.OutputShape) ? ", ..." : ""));
    }
}
