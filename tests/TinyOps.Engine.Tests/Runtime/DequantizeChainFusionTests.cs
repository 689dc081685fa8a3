using TinyOps.Engine.Ir;
using TinyOps.Engine.Kernels;
using TinyOps.Engine.Kernels.Quantized;
using TinyOps.Engine.Runtime;
using TinyOps.Engine.Runtime.Fusion;
using TinyOps.Engine.Tensors;
using Xunit;

namespace TinyOps.Engine.Tests.Runtime;

/// <summary>
/// DequantizeLinear → Add(constant or computed addend) → [Relu] → [QuantizeLinear] fused into one node gives bit for
/// bit the result of the separate nodes, and is only fused when the intermediates have no other reader.
/// </summary>
public class DequantizeChainFusionTests
{
    private static Node N(string op, string[] inputs, string output) => new() { Name = output + "_node", OpType = op, Inputs = [.. inputs], Outputs = [output] };

    private sealed record Case(DataType XType, int[] XShape, int[] BiasShape, bool BiasFirst, bool Relu, DataType? YType, bool ZeroPoints);

    private static Model Build(Case c, int seed)
    {
        var r = new Random(seed);
        var g = new Graph
        {
            Inputs = [new ValueInfo("x", c.XType, c.XShape.Select(v => Dim.Of(v)).ToArray())],
        };
        int bn = c.BiasShape.Aggregate(1, (a, b) => a * b);
        g.Initializers["bias"] = Tensor.FromArray(Enumerable.Range(0, bn).Select(_ => (float)(r.NextDouble() * 6 - 3)).ToArray(), c.BiasShape);
        g.Initializers["xs"] = Tensor.Scalar(0.0173f);
        g.Initializers["ys"] = Tensor.Scalar(0.0219f);
        if (c.XType == DataType.Int8) g.Initializers["xz"] = Tensor.Scalar((sbyte)-7);
        else if (c.XType == DataType.UInt8) g.Initializers["xz"] = Tensor.Scalar((byte)131);
        else g.Initializers["xz"] = Tensor.Scalar(0);
        if (c.YType == DataType.Int8) g.Initializers["yz"] = Tensor.Scalar((sbyte)5);
        else g.Initializers["yz"] = Tensor.Scalar((byte)97);
        g.Nodes.Add(N("DequantizeLinear", c.ZeroPoints ? ["x", "xs", "xz"] : ["x", "xs"], "f"));
        g.Nodes.Add(N("Add", c.BiasFirst ? ["bias", "f"] : ["f", "bias"], "a"));
        string last = "a";
        if (c.Relu) { g.Nodes.Add(N("Relu", [last], "r")); last = "r"; }
        if (c.YType is not null)
        {
            g.Nodes.Add(N("QuantizeLinear", c.ZeroPoints || c.YType == DataType.Int8 ? [last, "ys", "yz"] : [last, "ys"], "q"));
            last = "q";
        }
        g.Outputs.Add(new ValueInfo(last, DataType.Undefined, null));
        return new Model { Graph = g, Opsets = { [""] = 13 } };
    }

    private static Tensor Input(Case c, int seed)
    {
        var r = new Random(seed);
        int n = c.XShape.Aggregate(1, (a, b) => a * b);
        return c.XType switch
        {
            DataType.UInt8 => Tensor.FromArray(Enumerable.Range(0, n).Select(i => i % 9 == 0 ? (byte)255 : (byte)r.Next(256)).ToArray(), c.XShape),
            DataType.Int8 => Tensor.FromArray(Enumerable.Range(0, n).Select(i => i % 9 == 0 ? sbyte.MinValue : (sbyte)r.Next(-128, 128)).ToArray(), c.XShape),
            _ => Tensor.FromArray(Enumerable.Range(0, n).Select(_ => r.Next(-400, 400)).ToArray(), c.XShape),
        };
    }

