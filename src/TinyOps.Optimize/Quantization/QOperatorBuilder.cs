using System.Globalization;
using TinyOps.Engine.Ir;
using TinyOps.Engine.Tensors;

namespace TinyOps.Optimize.Quantization;

/// <summary>
/// Rewrites a prepared, calibrated float graph into QOperator form (see <see cref="StaticQuantizer"/>). Walks the
/// nodes in order, keeping for each float value the forms that exist so far (float, uint8 or both); a consumer that
/// needs the other form gets a QuantizeLinear or DequantizeLinear, inserted once per value.
/// </summary>
internal sealed class QOperatorBuilder
{
    private sealed record QValue(string Name, string Scale, string ZeroPoint, QuantParams Params);

    private static readonly HashSet<string> PassThroughOps = new(StringComparer.Ordinal)
        { "MaxPool", "Flatten", "Reshape", "Squeeze", "Unsqueeze", "Transpose", "Identity" };

    private readonly Model _src;
    private readonly Graph _g;
    private readonly CalibrationResult _calib;
    private readonly QuantizationOptions _options;
    private readonly Graph _out;
    private readonly Dictionary<string, QValue> _quantized = new(StringComparer.Ordinal);
    private readonly HashSet<string> _float = new(StringComparer.Ordinal);
    // float values that are a DequantizeLinear of their uint8 form (RequireFloat), and second float forms made by
    // DequantizedCopy for values computed in float that were quantized afterwards
    private readonly HashSet<string> _dequantized = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _dequantizedCopies = new(StringComparer.Ordinal);
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<Node>> _consumers = new(StringComparer.Ordinal);
    private readonly HashSet<string> _graphOutputs = new(StringComparer.Ordinal);
    private readonly HashSet<Node> _skip = [];
    private readonly int _opset;

    public QuantizationReport Report { get; } = new();

    public QOperatorBuilder(Model prepared, CalibrationResult calib, QuantizationOptions options)
    {
        _src = prepared;
        _g = prepared.Graph;
        _calib = calib;
        _options = options;
        _opset = prepared.DefaultOpset;
        _out = new Graph { Name = _g.Name, DocString = _g.DocString, Inputs = [.. _g.RuntimeInputs], Outputs = [.. _g.Outputs] };
        foreach (var i in _g.Inputs) { _float.Add(i.Name); _names.Add(i.Name); }
        foreach (var k in _g.Initializers.Keys) { _float.Add(k); _names.Add(k); }
        foreach (var n in _g.Nodes)
        {
            foreach (var o in n.Outputs) _names.Add(o);
            foreach (var i in n.Inputs)
            {
                if (i.Length == 0) continue;
                if (!_consumers.TryGetValue(i, out var l)) _consumers[i] = l = [];
                l.Add(n);
            }
        }
        foreach (var o in _g.Outputs) _graphOutputs.Add(o.Name);
    }

    public Model Build()
    {
        foreach (var n in _g.Nodes)
        {
            if (_skip.Contains(n)) continue;
            if (StaticQuantizer.IsQuantizable(n, _g, _options) && IsFloatActivation(n.Inputs[0]))
            {
                if (n.OpType == "Conv") EmitConv(n);
                else EmitMatMul(n);
                continue;
            }
            if (n.IsDefaultDomain && PassThroughOps.Contains(n.OpType) && n.Inputs.Count >= 1 && _quantized.ContainsKey(n.Inputs[0])
                && n.Outputs.Count == 1 && (n.OpType != "MaxPool" || (_opset >= 12 && _options.QuantizedMaxPool)) && OtherInputsConstant(n))
            {
                EmitPassThrough(n);
                continue;
            }
            EmitFloat(n);
        }
        foreach (var o in _g.Outputs) RequireFloat(o.Name);

        // keep only the initializers something uses
        var used = new HashSet<string>(StringComparer.Ordinal);
        foreach (var n in _out.Nodes) foreach (var i in n.Inputs) used.Add(i);
        foreach (var o in _out.Outputs) used.Add(o.Name);
        foreach (var (k, v) in _g.Initializers) if (used.Contains(k) && !_out.Initializers.ContainsKey(k)) _out.Initializers[k] = v;
        foreach (var k in _out.Initializers.Keys.ToList()) if (!used.Contains(k)) _out.Initializers.Remove(k);
        for (int i = 0; i < _out.Nodes.Count; i++) _out.Nodes[i].Index = i;

        var m = Passes.GraphEdit.WithGraph(_src, _out);
        m.IrVersion = Math.Max(_src.IrVersion, 7);
        m.ProducerName = "tinyops";
        m.ProducerVersion = TinyOps.Engine.EngineInfo.Version;
        return m;
    }

    private bool IsFloatActivation(string name) =>
        !_g.Initializers.ContainsKey(name) && _calib.Types.TryGetValue(name, out var t) && t == DataType.Float32 && !_calib.Range(name).IsEmpty;

    private bool OtherInputsConstant(Node n)
    {
        for (int i = 1; i < n.Inputs.Count; i++)
            if (n.Inputs[i].Length > 0 && !_g.Initializers.ContainsKey(n.Inputs[i])) return false;
        return true;
    }

