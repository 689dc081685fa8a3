using System.CommandLine;
using System.Diagnostics;
using TinyOps.Engine.Data;
using TinyOps.Engine.Onnx;
using TinyOps.Optimize.Quantization;

namespace TinyOps.Cli.Commands;

/// <summary>
/// `tinyops optimize IN OUT --quantize static-int8 [--calibration fashion-mnist|random] [--per-channel]`: writes a
/// quantized copy of a float model (QOperator format, see docs/optimize.md). Progress and the report go to stderr.
/// </summary>
internal static class OptimizeCommand
{
    public static Command Create()
    {
        var input = new Argument<string>("in") { Description = "the float ONNX model" };
        var output = new Argument<string>("out") { Description = "where to write the optimized ONNX model" };
        var quantize = new Option<string>("--quantize") { Description = "static-int8 (calibrated, QOperator) or dynamic-int8 (not implemented yet)", Required = true };
        var calibration = new Option<string>("--calibration") { Description = "calibration data: fashion-mnist (training images) or random (deterministic pseudo-random inputs in [0,1), for models without a data set here)", DefaultValueFactory = _ => "fashion-mnist" };
        var count = new Option<int?>("--calibration-count") { Description = "calibration samples (default: 500 Fashion-MNIST images, 32 random samples)" };
        var dataDir = new Option<string?>("--data-dir") { Description = "folder with the Fashion-MNIST IDX files (default: $TINYOPS_FASHION_MNIST or /usr/share/datasets/fashion-mnist)" };
        var perChannel = new Option<bool>("--per-channel") { Description = "one weight scale per Conv output channel (default true; --per-channel false for one per tensor)", DefaultValueFactory = _ => true };
        var reduceRange = new Option<bool>("--reduce-range") { Description = "7-bit weights, so AVX2 u8·s8 kernels (vpmaddubsw) cannot saturate (default true)", DefaultValueFactory = _ => true };
        var cmd = new Command("optimize", "Write an optimized variant of a model (today: static int8 quantization)");
        cmd.Arguments.Add(input);
        cmd.Arguments.Add(output);
        cmd.Options.Add(quantize);
        cmd.Options.Add(calibration);
        cmd.Options.Add(count);
        cmd.Options.Add(dataDir);
        cmd.Options.Add(perChannel);
        cmd.Options.Add(reduceRange);
        cmd.SetAction(r => CliErrors.Guard(() =>
        {
            string mode = r.GetValue(quantize)!;
            if (mode == "dynamic-int8") throw new ArgumentException("--quantize dynamic-int8 is not implemented yet; use static-int8");
            if (mode != "static-int8") throw new ArgumentException($"--quantize '{mode}' is not known; use static-int8 (or, later, dynamic-int8)");
            var sw = Stopwatch.StartNew();
            var model = OnnxLoader.LoadFile(r.GetValue(input)!);
            var set = CreateCalibrationSet(model, r.GetValue(calibration)!, r.GetValue(count), r.GetValue(dataDir));
            var options = new QuantizationOptions { PerChannel = r.GetValue(perChannel), ReduceRange = r.GetValue(reduceRange) };
            Console.Error.WriteLine($"calibrating on {set.Description}...");
            var result = StaticQuantizer.Quantize(model, set, options);
            OnnxWriter.WriteFile(result.Model, r.GetValue(output)!);
            Console.Error.WriteLine($"{r.GetValue(output)}: {result.Report} ({sw.Elapsed.TotalSeconds:F1} s)");
            foreach (var w in result.Report.Warnings) Console.Error.WriteLine("warning: " + w);
            return 0;
        }));
        return cmd;
    }

    internal static CalibrationSet CreateCalibrationSet(Engine.Ir.Model model, string kind, int? count, string? dataDir)
    {
        switch (kind)
        {
            case "fashion-mnist":
                return CalibrationSet.FromImages(FashionMnist.LoadTrain(dataDir), count ?? 500, "the Fashion-MNIST training set");
            case "random":
                var input = model.Graph.RuntimeInputs.FirstOrDefault()
                    ?? throw new ArgumentException("the model has no runtime input to calibrate");
                if (input.Shape is null || input.Shape.Length < 2 || input.Shape.Skip(1).Any(d => !d.IsKnown))
                    throw new ArgumentException($"--calibration random needs the input's dimensions after the batch to be known; '{input.Name}' has shape {input.ShapeText}");
                return CalibrationSet.Random(input.Shape.Skip(1).Select(d => checked((int)d.Value)).ToArray(), count ?? 32);
            default:
                throw new ArgumentException($"--calibration '{kind}' is not known; use fashion-mnist or random");
        }
    }
}