    private static (byte[] Bytes, int Nodes) Run(Model m, Tensor x, bool fuse)
    {
        var s = new InferenceSession(m, new SessionOptions { FuseDequantizeChains = fuse, ProfileNodes = true });
        var y = s.Run(new Dictionary<string, Tensor> { ["x"] = x }).Values.Single();
        return (y.Buffer.AsSpan(y.ByteOffset, y.Length * y.Type.ElementSize()).ToArray(), s.NodeProfile().Count);
    }

    public static TheoryData<int> Cases => new() { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 };

    private static readonly Case[] All =
    [
        new(DataType.UInt8, [1, 64], [64], false, true, DataType.UInt8, true),      // Gemm bias + Relu between QLinearMatMuls
        new(DataType.UInt8, [1, 10], [10], false, false, null, true),              // the graph's last Gemm bias, float out
        new(DataType.UInt8, [3, 37], [1, 37], true, true, DataType.UInt8, true),   // bias first, odd length
        new(DataType.Int8, [2, 5, 19], [5, 19], false, false, DataType.Int8, true),
        new(DataType.UInt8, [4, 70], [], false, true, DataType.UInt8, false),      // scalar bias, no zero points
        new(DataType.UInt8, [4, 1], [3], false, true, DataType.UInt8, true),       // broadcast grows the output: [4, 3]
        new(DataType.UInt8, [2, 3, 4], [3, 1], true, false, null, true),           // broadcast that is not a repeat
        new(DataType.Int8, [1, 200], [200], false, true, null, true),              // Relu, float out
        new(DataType.Int32, [2, 33], [33], false, false, DataType.UInt8, true),    // int32 input
        new(DataType.UInt8, [1, 8], [1, 1, 8], false, true, DataType.UInt8, true), // bias of higher rank
        new(DataType.UInt8, [1, 3], [3], false, false, DataType.Int8, true),
    ];

    [Theory]
    [MemberData(nameof(Cases))]
    public void FusedChainIsBitIdentical(int i)
    {
        var c = All[i];
        var m = Build(c, 100 + i);
        var x = Input(c, 200 + i);
        var (expected, unfusedNodes) = Run(m, x, fuse: false);
        var (actual, fusedNodes) = Run(m, x, fuse: true);
        Assert.Equal(expected, actual);
        Assert.Equal(1, fusedNodes);
        Assert.Equal(m.Graph.Nodes.Count, unfusedNodes);
    }

    [Fact]
    public void SaturationAndZeroPointsMatch()
    {
        // large biases push many values past both ends of the uint8 range
        var c = All[0];
        var m = Build(c, 1);
        m.Graph.Initializers["bias"] = Tensor.FromArray(Enumerable.Range(0, 64).Select(i => (i % 3 - 1) * 40f + i * 0.01f).ToArray(), 64);
        var x = Input(c, 2);
        Assert.Equal(Run(m, x, false).Bytes, Run(m, x, true).Bytes);
    }

    [Fact]
    public void IntermediateWithAnotherReaderIsNotFused()
    {
        var m = Build(All[0], 3);
        // the Add's output also feeds a second Relu that is a graph output: DQ + Add may fuse, but not past the Add
        m.Graph.Nodes.Add(N("Relu", ["a"], "extra"));
        m.Graph.Outputs.Add(new ValueInfo("extra", DataType.Undefined, null));
        var fused = DequantizeChainFusion.Apply(m.Graph, m, KernelRegistry.Default);
        Assert.Contains(fused.Nodes, n => n.OpType == "QuantizeLinear");
        Assert.Contains(fused.Nodes, n => n.OpType == "Relu" && n.Outputs[0] == "r");
        var x = Input(All[0], 4);
        var a = new InferenceSession(m, new SessionOptions { FuseDequantizeChains = false }).Run(new Dictionary<string, Tensor> { ["x"] = x });
        var b = new InferenceSession(m).Run(new Dictionary<string, Tensor> { ["x"] = x });
        foreach (var k in a.Keys) Assert.Equal(a[k].Buffer.AsSpan(a[k].ByteOffset, a[k].Length * a[k].Type.ElementSize()).ToArray(), b[k].Buffer.AsSpan(b[k].ByteOffset, b[k].Length * b[k].Type.ElementSize()).ToArray());
    }

