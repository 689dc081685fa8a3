using TinyOps.Engine.Ir;
using TinyOps.Engine.Tensors;

namespace TinyOps.Optimize.Quantization;

/// <summary>The quantized model and what was done to get it.</summary>
public sealed record QuantizationResult(Model Model, QuantizationReport Report, CalibrationResult Calibration);

/// <summary>
/// Static int8 quantization: calibrates activation ranges by running the float model in the engine, then rewrites
/// the graph in QOperator form. Conv → QLinearConv (uint8 activations asymmetric, int8 weights symmetric, per output
/// channel, int32 bias = round(b / (x_scale·w_scale))), with a following Relu / Clip(0, max) folded into the output
/// range; MatMul (and Gemm, split into MatMul + Add) → QLinearMatMul with per-tensor weights and the bias added in
/// float; MaxPool, Flatten, Reshape, Squeeze, Unsqueeze, Transpose and Identity run on the uint8 tensor unchanged;
/// every other node stays float, with QuantizeLinear / DequantizeLinear inserted where float and integer meet.
/// </summary>
public static class StaticQuantizer
{
    public static QuantizationResult Quantize(Model model, CalibrationSet calibration, QuantizationOptions? options = null)
    {
        options ??= new QuantizationOptions();
        if (!(options.Percentile > 0 && options.Percentile <= 100))
            throw new QuantizationException($"the calibration percentile must be in (0, 100], it is {options.Percentile}");
        int opset = model.DefaultOpset;
        if (opset < 10)
            throw new QuantizationException($"the model imports ai.onnx opset {opset}; QLinearConv and QLinearMatMul need opset 10 or later (13 for per-channel weights)");
        var prepared = GraphPreparation.Prepare(model);
        var candidates = prepared.Graph.Nodes.Where(n => IsQuantizable(n, prepared.Graph, options)).ToList();
        if (candidates.Count == 0)
            throw new QuantizationException($"graph '{model.Graph.Name}' has no Conv, Gemm or MatMul with constant float weights, so there is nothing to quantize; static int8 quantization needs at least one");
        var calib = Calibrate(prepared, calibration, options);
        Model result;
        QuantizationReport report;
        if (options.Format == QuantizationFormat.QOperator)
        {
            var builder = new QOperatorBuilder(prepared, calib, options with { PerChannel = options.PerChannel && opset >= 13 });
            result = builder.Build();
            report = builder.Report;
        }
        else
        {
            var builder = new QdqBuilder(prepared, calib, options);
            result = builder.Build();
            report = builder.Report;
        }
        string method = MethodText(options);
        report.Calibration = $"{method} over {calibration.Description}";
        result.Metadata["tinyops.quantization"] = $"static-int8, {(options.Format == QuantizationFormat.QOperator ? "QOperator" : "QDQ")}, {method} calibration over {calibration.Description}, "
            + $"weights int8 symmetric {(options.PerChannel && opset >= 13 ? (options.Format == QuantizationFormat.QOperator ? "per channel (Conv)" : "per channel") : "per tensor")}{(options.ReduceRange ? ", 7-bit range" : "")}, activations uint8 asymmetric";
        return new QuantizationResult(result, report, calib);
    }

    private static string MethodText(QuantizationOptions o) => o.Calibration switch
    {
        CalibrationMethod.Percentile => FormattableString.Invariant($"Percentile {o.Percentile:0.####}"),
        CalibrationMethod.Entropy => "Entropy",
        _ => "MinMax",
    };

    /// <summary>
    /// Activation ranges: one MinMax pass; for Percentile and Entropy a second pass over the same data fills a
    /// histogram of |x| per activation over the first pass's range, and the range is clipped where the method says.
    /// </summary>
    public static CalibrationResult Calibrate(Model prepared, CalibrationSet calibration, QuantizationOptions options)
    {
        var minmax = ActivationCalibration.Run(prepared, calibration, new MinMaxCalibrator(), options.CalibrationBatch);
        if (options.Calibration == CalibrationMethod.MinMax) return minmax;
        var first = minmax.Calibrator.Names.ToDictionary(n => n, minmax.Range, StringComparer.Ordinal);
        Func<long[], double, double> pick = options.Calibration == CalibrationMethod.Percentile
            ? (h, top) => HistogramCalibrator.PercentileThreshold(h, top, options.Percentile)
            : (h, top) => HistogramCalibrator.EntropyThreshold(h, top, options.EntropyLevels);
        return ActivationCalibration.Run(prepared, calibration, new HistogramCalibrator(first, pick, options.HistogramBins), options.CalibrationBatch);
    }

    internal static bool IsQuantizable(Node n, Graph g, QuantizationOptions options)
    {
        if (!n.IsDefaultDomain || options.ExcludeNodes.Contains(n.Name) || n.Outputs.Count != 1) return false;
        if (n.OpType == "Conv")
        {
            if (n.Inputs.Count < 2 || !g.Initializers.TryGetValue(n.Inputs[1], out var w) || w.Type != DataType.Float32 || w.Rank < 3) return false;
            if (n.HasInput(2) && (!g.Initializers.TryGetValue(n.Inputs[2], out var b) || b.Type != DataType.Float32)) return false;
            return true;
        }
        if (n.OpType == "MatMul")
            return n.Inputs.Count == 2 && g.Initializers.TryGetValue(n.Inputs[1], out var m) && m.Type == DataType.Float32 && m.Rank == 2
                && !g.Initializers.ContainsKey(n.Inputs[0]);
        return false;
    }
}