    // ---- Conv -> QLinearConv

    private void EmitConv(Node n)
    {
        var x = RequireQuantized(n.Inputs[0]);
        var w = _g.Initializers[n.Inputs[1]];
        int m = w.Shape[0];
        var (wq, scales) = WeightQuantization.Symmetric(w, 0, _options.PerChannel, _options.ReduceRange ? 64 : 127);
        string baseName = n.Inputs[1];
        string wName = Add(baseName + "_quantized", wq);
        string wScale = Add(baseName + "_scale", _options.PerChannel ? Tensor.FromArray(scales, m) : Tensor.Scalar(scales[0]));
        string wZero = Add(baseName + "_zero_point", _options.PerChannel ? Tensor.FromArray(new sbyte[m], m) : Tensor.Scalar((sbyte)0));

        var (outName, act) = FoldableActivation(n);
        var range = _calib.Range(outName);
        if (act is not null && ClipMax(act) is float clipMax) range = new TensorRange(0, MathF.Min(range.Max, clipMax));
        if (act is not null) range = new TensorRange(0, MathF.Max(range.Max, 0));
        var y = NewQuantized(outName, range);

        var q = new Node { Name = n.Name.Length > 0 ? n.Name + "_quant" : Unique("QLinearConv"), OpType = "QLinearConv" };
        q.Inputs.AddRange([x.Name, x.Scale, x.ZeroPoint, wName, wScale, wZero, y.Scale, y.ZeroPoint]);
        if (n.HasInput(2))
        {
            var b = _g.Initializers[n.Inputs[2]].ReadOnlySpan<float>();
            var bq = new int[b.Length];
            bool clamped = false;
            for (int c = 0; c < b.Length; c++)
            {
                double bs = (double)x.Params.Scale * scales[_options.PerChannel ? c : 0];
                double v = Math.Round(b[c] / bs, MidpointRounding.ToEven);
                if (v > int.MaxValue || v < int.MinValue) clamped = true;
                bq[c] = (int)Math.Clamp(v, int.MinValue, int.MaxValue);
            }
            if (clamped) Report.Warnings.Add($"{n.DisplayName}: a bias value does not fit int32 at scale x_scale·w_scale and was saturated");
            q.Inputs.Add(Add(n.Inputs[2] + "_quantized", Tensor.FromArray(bq, bq.Length)));
        }
        foreach (var name in (string[])["auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"])
            if (n.Attributes.TryGetValue(name, out var a)) q.Attributes[name] = a;
        q.Outputs.Add(y.Name);
        _out.Nodes.Add(q);
        Report.QuantizedNodes.Add(n.Name);
        if (act is not null) { _skip.Add(act); Report.FoldedActivations.Add(act.Name); }
    }

    /// <summary>A Relu or Clip(0, max) that is the only consumer of the conv's output: its output becomes the conv's.</summary>
    private (string Output, Node? Activation) FoldableActivation(Node n)
    {
        string o = n.Outputs[0];
        if (!_options.FoldActivations || _graphOutputs.Contains(o) || !_consumers.TryGetValue(o, out var cs) || cs.Count != 1) return (o, null);
        var a = cs[0];
        if (!a.IsDefaultDomain || a.Outputs.Count != 1 || a.Inputs.Count < 1 || a.Inputs[0] != o || !IsFloatActivation(a.Outputs[0])) return (o, null);
        if (a.OpType == "Relu") return (a.Outputs[0], a);
        if (a.OpType == "Clip" && ClipMin(a) == 0f && (ClipMax(a) is null || ClipMax(a) > 0)) return (a.Outputs[0], a);
        return (o, null);
    }

    private float? ClipMin(Node clip) => ClipBound(clip, 1, "min");
    private float? ClipMax(Node clip) => clip.OpType == "Clip" ? ClipBound(clip, 2, "max") : null;

    private float? ClipBound(Node clip, int input, string attr)
    {
        if (_opset < 11) return clip.HasAttribute(attr) ? clip.GetFloat(attr, 0) : null;
        if (!clip.HasInput(input)) return null;
        if (!_g.Initializers.TryGetValue(clip.Inputs[input], out var t) || t.Type != DataType.Float32 || t.Length != 1) return float.NaN; // not foldable
        return t.ReadOnlySpan<float>()[0];
    }

    // ---- MatMul -> QLinearMatMul

    private void EmitMatMul(Node n)
    {
        var a = RequireQuantized(n.Inputs[0]);
        var b = _g.Initializers[n.Inputs[1]];
        var (bq, scales) = WeightQuantization.Symmetric(b, 0, false, _options.ReduceRange ? 64 : 127);
        string baseName = n.Inputs[1];
        string bName = Add(baseName + "_quantized", bq);
        string bScale = Add(baseName + "_scale", Tensor.Scalar(scales[0]));
        string bZero = Add(baseName + "_zero_point", Tensor.Scalar((sbyte)0));
        var y = NewQuantized(n.Outputs[0], _calib.Range(n.Outputs[0]));
        var q = new Node { Name = n.Name.Length > 0 ? n.Name + "_quant" : Unique("QLinearMatMul"), OpType = "QLinearMatMul" };
        q.Inputs.AddRange([a.Name, a.Scale, a.ZeroPoint, bName, bScale, bZero, y.Scale, y.ZeroPoint]);
        q.Outputs.Add(y.Name);
        _out.Nodes.Add(q);
        Report.QuantizedNodes.Add(n.Name);
    }

