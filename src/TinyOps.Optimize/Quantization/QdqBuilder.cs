using TinyOps.Engine.Ir;
using TinyOps.Engine.Tensors;
using TinyOps.Optimize.Passes;

namespace TinyOps.Optimize.Quantization;

/// <summary>
/// Rewrites a prepared, calibrated float graph into QDQ form: every Conv and MatMul that <see cref="StaticQuantizer"/>
/// would quantize stays a float operator, but reads its activation through QuantizeLinear → DequantizeLinear (uint8,
/// the calibrated range), its weights as an int8 initializer through DequantizeLinear (per output channel with axis,
/// opset 13+), a Conv's bias as int32 (scale x_scale·w_scale) through DequantizeLinear, and its output (after a
/// foldable Relu / Clip(0, m), which stays in the graph) goes through QuantizeLinear → DequantizeLinear. Runtimes
/// that understand QDQ (ONNX Runtime) fuse the pairs into integer kernels; any runtime can run the file as float
/// with the quantization error simulated.
/// </summary>
internal sealed class QdqBuilder
{
    private readonly GraphEdit _edit;
    private readonly CalibrationResult _calib;
    private readonly QuantizationOptions _options;
    private readonly Dictionary<string, List<Node>> _consumers;
    private readonly Dictionary<string, (string Scale, string Zero, QuantParams Params)> _qdq = new(StringComparer.Ordinal);
    private readonly HashSet<string> _dequantizedOutputs = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _inputPairs = new(StringComparer.Ordinal);
    private readonly List<Node> _nodes = [];

    public QdqBuilder(Model prepared, CalibrationResult calib, QuantizationOptions options)
    {
        _edit = new GraphEdit(prepared);
        _calib = calib;
        _options = options;
        _consumers = _edit.Consumers();
    }

    public QuantizationReport Report { get; } = new();

    public Model Build()
    {
        var g = _edit.Graph;
        var quantizable = g.Nodes.Where(n => StaticQuantizer.IsQuantizable(n, g, _options) && IsFloatActivation(n.Inputs[0])).ToHashSet();
        var outputs = new Dictionary<Node, Node>(); // node (or its folded activation) whose output gets the output QDQ
        foreach (var n in quantizable) outputs[n] = FoldableActivation(n) ?? n;
        var afterOutput = outputs.Values.ToHashSet();
        foreach (var n in g.Nodes)
        {
            if (quantizable.Contains(n)) EmitQuantized(n);
            else _nodes.Add(n);
            if (afterOutput.Contains(n)) EmitOutputQdq(n);
        }
        g.Nodes.Clear();
        g.Nodes.AddRange(_nodes);
        _edit.RemoveUnusedInitializers();
        return _edit.ToModel();
    }

    private bool IsFloatActivation(string name) =>
        !_edit.Graph.Initializers.ContainsKey(name) && _calib.Types.TryGetValue(name, out var t) && t == DataType.Float32 && !_calib.Range(name).IsEmpty;

    private Node? FoldableActivation(Node n)
    {
        string o = n.Outputs[0];
        if (!_options.FoldActivations || _edit.GraphOutputs.Contains(o) || !_consumers.TryGetValue(o, out var cs) || cs.Count != 1) return null;
        var a = cs[0];
        if (!a.IsDefaultDomain || a.Outputs.Count != 1 || a.Inputs[0] != o || !IsFloatActivation(a.Outputs[0])) return null;
        if (a.OpType == "Relu") return a;
        if (a.OpType == "Clip" && ClipBound(a, 1, "min") == 0f) return a;
        return null;
    }

    private float? ClipBound(Node clip, int input, string attr)
    {
        if (_edit.Opset < 11) return clip.HasAttribute(attr) ? clip.GetFloat(attr, 0) : null;
        if (!clip.HasInput(input)) return null;
        return _edit.TryFloatConstant(clip.Inputs[input], out var t) && t.Length == 1 ? t.ReadOnlySpan<float>()[0] : float.NaN;
    }

