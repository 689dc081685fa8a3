using System.CommandLine;
using System.Globalization;
using Spectre.Console;
using TinyOps.Engine;
using TinyOps.Engine.Data;
using TinyOps.Engine.Runtime;
using TinyOps.Engine.Tensors;
using TinyOps.Optimize.Evaluation;
using TinyOps.Optimize.Quantization;

namespace TinyOps.Cli.Commands;

/// <summary>
/// `tinyops eval MODEL --dataset fashion-mnist`: accuracy on the 10,000 test images.
/// `--dataset random --limit N`: N deterministic pseudo-random inputs (<see cref="PseudoRandomInputs"/>, samples 0..N-1),
/// no labels. `--argmax-out FILE` writes each input's argmax, one per line (bench/int8-agreement.mjs compares them with ONNX Runtime's).
/// </summary>
internal static class EvalCommand
{
    public static Command Create()
    {
        var model = new Argument<string>("model") { Description = "an ONNX classifier taking [N,1,28,28] float32 in [0,1] (fashion-mnist) or any single float input (random)" };
        var dataset = new Option<string>("--dataset") { Description = "the evaluation set: fashion-mnist (test images) or random (pseudo-random inputs in [0,1), no labels)", DefaultValueFactory = _ => "fashion-mnist" };
        var dataDir = new Option<string?>("--data-dir") { Description = "folder with the IDX files (default: $TINYOPS_FASHION_MNIST or /usr/share/datasets/fashion-mnist)" };
        var batch = new Option<int>("--batch") { Description = "inputs per run", DefaultValueFactory = _ => 100 };
        var limit = new Option<int?>("--limit") { Description = "evaluate only the first N inputs (random: default 1000)" };
        var argmaxOut = new Option<string?>("--argmax-out") { Description = "write the argmax of every input, one per line, to this file" };
        var scoresOut = new Option<string?>("--scores-out") { Description = "write the first output of every input, raw little-endian float32, to this file" };
        var report = new Option<bool>("--report") { Description = "also report file size, operators, parameters, MACs, planned peak memory and batch-1 latency (median of --runs)" };
        var runs = new Option<int>("--runs") { Description = "timed batch-1 runs for the latency median of --report (0: no latency)", DefaultValueFactory = _ => 200 };
        var cmd = new Command("eval", "Measure a classifier's accuracy on a test set, or record its argmax on deterministic inputs");
        cmd.Arguments.Add(model);
        cmd.Options.Add(dataset);
        cmd.Options.Add(dataDir);
        cmd.Options.Add(batch);
        cmd.Options.Add(limit);
        cmd.Options.Add(argmaxOut);
        cmd.Options.Add(scoresOut);
        cmd.Options.Add(report);
        cmd.Options.Add(runs);
        cmd.SetAction(r => CliErrors.Guard(() =>
        {
            string ds = r.GetValue(dataset)!;
            if (ds is not ("fashion-mnist" or "random")) throw new ArgumentException($"unknown dataset '{ds}'; supported: fashion-mnist, random");
            int b = r.GetValue(batch);
            if (b < 1) throw new ArgumentException("--batch must be at least 1");
            if (r.GetValue(report)) return Report(r.GetValue(model)!, ds, r.GetValue(dataDir), r.GetValue(limit), b, r.GetValue(runs));
            var session = InferenceSession.Load(r.GetValue(model)!);
            string? outFile = r.GetValue(argmaxOut);
            using var scores = r.GetValue(scoresOut) is { } sf ? File.Create(sf) : null;
            if (scores is not null && outFile is null) throw new ArgumentException("--scores-out goes with --argmax-out");
            var sw = System.Diagnostics.Stopwatch.StartNew();
            if (ds == "fashion-mnist")
            {
                var data = FashionMnist.LoadTest(r.GetValue(dataDir));
                int count = Math.Min(data.Count, r.GetValue(limit) ?? data.Count);
                if (outFile is null)
                {
                    Evaluation result = default;
                    AnsiConsole.Progress().AutoClear(true).HideCompleted(true).Start(p =>
                    {
                        var task = p.AddTask("evaluating", maxValue: count);
                        result = Evaluator.Accuracy(session, data, count, b, done => task.Value = done);
                    });
                    Console.WriteLine($"images: {count}; correct: {result.Correct}; time: {sw.Elapsed.TotalSeconds:F2} s");
                    Console.WriteLine($"accuracy: {result.Accuracy:F4}");
                    return 0;
                }
                var arg = Argmax(session, count, b, scores, [1, data.Rows, data.Cols], (start, n, dst) => data.Images.AsSpan(start * data.ImageSize, n * data.ImageSize).CopyTo(dst));
                int correct = 0;
                for (int i = 0; i < count; i++) if (arg[i] == data.Labels[i]) correct++;
                WriteArgmax(outFile, arg);
                Console.WriteLine($"images: {count}; correct: {correct}; time: {sw.Elapsed.TotalSeconds:F2} s");
                Console.WriteLine($"accuracy: {(double)correct / count:F4}");
                return 0;
            }
            var input = session.Inputs[0];
            if (session.Inputs.Count != 1 || input.Shape is null || input.Shape.Skip(1).Any(d => !d.IsKnown))
                throw new ArgumentException($"--dataset random needs one input whose dimensions after the batch are known; this model takes {string.Join(", ", session.Inputs)}");
            int[] sample = input.Shape.Skip(1).Select(d => checked((int)d.Value)).ToArray();
            int size = 1;
            foreach (int d in sample) size *= d;
            int total = r.GetValue(limit) ?? 1000;
            if (total < 1) throw new ArgumentException("--limit must be at least 1");
            var am = Argmax(session, total, b, scores, sample, (start, n, dst) => PseudoRandomInputs.Fill(start, size, dst.Slice(0, n * size)));
            if (outFile is not null) WriteArgmax(outFile, am);
            Console.WriteLine($"inputs: {total} pseudo-random (samples 0..{total - 1}); time: {sw.Elapsed.TotalSeconds:F2} s");
            return 0;
        }));
        return cmd;
    }