    [Fact]
    public void GraphOutputIntermediateIsNotFused()
    {
        var m = Build(All[0], 5);
        m.Graph.Outputs.Add(new ValueInfo("f", DataType.Undefined, null));
        var fused = DequantizeChainFusion.Apply(m.Graph, m, KernelRegistry.Default);
        Assert.Same(m.Graph, fused);
    }

    [Fact]
    public void RuntimeAddendIsFusedBitIdentically()
    {
        var m = Build(All[1], 6);
        m.Graph.Initializers.Remove("bias");
        m.Graph.Inputs.Add(new ValueInfo("bias", DataType.Float32, [Dim.Of(10)]));
        var fused = DequantizeChainFusion.Apply(m.Graph, m, KernelRegistry.Default);
        Assert.Single(fused.Nodes);
        var x = Input(All[1], 9);
        var bias = Tensor.FromArray(Enumerable.Range(0, 10).Select(i => i * 0.37f - 1.5f).ToArray(), 10);
        byte[] Y(bool fuse)
        {
            var y = new InferenceSession(m, new SessionOptions { FuseDequantizeChains = fuse }).Run(new Dictionary<string, Tensor> { ["x"] = x, ["bias"] = bias }).Values.Single();
            return y.Buffer.AsSpan(y.ByteOffset, y.Length * 4).ToArray();
        }
        Assert.Equal(Y(false), Y(true));
    }

    /// <summary>
    /// MobileNetV2's residual chain as the quantizer writes it: s1 = DQ(a) + DQ(b) feeds both a QuantizeLinear and the
    /// next sum s2 = s1 + DQ(c), whose QuantizeLinear is its only reader; the second addend's DequantizeLinear comes
    /// after the first one, so the fused node must run where the Add ran.
    /// </summary>
    [Fact]
    public void ResidualSumsAreFusedAtTheAddAndBitIdentical()
    {
        var g = new Graph
        {
            Inputs =
            [
                new ValueInfo("a", DataType.UInt8, [Dim.Of(1), Dim.Of(6), Dim.Of(5), Dim.Of(5)]),
                new ValueInfo("b", DataType.UInt8, [Dim.Of(1), Dim.Of(6), Dim.Of(5), Dim.Of(5)]),
                new ValueInfo("c", DataType.UInt8, [Dim.Of(1), Dim.Of(6), Dim.Of(5), Dim.Of(5)]),
            ],
        };
        foreach (var (n, sc, zp) in new[] { ("a", 0.031f, 120), ("b", 0.017f, 131), ("c", 0.043f, 3), ("s1", 0.052f, 110), ("s2", 0.061f, 127) })
        {
            g.Initializers[n + "_s"] = Tensor.Scalar(sc);
            g.Initializers[n + "_z"] = Tensor.Scalar((byte)zp);
        }
        g.Nodes.Add(N("DequantizeLinear", ["a", "a_s", "a_z"], "fa"));
        g.Nodes.Add(N("DequantizeLinear", ["b", "b_s", "b_z"], "fb"));
        g.Nodes.Add(N("Add", ["fa", "fb"], "s1"));
        g.Nodes.Add(N("QuantizeLinear", ["s1", "s1_s", "s1_z"], "q1"));
        g.Nodes.Add(N("DequantizeLinear", ["c", "c_s", "c_z"], "fc"));
        g.Nodes.Add(N("Add", ["s1", "fc"], "s2"));
        g.Nodes.Add(N("QuantizeLinear", ["s2", "s2_s", "s2_z"], "q2"));
        g.Outputs.Add(new ValueInfo("q1", DataType.Undefined, null));
        g.Outputs.Add(new ValueInfo("q2", DataType.Undefined, null));
        var m = new Model { Graph = g, Opsets = { [""] = 13 } };
        var fused = DequantizeChainFusion.Apply(m.Graph, m, KernelRegistry.Default);
        // DQ(a)+DQ(b)+Add (s1 has two readers), Q(s1), DQ(c)+Add+Q: three nodes instead of seven
        Assert.Equal(3, fused.Nodes.Count);
        var r = new Random(3);
        Tensor B() => Tensor.FromArray(Enumerable.Range(0, 150).Select(i => i % 11 == 0 ? (byte)255 : (byte)r.Next(256)).ToArray(), 1, 6, 5, 5);
        var inputs = new Dictionary<string, Tensor> { ["a"] = B(), ["b"] = B(), ["c"] = B() };
        var want = new InferenceSession(m, new SessionOptions { FuseDequantizeChains = false }).Run(inputs);
        var got = new InferenceSession(m, new SessionOptions { ExactQuantizedAdds = true }).Run(inputs);
        foreach (var k in want.Keys)
            Assert.Equal(want[k].Buffer.AsSpan(want[k].ByteOffset, want[k].Length).ToArray(), got[k].Buffer.AsSpan(got[k].ByteOffset, got[k].Length).ToArray());
    }