    // ---- other nodes

    private void EmitPassThrough(Node n)
    {
        var x = _quantized[n.Inputs[0]];
        var c = GraphPreparation.Copy(n);
        c.Inputs[0] = x.Name;
        var y = new QValue(Unique(n.Outputs[0] + "_quantized"), x.Scale, x.ZeroPoint, x.Params);
        c.Outputs[0] = y.Name;
        _quantized[n.Outputs[0]] = y;
        _out.Nodes.Add(c);
        Report.QuantizedPassThrough.Add(n.Name);
    }

    private void EmitFloat(Node n)
    {
        foreach (var i in n.Inputs) if (i.Length > 0) RequireFloat(i);
        var copy = GraphPreparation.Copy(n);
        if (n.IsDefaultDomain && n.OpType == "Add")
        {
            // a residual sum reads an addend that is also quantized (a float sum that a convolution reads too) through
            // that quantized form, as a quantized-residual network does: every residual stream is then 8-bit, and the
            // engine fuses DequantizeLinear → Add → QuantizeLinear of two byte tensors into one pass
            for (int k = 0; k < copy.Inputs.Count; k++)
                if (copy.Inputs[k] is { Length: > 0 } i && !_dequantized.Contains(i) && _quantized.TryGetValue(i, out var q))
                    copy.Inputs[k] = DequantizedCopy(i, q);
        }
        _out.Nodes.Add(copy);
        foreach (var o in n.Outputs) if (o.Length > 0) _float.Add(o);
        Report.FloatNodes.Add(n.Name.Length > 0 ? n.Name : n.OpType);
    }

    /// <summary>A float value equal to DequantizeLinear(uint8 form of <paramref name="name"/>), made once per value.</summary>
    private string DequantizedCopy(string name, QValue q)
    {
        if (_dequantizedCopies.TryGetValue(name, out var copy)) return copy;
        copy = Unique(name + "_dequantized");
        EmitDequantize(name, q, copy);
        _dequantizedCopies[name] = copy;
        return copy;
    }

    /// <summary>Adds DequantizeLinear(uint8 form <paramref name="q"/> of <paramref name="name"/>) writing <paramref name="output"/>.</summary>
    private void EmitDequantize(string name, QValue q, string output)
    {
        var node = new Node { Name = Unique(name + "_DequantizeLinear"), OpType = "DequantizeLinear" };
        node.Inputs.AddRange([q.Name, q.Scale, q.ZeroPoint]);
        node.Outputs.Add(output);
        _out.Nodes.Add(node);
        Report.DequantizeNodes++;
    }

    /// <summary>The uint8 form of a float value, quantizing it with its calibrated range the first time.</summary>
    private QValue RequireQuantized(string name)
    {
        if (_quantized.TryGetValue(name, out var q)) return q;
        var v = NewQuantized(name, _calib.Range(name));
        var node = new Node { Name = Unique(name + "_QuantizeLinear"), OpType = "QuantizeLinear" };
        node.Inputs.AddRange([name, v.Scale, v.ZeroPoint]);
        node.Outputs.Add(v.Name);
        _out.Nodes.Add(node);
        Report.QuantizeNodes++;
        return v;
    }

    /// <summary>Makes sure the float form of a value exists, dequantizing its uint8 form under the original name if needed.</summary>
    private void RequireFloat(string name)
    {
        if (_float.Contains(name)) return;
        if (!_quantized.TryGetValue(name, out var q))
            throw new QuantizationException($"internal error: value '{name}' is used before it is produced");
        EmitDequantize(name, q, name);
        _float.Add(name);
        _dequantized.Add(name);
    }

    /// <summary>A new uint8 value standing for float value <paramref name="name"/>, with scale and zero point from its range.</summary>
    private QValue NewQuantized(string name, TensorRange range)
    {
        if (range.IsEmpty) throw new QuantizationException($"value '{name}' was never observed during calibration, so it has no range; is it computed from the input?");
        var p = QuantParams.ForUInt8(range);
        string scale = Add(name + "_scale", Tensor.Scalar(p.Scale));
        string zp = Add(name + "_zero_point", Tensor.Scalar((byte)p.ZeroPoint));
        var v = new QValue(Unique(name + "_quantized"), scale, zp, p);
        _quantized[name] = v;
        return v;
    }

    private string Add(string name, Tensor t)
    {
        name = Unique(name);
        _out.Initializers[name] = t;
        return name;
    }

    private string Unique(string name)
    {
        if (_names.Add(name)) return name;
        for (int i = 1; ; i++)
        {
            string c = name + "_" + i.ToString(CultureInfo.InvariantCulture);
            if (_names.Add(c)) return c;
        }
    }
}
