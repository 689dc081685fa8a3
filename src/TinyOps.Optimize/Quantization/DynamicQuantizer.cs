using TinyOps.Engine.Ir;
using TinyOps.Engine.Tensors;
using TinyOps.Optimize.Passes;

namespace TinyOps.Optimize.Quantization;

/// <summary>Settings of <see cref="DynamicQuantizer"/>.</summary>
public sealed record DynamicQuantizationOptions
{
    /// <summary>One weight scale per output column of each MatMul (b_zero_point and the scale are [N]); default on.</summary>
    public bool PerChannel { get; init; } = true;

    /// <summary>7-bit weights ([-64, 64]), as in static quantization, so u8·s8 pair instructions cannot saturate.</summary>
    public bool ReduceRange { get; init; } = true;

    /// <summary>Nodes (by name) to leave in float.</summary>
    public IReadOnlySet<string> ExcludeNodes { get; init; } = new HashSet<string>(StringComparer.Ordinal);
}

/// <summary>
/// Dynamic int8 quantization: weights are quantized ahead of time, activations at run time. Every MatMul with a
/// constant 2-D float B (Gemm is first split into MatMul + Add) becomes
/// <code>
/// DynamicQuantizeLinear(A) → A_q (uint8), A_scale, A_zero_point
/// MatMulInteger(A_q, B_q int8, A_zero_point, B_zero_point 0) → int32 → Cast(float) → Mul(A_scale · B_scale) → the MatMul's output
/// </code>
/// (standard ai.onnx operators; one DynamicQuantizeLinear per activation however many MatMuls read it). Conv stays
/// float: ONNX Runtime's ConvInteger takes only uint8 weights. No calibration data is needed.
/// </summary>
public static class DynamicQuantizer
{
    public static (Model Model, QuantizationReport Report) Quantize(Model model, DynamicQuantizationOptions? options = null)
    {
        options ??= new DynamicQuantizationOptions();
        if (model.DefaultOpset < 11)
            throw new QuantizationException($"the model imports ai.onnx opset {model.DefaultOpset}; DynamicQuantizeLinear needs opset 11 or later");
        var edit = new GraphEdit(GraphPreparation.Prepare(model));
        var g = edit.Graph;
        var report = new QuantizationReport { Calibration = "none (activations are quantized at run time)" };
        var nodes = new List<Node>();
        var dynamic = new Dictionary<string, (string Q, string Scale, string Zero)>(StringComparer.Ordinal);
        int qmax = options.ReduceRange ? 64 : 127;
        foreach (var n in g.Nodes)
        {
            if (!n.IsDefaultDomain || n.OpType != "MatMul" || n.Inputs.Count != 2 || options.ExcludeNodes.Contains(n.Name)
                || !edit.TryFloatConstant(n.Inputs[1], out var w) || w.Rank != 2 || edit.TryConstant(n.Inputs[0], out _))
            {
                nodes.Add(n);
                report.FloatNodes.Add(n.Name.Length > 0 ? n.Name : n.OpType);
                continue;
            }
            string a = n.Inputs[0];
            if (!dynamic.TryGetValue(a, out var aq))
            {
                aq = (edit.Unique(a + "_quantized"), edit.Unique(a + "_scale"), edit.Unique(a + "_zero_point"));
                nodes.Add(new Node { Name = edit.Unique(a + "_DynamicQuantizeLinear"), OpType = "DynamicQuantizeLinear", Inputs = [a], Outputs = [aq.Q, aq.Scale, aq.Zero] });
                dynamic[a] = aq;
                report.QuantizeNodes++;
            }
            var (wq, scales) = WeightQuantization.Symmetric(w, 1, options.PerChannel, qmax);
            string baseName = n.Inputs[1];
            string wName = edit.AddInitializer(baseName + "_quantized", wq);
            string wZero = edit.AddInitializer(baseName + "_zero_point", options.PerChannel ? Tensor.FromArray(new sbyte[scales.Length], scales.Length) : Tensor.Scalar((sbyte)0));
            string wScale = edit.AddInitializer(baseName + "_scale", options.PerChannel ? Tensor.FromArray(scales, scales.Length) : Tensor.Scalar(scales[0]));
            string stem = n.Name.Length > 0 ? n.Name : n.Outputs[0];
            string sum = edit.Unique(n.Outputs[0] + "_int32");
            string sumF = edit.Unique(n.Outputs[0] + "_int32_float");
            string scale = edit.Unique(n.Outputs[0] + "_scale");
            nodes.Add(new Node { Name = edit.Unique(stem + "_MatMulInteger"), OpType = "MatMulInteger", Inputs = [aq.Q, wName, aq.Zero, wZero], Outputs = [sum] });
            var cast = new Node { Name = edit.Unique(stem + "_Cast"), OpType = "Cast", Inputs = [sum], Outputs = [sumF] };
            cast.Attributes["to"] = AttributeValue.Of("to", (long)DataType.Float32);
            nodes.Add(cast);
            nodes.Add(new Node { Name = edit.Unique(stem + "_scale_Mul"), OpType = "Mul", Inputs = [aq.Scale, wScale], Outputs = [scale] });
            nodes.Add(new Node { Name = edit.Unique(stem + "_Mul"), OpType = "Mul", Inputs = [sumF, scale], Outputs = [n.Outputs[0]] });
            report.QuantizedNodes.Add(n.Name);
        }
        if (report.QuantizedNodes.Count == 0)
            throw new QuantizationException($"graph '{model.Graph.Name}' has no MatMul or Gemm with constant float weights, so dynamic quantization has nothing to do (Conv is not quantized dynamically; use static-int8)");
        g.Nodes.Clear();
        g.Nodes.AddRange(nodes);
        edit.RemoveUnusedInitializers();
        var result = edit.ToModel();
        result.IrVersion = Math.Max(result.IrVersion, 7);
        result.Metadata["tinyops.quantization"] = $"dynamic-int8, MatMulInteger, weights int8 symmetric {(options.PerChannel ? "per column" : "per tensor")}{(options.ReduceRange ? ", 7-bit range" : "")}, activations uint8 at run time";
        return (result, report);
    }
}