    /// <summary>
    /// A quantized residual: DQ(a) + DQ(b) → [Relu] → Q with both DequantizeLinear nodes fused, run in one pass from
    /// bytes to bytes (16 at a time plus a scalar tail); uint8 and int8 on every side, and a float addend holding NaN
    /// and infinities (the scalar loop defines those blocks).
    /// </summary>
    [Theory]
    [InlineData(false, false, false, false)]
    [InlineData(true, false, true, true)]
    [InlineData(false, true, true, false)]
    [InlineData(true, true, false, true)]
    public void QuantizedResidualRunsInOnePassBitIdentically(bool aSigned, bool bSigned, bool ySigned, bool relu)
    {
        int[] shape = [1, 7, 11, 13];
        DataType T(bool s) => s ? DataType.Int8 : DataType.UInt8;
        Tensor Z(bool s, int v) => s ? Tensor.Scalar((sbyte)(v - 128)) : Tensor.Scalar((byte)v);
        var g = new Graph
        {
            Inputs =
            [
                new ValueInfo("a", T(aSigned), shape.Select(d => Dim.Of(d)).ToArray()),
                new ValueInfo("b", T(bSigned), shape.Select(d => Dim.Of(d)).ToArray()),
            ],
            Initializers = { ["a_s"] = Tensor.Scalar(0.023f), ["a_z"] = Z(aSigned, 117), ["b_s"] = Tensor.Scalar(0.041f), ["b_z"] = Z(bSigned, 140),
                             ["y_s"] = Tensor.Scalar(0.037f), ["y_z"] = Z(ySigned, relu ? 0 : 125) },
        };
        g.Nodes.Add(N("DequantizeLinear", ["a", "a_s", "a_z"], "fa"));
        g.Nodes.Add(N("DequantizeLinear", ["b", "b_s", "b_z"], "fb"));
        g.Nodes.Add(N("Add", ["fb", "fa"], "s"));
        string last = "s";
        if (relu) { g.Nodes.Add(N("Relu", ["s"], "r")); last = "r"; }
        g.Nodes.Add(N("QuantizeLinear", [last, "y_s", "y_z"], "y"));
        g.Outputs.Add(new ValueInfo("y", DataType.Undefined, null));
        var m = new Model { Graph = g, Opsets = { [""] = 13 } };
        var fused = DequantizeChainFusion.Apply(m.Graph, m, KernelRegistry.Default);
        Assert.Single(fused.Nodes);
        var r = new Random(11);
        int n = shape.Aggregate(1, (x, y) => x * y);
        Tensor Bytes(bool s) { var b = new byte[n]; r.NextBytes(b); return s ? Tensor.FromArray((sbyte[])(Array)b, shape) : Tensor.FromArray(b, shape); }
        var inputs = new Dictionary<string, Tensor> { ["a"] = Bytes(aSigned), ["b"] = Bytes(bSigned) };
        var want = new InferenceSession(m, new SessionOptions { FuseDequantizeChains = false }).Run(inputs)["y"];
        var got = new InferenceSession(m, new SessionOptions { ExactQuantizedAdds = true }).Run(inputs)["y"];
        Assert.Equal(want.Bytes.ToArray(), got.Bytes.ToArray());
    }

