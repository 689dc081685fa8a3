using System.CommandLine;
using Spectre.Console;
using TinyOps.Engine.Data;
using TinyOps.Engine.Runtime;

namespace TinyOps.Cli.Commands;

/// <summary>`tinyops eval MODEL --dataset fashion-mnist`: accuracy on the 10,000 test images.</summary>
internal static class EvalCommand
{
    public static Command Create()
    {
        var model = new Argument<string>("model") { Description = "an ONNX classifier taking [N,1,28,28] float32 in [0,1]" };
        var dataset = new Option<string>("--dataset") { Description = "the evaluation set (fashion-mnist)", DefaultValueFactory = _ => "fashion-mnist" };
        var dataDir = new Option<string?>("--data-dir") { Description = "folder with the IDX files (default: $TINYOPS_FASHION_MNIST or /usr/share/datasets/fashion-mnist)" };
        var batch = new Option<int>("--batch") { Description = "images per run", DefaultValueFactory = _ => 100 };
        var limit = new Option<int?>("--limit") { Description = "evaluate only the first N images" };
        var cmd = new Command("eval", "Measure a classifier's accuracy on a test set");
        cmd.Arguments.Add(model);
        cmd.Options.Add(dataset);
        cmd.Options.Add(dataDir);
        cmd.Options.Add(batch);
        cmd.Options.Add(limit);
        cmd.SetAction(r => CliErrors.Guard(() =>
        {
            if (r.GetValue(dataset) != "fashion-mnist") throw new ArgumentException($"unknown dataset '{r.GetValue(dataset)}'; supported: fashion-mnist");
            var data = FashionMnist.LoadTest(r.GetValue(dataDir));
            var session = InferenceSession.Load(r.GetValue(model)!);
            int b = r.GetValue(batch);
            if (b < 1) throw new ArgumentException("--batch must be at least 1");
            int count = Math.Min(data.Count, r.GetValue(limit) ?? data.Count);
            var sw = System.Diagnostics.Stopwatch.StartNew();
            Evaluation result = default;
            AnsiConsole.Progress().AutoClear(true).HideCompleted(true).Start(p =>
            {
                var task = p.AddTask("evaluating", maxValue: count);
                result = Evaluator.Accuracy(session, data, count, b, done => task.Value = done);
            });
            Console.WriteLine($"images: {count}; correct: {result.Correct}; time: {sw.Elapsed.TotalSeconds:F2} s");
            Console.WriteLine($"accuracy: {result.Accuracy:F4}");
            return 0;
        }));
        return cmd;
    }
}