    private void EmitQuantized(Node n)
    {
        var x = InputQdq(n.Inputs[0]);
        n.Inputs[0] = x.Name;
        var w = _edit.Graph.Initializers[n.Inputs[1]];
        bool conv = n.OpType == "Conv";
        bool perChannel = _options.PerChannel && _edit.Opset >= 13;
        int axis = conv ? 0 : 1;
        var (wq, scales) = WeightQuantization.Symmetric(w, axis, perChannel, _options.ReduceRange ? 64 : 127);
        string baseName = n.Inputs[1];
        string wName = _edit.AddInitializer(baseName + "_quantized", wq);
        string wScale = _edit.AddInitializer(baseName + "_scale", perChannel ? Tensor.FromArray(scales, scales.Length) : Tensor.Scalar(scales[0]));
        string wZero = _edit.AddInitializer(baseName + "_zero_point", perChannel ? Tensor.FromArray(new sbyte[scales.Length], scales.Length) : Tensor.Scalar((sbyte)0));
        n.Inputs[1] = Dequantize(baseName + "_dequantized", wName, wScale, wZero, perChannel ? axis : null);
        if (conv && n.HasInput(2))
        {
            var b = _edit.Graph.Initializers[n.Inputs[2]].ReadOnlySpan<float>();
            var bq = new int[b.Length];
            var bs = new float[b.Length];
            for (int c = 0; c < b.Length; c++)
            {
                bs[c] = x.Params.Scale * scales[perChannel ? c : 0];
                bq[c] = (int)Math.Clamp(Math.Round(b[c] / (double)bs[c], MidpointRounding.ToEven), int.MinValue, int.MaxValue);
            }
            string bName = _edit.AddInitializer(n.Inputs[2] + "_quantized", Tensor.FromArray(bq, bq.Length));
            string bScale = _edit.AddInitializer(n.Inputs[2] + "_scale", Tensor.FromArray(bs, bs.Length));
            string bZero = _edit.AddInitializer(n.Inputs[2] + "_zero_point", Tensor.FromArray(new int[bs.Length], bs.Length));
            n.Inputs[2] = Dequantize(n.Inputs[2] + "_dequantized", bName, bScale, bZero, 0);
        }
        _nodes.Add(n);
        Report.QuantizedNodes.Add(n.Name);
    }

    /// <summary>The dequantized form of an activation input: the value itself when its producer already ends in QDQ.</summary>
    private (string Name, QuantParams Params) InputQdq(string value)
    {
        var (scale, zero, p) = Params(value);
        if (_dequantizedOutputs.Contains(value)) return (value, p);
        if (_inputPairs.TryGetValue(value, out var existing)) return (existing, p);
        string q = _edit.Unique(value + "_quantized");
        string dq = _edit.Unique(value + "_dequantized");
        _nodes.Add(Node("QuantizeLinear", q, [value, scale, zero]));
        _nodes.Add(Node("DequantizeLinear", dq, [q, scale, zero]));
        Report.QuantizeNodes++;
        Report.DequantizeNodes++;
        _inputPairs[value] = dq;
        return (dq, p);
    }

    /// <summary>Output QDQ: the producer writes value_prequant, QuantizeLinear → DequantizeLinear write the value itself.</summary>
    private void EmitOutputQdq(Node producer)
    {
        string value = producer.Outputs[0];
        var (scale, zero, _) = Params(value, nonNegative: producer.OpType is "Relu" or "Clip");
        string pre = _edit.Unique(value + "_prequant");
        producer.Outputs[0] = pre;
        string q = _edit.Unique(value + "_quantized");
        _nodes.Add(Node("QuantizeLinear", q, [pre, scale, zero]));
        _nodes.Add(Node("DequantizeLinear", value, [q, scale, zero]));
        Report.QuantizeNodes++;
        Report.DequantizeNodes++;
        _dequantizedOutputs.Add(value);
        if (producer.OpType is "Relu" or "Clip") Report.FoldedActivations.Add(producer.Name);
    }

    private (string Scale, string Zero, QuantParams Params) Params(string value, bool nonNegative = false)
    {
        if (_qdq.TryGetValue(value, out var v)) return v;
        var range = _calib.Range(value);
        if (range.IsEmpty) throw new QuantizationException($"value '{value}' was never observed during calibration, so it has no range; is it computed from the input?");
        if (nonNegative) range = new TensorRange(0, MathF.Max(range.Max, 0));
        var p = QuantParams.ForUInt8(range);
        var entry = (_edit.AddInitializer(value + "_scale", Tensor.Scalar(p.Scale)), _edit.AddInitializer(value + "_zero_point", Tensor.Scalar((byte)p.ZeroPoint)), p);
        _qdq[value] = entry;
        return entry;
    }

    private string Dequantize(string name, string q, string scale, string zero, int? axis)
    {
        string outName = _edit.Unique(name);
        var n = Node("DequantizeLinear", outName, [q, scale, zero]);
        if (axis is int a) n.Attributes["axis"] = AttributeValue.Of("axis", (long)a);
        _nodes.Add(n);
        return outName;
    }

    private Node Node(string op, string output, List<string> inputs) =>
        new() { Name = _edit.Unique(output + "_" + op), OpType = op, Inputs = inputs, Outputs = [output] };
}