    /// <summary>
    /// By default the fused quantized residual runs by ratio multipliers: every byte must be the scalar formula's
    /// (DequantizeChainKernel.RatioSum: fma(a − za, sa/sy, (b − zb)·sb/sy), relu, round half to even, + zy, saturate)
    /// on the vector lanes and the tail alike, and within one step of the separate kernels'. Ties of the ratio sum
    /// (sa/sy = 0.5 on odd differences) must round to even. A ratio too large for the vector rounding takes the exact
    /// route instead.
    /// </summary>
    [Theory]
    [InlineData(false, false, false, false)]
    [InlineData(true, false, true, true)]
    [InlineData(false, true, true, false)]
    [InlineData(true, true, false, true)]
    public void QuantizedResidualByRatiosMatchesItsFormula(bool aSigned, bool bSigned, bool ySigned, bool relu)
    {
        int[] shape = [1, 7, 11, 13];
        int n = shape.Aggregate(1, (x, y) => x * y);
        DataType T(bool s) => s ? DataType.Int8 : DataType.UInt8;
        Tensor Z(bool s, int v) => s ? Tensor.Scalar((sbyte)(v - 128)) : Tensor.Scalar((byte)v);
        var r = new Random(17);
        Tensor Bytes(bool s) { var b = new byte[n]; r.NextBytes(b); return s ? Tensor.FromArray((sbyte[])(Array)b, shape) : Tensor.FromArray(b, shape); }
        var inputs = new Dictionary<string, Tensor> { ["a"] = Bytes(aSigned), ["b"] = Bytes(bSigned) };
        // (a scale, b scale, y scale): ordinary scales, ties (ratios 0.5 and 0.25), ratios too large for the vector rounding
        foreach (var (sa, sb, sy) in new[] { (0.023f, 0.041f, 0.037f), (0.05f, 0.025f, 0.1f), (3e4f, 0.041f, 0.001f) })
        {
            var g = new Graph
            {
                Inputs =
                [
                    new ValueInfo("a", T(aSigned), shape.Select(d => Dim.Of(d)).ToArray()),
                    new ValueInfo("b", T(bSigned), shape.Select(d => Dim.Of(d)).ToArray()),
                ],
                Initializers = { ["a_s"] = Tensor.Scalar(sa), ["a_z"] = Z(aSigned, 117), ["b_s"] = Tensor.Scalar(sb), ["b_z"] = Z(bSigned, 140),
                                 ["y_s"] = Tensor.Scalar(sy), ["y_z"] = Z(ySigned, relu ? 0 : 125) },
            };
            g.Nodes.Add(N("DequantizeLinear", ["a", "a_s", "a_z"], "fa"));
            g.Nodes.Add(N("DequantizeLinear", ["b", "b_s", "b_z"], "fb"));
            g.Nodes.Add(N("Add", ["fa", "fb"], "s"));
            string last = "s";
            if (relu) { g.Nodes.Add(N("Relu", ["s"], "r")); last = "r"; }
            g.Nodes.Add(N("QuantizeLinear", [last, "y_s", "y_z"], "y"));
            g.Outputs.Add(new ValueInfo("y", DataType.Undefined, null));
            var m = new Model { Graph = g, Opsets = { [""] = 13 } };
            var fused = DequantizeChainFusion.Apply(m.Graph, m, KernelRegistry.Default, ratios: true);
            Assert.Equal((relu ? "RQAddReluQuantize" : "RQAddQuantize"), Assert.Single(fused.Nodes).GetString(DequantizeChainKernel.StepsAttribute, ""));
            var exact = new InferenceSession(m, new SessionOptions { FuseDequantizeChains = false }).Run(inputs)["y"].Bytes.ToArray();
            var got = new InferenceSession(m).Run(inputs)["y"].Bytes.ToArray();
            if (sa > 1) { Assert.Equal(exact, got); continue; } // the exact route
            var ab = inputs["a"].Bytes; var bb = inputs["b"].Bytes;
            int za = aSigned ? 117 - 128 : 117, zb = bSigned ? 140 - 128 : 140, zy = ySigned ? (relu ? -128 : -3) : (relu ? 0 : 125);
            int lo = ySigned ? -128 : 0, hi = ySigned ? 127 : 255;
            int off = 0, ties = 0;
            for (int i = 0; i < n; i++)
            {
                int xa = (aSigned ? (sbyte)ab[i] : ab[i]) - za, xb = (bSigned ? (sbyte)bb[i] : bb[i]) - zb;
                int want = Math.Clamp(DequantizeChainKernel.RatioSum(xa, sa / sy, xb, sb / sy, relu) + zy, lo, hi);
                int v = ySigned ? (sbyte)got[i] : got[i], e = ySigned ? (sbyte)exact[i] : exact[i];
                Assert.True(want == v, $"element {i}: {v}, the formula gives {want}");
                Assert.True(Math.Abs(v - e) <= 1, $"element {i}: {v}, the separate kernels give {e}");
                if (v != e) off++;
                float sum = MathF.FusedMultiplyAdd(xa, sa / sy, xb * (sb / sy));
                if (Math.Abs(sum - MathF.Floor(sum) - 0.5f) == 0 && v > lo && v < hi) ties++;
            }
            // the tie set differs more often: exact ties of the ratios are near-ties either side in the separate kernels
            if (sa == 0.05f) Assert.True(ties > 100, $"only {ties} ties");
            else Assert.True(off < n / 100, $"{off} of {n} bytes differ from the separate kernels");
        }
    }