    /// <summary>`--report`: <see cref="ModelEvaluator"/>'s measurements, one per line, accuracy last (as without --report).</summary>
    private static int Report(string path, string dataset, string? dataDir, int? limit, int batch, int runs)
    {
        if (runs < 0) throw new ArgumentException("--runs must be 0 or more");
        var options = new EvaluationOptions { DataSet = dataset == "fashion-mnist" ? dataset : null, Limit = limit, Batch = batch, LatencyRuns = runs };
        ModelEvaluation e = null!;
        AnsiConsole.Progress().AutoClear(true).HideCompleted(true).Start(p =>
        {
            var task = p.AddTask("evaluating", maxValue: limit ?? 10_000);
            e = ModelEvaluator.Evaluate(path, options, new DataSets { FashionMnistDirectory = dataDir }, done => task.Value = done);
        });
        Console.WriteLine($"file: {e.FileBytes:N0} bytes");
        Console.WriteLine($"operators: {e.OperatorText}");
        Console.WriteLine($"parameters: {e.Parameters:N0}; weight sparsity: {e.WeightSparsity:P1}");
        Console.WriteLine($"MACs at batch 1: {e.Macs:N0}");
        Console.WriteLine($"planned peak memory: {e.PlannedPeakBytes:N0} bytes");
        if (e.LatencyMedianMicros is { } l) Console.WriteLine(FormattableString.Invariant($"latency p50: {l:F1} us (batch 1, 1 thread, median of {e.LatencyRuns} runs)"));
        if (e.Accuracy is { } a)
        {
            Console.WriteLine($"images: {e.EvaluatedImages}");
            Console.WriteLine(FormattableString.Invariant($"accuracy: {a:F4}"));
        }
        return 0;
    }

    private delegate void FillInputs(int start, int count, Span<float> dst);

    private static int[] Argmax(InferenceSession session, int count, int batch, Stream? scoresOut, int[] sampleShape, FillInputs fill)
    {
        if (session.Inputs.Count != 1) throw new InferenceInputException($"the model takes {session.Inputs.Count} inputs; a classifier takes one");
        if (session.Inputs[0].Shape is { Length: > 0 } s && s[0].IsKnown) batch = (int)s[0].Value;
        var result = new int[count];
        var outputs = new Tensor[session.Outputs.Count];
        Tensor? x = null;
        for (int start = 0; start < count; start += batch)
        {
            int b = Math.Min(batch, count - start);
            if (x is null || x.Shape[0] != b) x = Tensor.Zeros(DataType.Float32, [b, .. sampleShape]);
            fill(start, b, x.Span<float>());
            session.Run([x], outputs);
            var scores = outputs[0];
            if (scores.Type != DataType.Float32 || scores.Length % b != 0)
                throw new InferenceInputException($"the model's first output {scores} is not a float32 [batch, classes] score tensor");
            int classes = scores.Length / b;
            var sp = scores.Span<float>();
            scoresOut?.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(sp.Slice(0, b * classes)));
            for (int i = 0; i < b; i++)
            {
                var row = sp.Slice(i * classes, classes);
                int arg = 0;
                for (int k = 1; k < classes; k++) if (row[k] > row[arg]) arg = k;
                result[start + i] = arg;
            }
        }
        return result;
    }

    private static void WriteArgmax(string path, int[] argmax)
    {
        using var w = new StreamWriter(path);
        foreach (int a in argmax) w.WriteLine(a.ToString(CultureInfo.InvariantCulture));
    }
}
