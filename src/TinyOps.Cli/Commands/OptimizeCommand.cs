using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Spectre.Console;
using TinyOps.Optimize.Evaluation;
using TinyOps.Optimize.Passes;
using TinyOps.Optimize.Recipes;

namespace TinyOps.Cli.Commands;

/// <summary>
/// `tinyops optimize IN OUT [--passes LIST] [--prune S] [--prune-channels R] [--quantize static-int8|dynamic-int8 ...]`
/// writes one optimized copy of a model; `tinyops optimize IN OUTDIR --recipe FILE` builds every variant of a recipe
/// into OUTDIR (OUTDIR/VARIANT.onnx and OUTDIR/report.json). Options map onto recipe passes (<see cref="PassCatalog"/>),
/// applied in the order: --passes, --prune-channels, --prune, --quantize, --fp16. Progress and reports go to stderr.
/// </summary>
internal static class OptimizeCommand
{
    public static Command Create()
    {
        var input = new Argument<string>("in") { Description = "the float ONNX model" };
        var output = new Argument<string>("out") { Description = "where to write the optimized model (with --recipe: a folder for all variants)" };
        var passes = new Option<string?>("--passes") { Description = "comma-separated graph passes run first: fold-constants, remove-dead-nodes, fold-batchnorm, fuse-activations" };
        var fp16 = new Option<bool>("--fp16") { Description = "store float32 weights as float16 (read through a Cast), last of all passes" };
        var quantize = new Option<string?>("--quantize") { Description = "static-int8 (calibrated) or dynamic-int8 (weights ahead of time, activations at run time)" };
        var format = new Option<string>("--format") { Description = "static-int8 output: qoperator (QLinearConv/QLinearMatMul, the default) or qdq (QuantizeLinear/DequantizeLinear around float operators)", DefaultValueFactory = _ => "qoperator" };
        var calibration = new Option<string>("--calibration") { Description = "calibration data: fashion-mnist (training images) or random (deterministic pseudo-random inputs in [0,1), for models without a data set here)", DefaultValueFactory = _ => "fashion-mnist" };
        var count = new Option<int?>("--calibration-count") { Description = "calibration samples (default: 500 Fashion-MNIST images, 32 random samples)" };
        var method = new Option<string>("--calibration-method") { Description = "activation ranges: minmax, percentile or entropy", DefaultValueFactory = _ => "minmax" };
        var percentile = new Option<double>("--percentile") { Description = "percentile of |x| kept by --calibration-method percentile", DefaultValueFactory = _ => 99.99 };
        var dataDir = new Option<string?>("--data-dir") { Description = "folder with the Fashion-MNIST IDX files (default: $TINYOPS_FASHION_MNIST or /usr/share/datasets/fashion-mnist)" };
        var perChannel = new Option<bool>("--per-channel") { Description = "one weight scale per output channel (default true; --per-channel false for one per tensor)", DefaultValueFactory = _ => true };
        var reduceRange = new Option<bool>("--reduce-range") { Description = "7-bit weights, so AVX2 u8·s8 kernels (vpmaddubsw) cannot saturate (default true)", DefaultValueFactory = _ => true };
        var prune = new Option<double?>("--prune") { Description = "magnitude pruning: the fraction of Conv/Gemm/MatMul weights set to zero, e.g. 0.5" };
        var pruneScope = new Option<string>("--prune-scope") { Description = "global (one magnitude threshold over all layers, the default) or layer (each layer to the sparsity)", DefaultValueFactory = _ => "global" };
        var pruneChannels = new Option<double?>("--prune-channels") { Description = "structured pruning: the fraction of each prunable layer's output channels removed, e.g. 0.25" };
        var recipe = new Option<string?>("--recipe") { Description = "a recipe file (YAML or JSON): build every variant into the folder OUT" };
        var cmd = new Command("optimize", "Write optimized variants of a model: fold, fuse, prune, quantize, or a whole recipe");
        cmd.Arguments.Add(input);
        cmd.Arguments.Add(output);
        foreach (var o in new Option[] { passes, fp16, quantize, format, calibration, count, method, percentile, dataDir, perChannel, reduceRange, prune, pruneScope, pruneChannels, recipe }) cmd.Options.Add(o);
        cmd.SetAction(r => CliErrors.Guard(() =>
        {
            var context = new PassContext { DataSets = new DataSets { FashionMnistDirectory = r.GetValue(dataDir) }, Log = m => Console.Error.WriteLine(m) };
            string inPath = r.GetValue(input)!, outPath = r.GetValue(output)!;
            if (r.GetValue(recipe) is { } recipeFile)
            {
                foreach (var o in new Option[] { passes, fp16, quantize, prune, pruneChannels })
                    if (r.GetResult(o) is { Implicit: false }) throw new ArgumentException($"{o.Name} cannot be combined with --recipe; put the pass into the recipe");
                return RunRecipe(RecipeParser.ParseFile(recipeFile), inPath, outPath, context);
            }
            var specs = new List<PassSpec>();
            foreach (var name in (r.GetValue(passes) ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                specs.Add(PassSpec.Of(name));
            if (r.GetValue(pruneChannels) is double ratio) specs.Add(PassSpec.Of("prune-channels", ("ratio", Num(ratio))));
            if (r.GetValue(prune) is double sparsity) specs.Add(PassSpec.Of("prune", ("sparsity", Num(sparsity)), ("scope", r.GetValue(pruneScope)!)));
            if (r.GetValue(quantize) is { } mode)
            {
                var q = new List<(string, string)> { ("mode", mode), ("per_channel", Bool(r.GetValue(perChannel))), ("reduce_range", Bool(r.GetValue(reduceRange))) };
                if (mode == "static-int8")
                {
                    q.AddRange([("format", r.GetValue(format)!), ("calibration", r.GetValue(calibration)!), ("method", r.GetValue(method)!), ("percentile", Num(r.GetValue(percentile)))]);
                    if (r.GetValue(count) is int c) q.Add(("samples", c.ToString(CultureInfo.InvariantCulture)));
                }
                specs.Add(PassSpec.Of("quantize", [.. q]));
            }
            if (r.GetValue(fp16)) specs.Add(PassSpec.Of("float16-weights"));
            if (specs.Count == 0) throw new ArgumentException("nothing to do: give --quantize, --prune, --prune-channels, --passes, --fp16 or --recipe");
            var single = new Recipe
            {
                Name = "command line",
                Source = "the command line",
                LatencyRuns = 0,
                Variants = [new RecipeVariant { Name = Path.GetFileNameWithoutExtension(outPath), Passes = specs }],
            };
            foreach (var (s, i) in specs.Select((s, i) => (s, i))) PassCatalog.Create(s, $"option for pass {i + 1} '{s.Pass}'");
            var sw = Stopwatch.StartNew();
            var result = new RecipeRunner(single, context) { StampVariant = false }.BuildVariant(File.ReadAllBytes(inPath), inPath, 0);
            File.WriteAllBytes(outPath, result.Bytes);
            for (int i = 0; i < result.Passes.Count; i++) PrintOutcome(specs[i].Pass, result.Passes[i]);
            Console.Error.WriteLine($"{outPath}: {result.Bytes.Length:N0} bytes ({sw.Elapsed.TotalSeconds:F1} s)");
            return 0;
        }));
        return cmd;
    }

    /// <summary>A pass's summary and up to 8 of its details on stderr.</summary>
    private static void PrintOutcome(string pass, PassOutcome outcome)
    {
        Console.Error.WriteLine($"  {pass}: {outcome.Summary}");
        foreach (var d in outcome.Details.Take(8)) Console.Error.WriteLine($"    {d}");
        if (outcome.Details.Count > 8) Console.Error.WriteLine($"    ... {outcome.Details.Count - 8} more");
    }

    private static string Num(double v) => v.ToString("R", CultureInfo.InvariantCulture);
    private static string Bool(bool v) => v ? "true" : "false";

    private static int RunRecipe(Recipe recipe, string inPath, string outDir, PassContext context)
    {
        Directory.CreateDirectory(outDir);
        var bytes = File.ReadAllBytes(inPath);
        var runner = new RecipeRunner(recipe, context);
        var results = new List<VariantResult>();
        var baseline = recipe.Evaluation is null ? null : runner.Baseline(bytes, inPath);
        for (int i = 0; i < recipe.Variants.Count; i++)
        {
            var sw = Stopwatch.StartNew();
            var v = runner.BuildVariant(bytes, inPath, i, p => Console.Error.WriteLine($"[{p.VariantIndex + 1}/{recipe.Variants.Count} {p.Variant}] {p.Step}/{p.Steps} {p.Message}"));
            File.WriteAllBytes(Path.Combine(outDir, v.Variant.Name + ".onnx"), v.Bytes);
            for (int k = 0; k < v.Passes.Count; k++) PrintOutcome(v.Variant.Passes[k].Pass, v.Passes[k]);
            Console.Error.WriteLine($"  built in {sw.Elapsed.TotalSeconds:F1} s");
            results.Add(v);
        }
        File.WriteAllBytes(Path.Combine(outDir, "report.json"), RecipeReport.ToJson(recipe, inPath, baseline, results));
        var table = new Table().AddColumns("variant", "targets", "size", "accuracy", "drop (points)", "budget", "p50 latency", "planned peak", "operators");
        if (baseline is not null) table.AddRow("(base)", "", Size(baseline.FileBytes), Pct(baseline.Accuracy), "", "", Us(baseline.LatencyMedianMicros), Size(baseline.PlannedPeakBytes), Markup.Escape(baseline.OperatorText));
        foreach (var v in results)
        {
            var e = v.Evaluation;
            table.AddRow(Markup.Escape(v.Variant.Name), Markup.Escape(string.Join(",", v.Variant.Targets)), Size(v.Bytes.LongLength), Pct(e?.Accuracy),
                v.AccuracyDrop is { } d ? d.ToString("F2", CultureInfo.InvariantCulture) : "", v.WithinBudget is null ? "" : v.WithinBudget.Value ? "[green]ok[/]" : $"[red]over {v.Variant.MaxAccuracyDrop:0.##}[/]",
                Us(e?.LatencyMedianMicros), e is null ? "" : Size(e.PlannedPeakBytes), Markup.Escape(e?.OperatorText ?? ""));
        }
        AnsiConsole.Write(table);
        Console.WriteLine($"{results.Count} variants written to {outDir} (report.json); {results.Count(v => v.WithinBudget == false)} over their accuracy budget");
        return results.Any(v => v.WithinBudget == false) ? 3 : 0;
    }

    internal static string Size(long bytes) => bytes >= 1 << 20 ? $"{bytes / 1048576.0:F2} MiB" : $"{bytes / 1024.0:F1} KiB";
    internal static string Pct(double? a) => a is { } v ? (100 * v).ToString("F2", CultureInfo.InvariantCulture) + " %" : "";
    internal static string Us(double? us) => us is { } v ? (v >= 1000 ? $"{v / 1000:F2} ms" : $"{v:F1} µs") : "";
}