    [Fact]
    public void FloatResidualWithNaNRunsInOnePassBitIdentically()
    {
        int[] shape = [1, 5, 9, 9];
        int n = shape.Aggregate(1, (x, y) => x * y);
        var g = new Graph
        {
            Inputs =
            [
                new ValueInfo("a", DataType.UInt8, shape.Select(d => Dim.Of(d)).ToArray()),
                new ValueInfo("f", DataType.Float32, shape.Select(d => Dim.Of(d)).ToArray()),
            ],
            Initializers = { ["a_s"] = Tensor.Scalar(0.02f), ["a_z"] = Tensor.Scalar((byte)100), ["y_s"] = Tensor.Scalar(0.05f), ["y_z"] = Tensor.Scalar((byte)0) },
        };
        g.Nodes.Add(N("DequantizeLinear", ["a", "a_s", "a_z"], "fa"));
        g.Nodes.Add(N("Add", ["fa", "f"], "s"));
        g.Nodes.Add(N("Relu", ["s"], "rl"));
        g.Nodes.Add(N("QuantizeLinear", ["rl", "y_s", "y_z"], "y"));
        g.Outputs.Add(new ValueInfo("y", DataType.Undefined, null));
        var m = new Model { Graph = g, Opsets = { [""] = 13 } };
        var r = new Random(5);
        var ab = new byte[n];
        r.NextBytes(ab);
        var fv = Enumerable.Range(0, n).Select(i => i == 37 ? float.NaN : i == 200 ? float.PositiveInfinity : i == 201 ? float.NegativeInfinity : i % 9 == 0 ? -0f : (float)(r.NextDouble() * 20 - 10)).ToArray();
        var inputs = new Dictionary<string, Tensor> { ["a"] = Tensor.FromArray(ab, shape), ["f"] = Tensor.FromArray(fv, shape) };
        var want = new InferenceSession(m, new SessionOptions { FuseDequantizeChains = false }).Run(inputs)["y"];
        var got = new InferenceSession(m).Run(inputs)["y"];
        Assert.Equal(want.Bytes.ToArray(), got.Bytes.ToArray());
    }

    /// <summary>
    /// A quantized classifier head: DequantizeLinear → GlobalAveragePool → Flatten → QuantizeLinear. The
    /// DequantizeLinear is fused into the pool, which must give the separate nodes' averages bit for bit: uint8 and
    /// int8, planes of 7 × 7 (vector lanes and a tail), 2 × 3 (shorter than a vector), 8 × 8 (no tail) and 40 × 40 (the
    /// large-plane sum), with and without a zero point; and allocate nothing per run.
    /// </summary>
    [Theory]
    [InlineData(false, 7, 7, true)]
    [InlineData(true, 7, 7, true)]
    [InlineData(false, 2, 3, true)]
    [InlineData(true, 8, 8, false)]
    [InlineData(false, 40, 40, true)]
    public void DequantizedGlobalAverageIsFusedBitIdentically(bool signed, int h, int w, bool zeroPoint)
    {
        int c = 37;
        var type = signed ? DataType.Int8 : DataType.UInt8;
        var g = new Graph
        {
            Inputs = [new ValueInfo("x", type, [Dim.Of(2), Dim.Of(c), Dim.Of(h), Dim.Of(w)])],
            Initializers = { ["x_s"] = Tensor.Scalar(0.0173f), ["y_s"] = Tensor.Scalar(0.0051f), ["y_z"] = Tensor.Scalar((byte)3) },
        };
        if (zeroPoint) g.Initializers["x_z"] = signed ? Tensor.Scalar((sbyte)-7) : Tensor.Scalar((byte)131);
        g.Nodes.Add(N("DequantizeLinear", zeroPoint ? ["x", "x_s", "x_z"] : ["x", "x_s"], "f"));
        g.Nodes.Add(N("GlobalAveragePool", ["f"], "p"));
        g.Nodes.Add(N("Flatten", ["p"], "v"));
        g.Nodes.Add(N("QuantizeLinear", ["v", "y_s", "y_z"], "q"));
        g.Outputs.Add(new ValueInfo("p", DataType.Undefined, null)); // the float averages themselves are compared too
        g.Outputs.Add(new ValueInfo("q", DataType.Undefined, null));
        var m = new Model { Graph = g, Opsets = { [""] = 13 } };
        var fused = DequantizeChainFusion.Apply(m.Graph, m, KernelRegistry.Default);
        Assert.Equal(3, fused.Nodes.Count);
        Assert.Contains(fused.Nodes, n => n.OpType == "GlobalAveragePool" && n.Inputs.Count == 3);
        var r = new Random(h * 100 + w);
        var bytes = new byte[2 * c * h * w];
        r.NextBytes(bytes);
        var x = signed ? Tensor.FromArray((sbyte[])(Array)bytes, 2, c, h, w) : Tensor.FromArray(bytes, 2, c, h, w);
        var inputs = new Dictionary<string, Tensor> { ["x"] = x };
        var want = new InferenceSession(m, new SessionOptions { FuseDequantizeChains = false }).Run(inputs);
        var session = new InferenceSession(m);
        var got = session.Run(inputs);
        Assert.Equal(want["p"].Bytes.ToArray(), got["p"].Bytes.ToArray());
        Assert.Equal(want["q"].Bytes.ToArray(), got["q"].Bytes.ToArray());
        var ins = new[] { x };
        var outs = new Tensor[2];
        session.Run(ins, outs);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 5; i++) session.Run(ins, outs);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void FusedRunAllocatesNothing()
    {
        var m = Build(All[0], 7);
        var s = new InferenceSession(m);
        var inputs = new[] { Input(All[0], 8) };
        var outputs = new Tensor[1];
        s.Run(inputs, outputs);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10; i++) s.Run(inputs, outputs);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
