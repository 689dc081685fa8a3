using TinyOps.Engine.Ir;
using TinyOps.Engine.Kernels.Quantized;
using TinyOps.Engine.Runtime;
using TinyOps.Engine.Tensors;
using Xunit;

namespace TinyOps.Engine.Tests.Kernels;

/// <summary>
/// The direct depthwise 3×3 int8 kernel (vector and forced-scalar paths) against its plain reference, bit for bit, on
/// random shapes: stride 1 and 2, symmetric and asymmetric padding, per-tensor and per-channel weight zero points,
/// uint8/int8 inputs, weights and outputs. Also the vpmaddubsw GEMM tile and the vectorized quantize/dequantize.
/// </summary>
public sealed class IntDepthwiseTests
{
    /// <summary>Auto (vpdpbusd where supported), AVX2 forced (the int16 route), scalar.</summary>
    public static TheoryData<int> Paths => new() { (int)IntGemmPath.Auto, (int)IntGemmPath.Avx2, (int)IntGemmPath.Scalar };

    private static T WithPath<T>(IntGemmPath path, Func<T> f)
    {
        var old = FastIntGemm.Forced;
        FastIntGemm.Forced = path;
        try { return f(); }
        finally { FastIntGemm.Forced = old; }
    }

    private static ConvGeometry Geometry(int c, int h, int w, int stride, long[] pads)
    {
        var node = new Node { OpType = "QLinearConv", Name = "dw" };
        node.Attributes["group"] = AttributeValue.Of("group", (long)c);
        node.Attributes["strides"] = AttributeValue.Of("strides", new long[] { stride, stride });
        node.Attributes["pads"] = AttributeValue.Of("pads", pads);
        var g = new ConvGeometry(node);
        Assert.Null(g.Compute([1, c, h, w], [c, 1, 3, 3]));
        Assert.True(IntDepthwise3x3.Supports(g));
        return g;
    }

    /// <summary>
    /// Weights whose w − zw fit a signed byte (the vpdpbusd route takes them) or raw random ones (mostly not: the
    /// int16 route), with a weight zero point per channel or shared.
    /// </summary>
    /// <summary>
    /// Random weights and zero points; <paramref name="fitting"/>: every w − zw fits a signed byte, and for half the calls
    /// (or when <paramref name="sevenBit"/>) lies in [−64, 64], as 7-bit quantized weights do, so that the route with
    /// the emulated dot product (machines without AVX-VNNI, see ByteDot) runs too.
    /// </summary>
    private static (byte[] W, int[] Zero) Weights(Random rng, int c, bool signed, bool perChannel, bool fitting, bool extreme, bool? sevenBit = null)
    {
        int min = signed ? -128 : 0, max = signed ? 127 : 255;
        int half = (sevenBit ?? rng.Next(2) == 0) ? 64 : 128;
        var zero = Enumerable.Range(0, perChannel ? c : 1).Select(_ => rng.Next(3) == 0 ? (signed ? 0 : 128) : rng.Next(min, max + 1)).ToArray();
        var w = new byte[c * 9];
        for (int i = 0; i < w.Length; i++)
        {
            int zw = zero.Length == 1 ? zero[0] : zero[i / 9];
            int v = fitting
                ? Math.Clamp((extreme ? ((i & 1) == 0 ? -128 : 127) : rng.Next(-half, Math.Min(half + 1, 128))) + zw, min, max)
                : (extreme ? ((i & 1) == 0 ? min : max) : rng.Next(min, max + 1));
            w[i] = (byte)v;
        }
        return (w, zero);
    }

    private static float[] Multipliers(Random rng, int c, int kind) => Enumerable.Range(0, c).Select(_ => kind switch
    {
        0 => 0.5f, // every odd sum is a tie: round half to even
        1 => 0.25f * (1 + rng.Next(3)),
        2 => (float)(rng.NextDouble() * 3), // saturates
        _ => (float)(rng.NextDouble() * 0.004),
    }).ToArray();

    private static byte[] RunFast(IntGemmPath path, ConvGeometry g, byte[] x, bool xSigned, int xZero, byte[] w, bool wSigned, int[] wZero,
        int[] bias, float[] mult, int yZero, bool ySigned, bool prepack, out bool vnni)
    {
        bool ran = false;
        var y = WithPath(path, () =>
        {
            // a canary tail after y: vector stores may run past a channel's outputs but never past the tensor
            int n = g.OutSize * g.OutChannels;
            var guarded = new byte[n + 96];
            guarded.AsSpan(n).Fill(0xA5);
            int[] packed = [];
            if (prepack)
            {
                packed = new int[IntDepthwise3x3.PackedInts(g)];
                IntDepthwise3x3.PackWeights(g, w, wSigned, wZero, packed);
            }
            var work = new byte[IntDepthwise3x3.WorkBytes(g)];
            new Random(n).NextBytes(work); // stale scratch must not matter
            IntDepthwise3x3.Run(g, x, xSigned, xZero, w, wSigned, wZero, bias, mult, yZero, guarded.AsSpan(0, n), ySigned, packed, work);
            ran = IntDepthwise3x3.LastRunVnni;
            Assert.True(guarded.AsSpan(n).IndexOfAnyExcept((byte)0xA5) < 0, "a store ran past the output tensor");
            return guarded.AsSpan(0, n).ToArray();
        });
        vnni = ran;
        return y;
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void FastDepthwiseMatchesReference(int pathId)
    {
        var path = (IntGemmPath)pathId;
        var rng = new Random(4242 + pathId);
        int vnniRuns = 0, fitting = 0, wideRuns = 0; // fitting: trials whose weights the vpdpbusd route takes
        for (int trial = 0; trial < 300; trial++)
        {
            int stride = 1 + (trial & 1);
            bool xSigned = (trial & 2) != 0, wSigned = (trial & 4) != 0, ySigned = (trial & 8) != 0, perChannel = (trial & 16) != 0;
            bool fits = trial % 5 != 4, extreme = trial % 11 == 0;
            int c = trial % 13 == 0 ? 2 + rng.Next(40) : 2 + rng.Next(8);
            int h, w;
            switch (trial % 6)
            {
                case 0: h = w = 7; break;
                case 1: h = w = 14 + rng.Next(2); break;
                case 2: h = 1 + rng.Next(5); w = 1 + rng.Next(16); break; // tiny, widths under 16
                case 3: h = 3 + rng.Next(60); w = 3 + rng.Next(130); break; // wide rows, several vectors
                default: h = 3 + rng.Next(20); w = 3 + rng.Next(20); break;
            }
            int maxPad = trial % 17 == 2 ? 6 : 3; // now and then padding wider than the kernel reach (outputs on padding only)
            long[] pads = (trial % 3) switch { 0 => [1L, 1, 1, 1], 1 => [0L, 0, 0, 0], _ => [rng.Next(maxPad), rng.Next(maxPad), rng.Next(maxPad), rng.Next(maxPad)] };
            if (h + pads[0] + pads[2] < 3) pads[2] = 3 - h - pads[0];
            if (w + pads[1] + pads[3] < 3) pads[3] = 3 - w - pads[1];
            var g = Geometry(c, h, w, stride, pads);

            var x = new byte[c * h * w];
            rng.NextBytes(x);
            if (extreme) Array.Fill(x, xSigned ? (byte)0x80 : (byte)0xFF);
            var (wt, wZero) = Weights(rng, c, wSigned, perChannel, fits, extreme);
            int xZero = extreme ? (xSigned ? 127 : 0) : xSigned ? rng.Next(-128, 128) : rng.Next(0, 256);
            int[] bias = (trial % 7) switch
            {
                0 => [],
                1 => Enumerable.Range(0, c).Select(_ => rng.Next(2) == 0 ? int.MaxValue - rng.Next(1000) : int.MinValue + rng.Next(1000)).ToArray(), // wraps
                _ => Enumerable.Range(0, c).Select(_ => rng.Next(-20000, 20000)).ToArray(),
            };
            var mult = Multipliers(rng, c, trial % 4);
            int yZero = ySigned ? rng.Next(-128, 128) : rng.Next(0, 256);

            var expect = new byte[g.OutSize * c];
            IntDepthwise3x3.Reference(g, x, xSigned, xZero, wt, wSigned, wZero, bias, mult, yZero, expect, ySigned);
            string what = $"trial {trial} ({path}): c {c}, {h}x{w}, stride {stride}, pads [{string.Join(",", pads)}], x {(xSigned ? "s8" : "u8")} zx {xZero}, w {(wSigned ? "s8" : "u8")} fitting {fits}, y {(ySigned ? "s8" : "u8")}, per-channel {perChannel}";
            foreach (bool prepack in new[] { true, false })
            {
                // the vpdpbusd route rounds small scaled sums by the magic-number addition; every third trial by the
                // conversion; and runs the common case's channel loop (stride 1, one weight set, magic rounding) apart,
                // except in every fourth trial
                // where the dot product is emulated, the 512-bit pass takes that case too: on every plane in half the
                // trials (the small ones included, whose last steps are masked), on large ones only in the others, and
                // not at all in every seventh
                IntDepthwiseVnni.UseMagicRound = trial % 3 != 0;
                IntDepthwiseVnni.FastChannels = trial % 4 != 1;
                IntDepthwiseVnni.Wide512 = trial % 7 != 3;
                IntDepthwiseVnni.WideMinOutputs = trial / 2 % 2 == 0 ? 0 : 700;
                byte[] got;
                bool vnni;
                int wideBefore = IntDepthwiseVnni.WideRuns;
                try { got = RunFast(path, g, x, xSigned, xZero, wt, wSigned, wZero, bias, mult, yZero, ySigned, prepack, out vnni); }
                finally { IntDepthwiseVnni.UseMagicRound = true; IntDepthwiseVnni.FastChannels = true; IntDepthwiseVnni.Wide512 = true; IntDepthwiseVnni.WideMinOutputs = 700; }
                wideRuns += IntDepthwiseVnni.WideRuns - wideBefore;
                Assert.True(expect.AsSpan().SequenceEqual(got), what + $", prepacked {prepack}, vpdpbusd {vnni}, magic {trial % 3 != 0}");
                if (vnni) vnniRuns++;
                if (path != IntGemmPath.Auto || !IntDepthwiseVnni.IsSupported) Assert.False(vnni, what);
            }
            var pk = new int[IntDepthwise3x3.PackedInts(g)];
            IntDepthwise3x3.PackWeights(g, wt, wSigned, wZero, pk);
            // fitting weights always take the route with vpdpbusd; its emulation only those whose pairs fit int16
            if (fits && ByteDot.Native) Assert.Equal(1, pk[IntDepthwiseVnni.FlagIndex(c)]);
            if (pk[IntDepthwiseVnni.FlagIndex(c)] == 1) fitting++;
        }
        // on a machine with the instruction sets, Auto must really take the vpdpbusd route for fitting weights
        if (path == IntGemmPath.Auto && IntDepthwiseVnni.IsSupported) Assert.Equal(2 * fitting, vnniRuns);
        // and on one without AVX-VNNI whose 512-bit vectors are fast, the 512-bit pass must have run, on both strides
        if (path == IntGemmPath.Auto && IntDepthwiseVnni.IsSupported && !ByteDot.Native && System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated)
            Assert.True(wideRuns > 50, $"the 512-bit pass ran {wideRuns} times");
    }

    [Fact]
    public void WeightsPackedForAnotherShapeStillMatch()
    {
        // the packed output table depends on the shape: a stale one must be rebuilt, not used
        var rng = new Random(31);
        int c = 5;
        var (w, wz) = Weights(rng, c, true, true, true, false);
        var bias = Enumerable.Range(0, c).Select(_ => rng.Next(-2000, 2000)).ToArray();
        var mult = Multipliers(rng, c, 3);
        var planned = Geometry(c, 14, 14, 1, [1, 1, 1, 1]);
        var packed = new int[IntDepthwise3x3.PackedInts(planned)];
        IntDepthwise3x3.PackWeights(planned, w, true, wz, packed);
        foreach (var (h, wd, st) in new[] { (14, 14, 1), (9, 13, 1), (14, 14, 2), (30, 7, 1) })
        {
            var g = Geometry(c, h, wd, st, [1, 1, 1, 1]);
            var x = new byte[c * h * wd];
            rng.NextBytes(x);
            var expect = new byte[g.OutSize * c];
            IntDepthwise3x3.Reference(g, x, false, 7, w, true, wz, bias, mult, 3, expect, false);
            var got = new byte[g.OutSize * c];
            var work = new byte[IntDepthwise3x3.WorkBytes(g)];
            IntDepthwise3x3.Run(g, x, false, 7, w, true, wz, bias, mult, 3, got, false, packed.AsSpan(0, Math.Min(packed.Length, IntDepthwise3x3.PackedInts(g))), work);
            Assert.True(expect.AsSpan().SequenceEqual(got), $"{h}x{wd} stride {st}");
        }
    }

    [Fact]
    public void WeightsBeyondSignedBytesArePackedAsTwoSets()
    {
        var g = Geometry(2, 5, 5, 1, [1, 1, 1, 1]);
        var packed = new int[IntDepthwise3x3.PackedInts(g)];
        int flag = IntDepthwiseVnni.FlagIndex(2);
        var w = new byte[18];
        w[4] = 255; // uint8 weight 255 with zero point 0: 255 cannot be split into two signed bytes
        IntDepthwise3x3.PackWeights(g, w, false, [0], packed);
        Assert.Equal(0, packed[flag]);
        w[4] = 254; // 254 = 127 + 127
        IntDepthwise3x3.PackWeights(g, w, false, [0], packed);
        Assert.Equal(1, packed[flag]);
        Assert.Equal(1, packed[7]);
        Assert.Equal(0x00007F00, packed[1]);
        Assert.Equal(0x00007F00, packed[5]);
        Assert.Equal(254, packed[3]);
        Assert.Equal(0, packed[8 + 7]); // channel 1: all zero, one set
        w[4] = 255;
        IntDepthwise3x3.PackWeights(g, w, false, [128], packed); // 255 − 128 and 0 − 128 fit
        Assert.Equal(ByteDot.Native ? 1 : 0, packed[flag]); // the emulated dot product: |−128| + |127| > 128 saturates
        Assert.Equal(0, packed[7]);
        Assert.Equal(127 - 8 * 128, packed[3]);
        Assert.Equal(0x00807F80, packed[1]); // row 1: −128, 127, −128, 0
        w[4] = unchecked((byte)(sbyte)-128);
        IntDepthwise3x3.PackWeights(g, w, true, [1], packed); // −128 − 1 = −128 + −1
        Assert.Equal(ByteDot.Native ? 1 : 0, packed[flag]); // emulated: |−1| + |−128| > 128
        Assert.Equal(1, packed[7]);
        Assert.Equal(0x0000FF00, packed[5]);
        w[4] = 127;
        IntDepthwise3x3.PackWeights(g, w, true, [-128], packed); // 127 + 128 = 255
        Assert.Equal(0, packed[flag]);
    }

    /// <summary>Depthwise QLinearConv nodes through a session (batch 2, planned and unplanned weights), each path against the reference route.</summary>
    [Theory]
    [MemberData(nameof(Paths))]
    public void DepthwiseNodeMatchesReferenceRoute(int pathId)
    {
        var path = (IntGemmPath)pathId;
        var rng = new Random(17 + pathId);
        for (int trial = 0; trial < 16; trial++)
        {
            int stride = 1 + (trial & 1), c = trial % 4 == 0 ? 40 : 3 + rng.Next(20), hw = trial % 3 == 0 ? 7 : 5 + rng.Next(30);
            bool constW = (trial & 2) == 0, xSigned = (trial & 4) != 0, wSigned = (trial & 8) == 0;
            var (w, wz) = Weights(rng, c, wSigned, true, trial % 5 != 4, false);
            var x = new byte[2 * c * hw * hw];
            rng.NextBytes(x);
            Tensor Q(byte[] b, bool signed, params int[] shape) => signed ? Tensor.FromArray((sbyte[])(Array)b, shape) : Tensor.FromArray(b, shape);
            Tensor Zp(int v, bool signed) => signed ? Tensor.Scalar((sbyte)v) : Tensor.Scalar((byte)v);
            var wzt = wSigned ? Tensor.FromArray(wz.Select(v => (sbyte)v).ToArray(), c) : Tensor.FromArray(wz.Select(v => (byte)v).ToArray(), c);
            var inits = new Dictionary<string, Tensor>
            {
                ["xs"] = Tensor.Scalar(0.02f), ["xz"] = Zp(xSigned ? -3 : 120, xSigned),
                ["ws"] = Tensor.FromArray(Enumerable.Range(0, c).Select(_ => 0.005f + 0.01f * (float)rng.NextDouble()).ToArray(), c), ["wz"] = wzt,
                ["ys"] = Tensor.Scalar(0.03f), ["yz"] = Tensor.Scalar((byte)100),
                ["b"] = Tensor.FromArray(Enumerable.Range(0, c).Select(_ => rng.Next(-3000, 3000)).ToArray(), c),
            };
            var wTensor = Q(w, wSigned, c, 1, 3, 3);
            if (constW) inits["w"] = wTensor;
            var node = new Node
            {
                OpType = "QLinearConv", Inputs = ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"], Outputs = ["y"],
                Attributes = new()
                {
                    ["group"] = AttributeValue.Of("group", (long)c),
                    ["strides"] = AttributeValue.Of("strides", new long[] { stride, stride }),
                    ["pads"] = AttributeValue.Of("pads", new long[] { 1, trial % 3, 1, 1 }),
                },
            };
            var graph = new Graph { Nodes = [node] };
            foreach (var (k, v) in inits) graph.Initializers[k] = v;
            graph.Inputs.Add(new ValueInfo("x", xSigned ? DataType.Int8 : DataType.UInt8, [Dim.Of(2), Dim.Of(c), Dim.Of(hw), Dim.Of(hw)]));
            if (!constW) graph.Inputs.Add(new ValueInfo("w", wTensor.Type, [Dim.Of(c), Dim.Of(1), Dim.Of(3), Dim.Of(3)]));
            graph.Outputs.Add(new ValueInfo("y", DataType.Undefined, null));
            var model = new Model { Graph = graph, Opsets = { [""] = 13 } };
            var feed = new Dictionary<string, Tensor> { ["x"] = Q(x, xSigned, 2, c, hw, hw) };
            if (!constW) feed["w"] = wTensor;
            byte[] Run(IntGemmPath p) => WithPath(p, () =>
            {
                var session = new InferenceSession(model);
                session.Run(feed);
                var y = session.Run(feed)["y"];
                return y.Buffer.AsSpan(y.ByteOffset, y.Length).ToArray();
            });
            Assert.True(Run(IntGemmPath.Reference).AsSpan().SequenceEqual(Run(path)), $"trial {trial} ({path}): c {c}, {hw}x{hw}, stride {stride}, const {constW}");
        }
    }

    [Fact]
    public void DepthwiseNodeAllocatesNothingPerRun()
    {
        var rng = new Random(8);
        int c = 48;
        // 7-bit weights with zero point 0 (as the node's wz): every machine with the instruction sets takes the
        // vpdpbusd route, emulated or not
        var w = Enumerable.Range(0, c * 9).Select(_ => (byte)(sbyte)rng.Next(-64, 65)).ToArray();
        var node = new Node
        {
            OpType = "QLinearConv", Inputs = ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"], Outputs = ["y"],
            Attributes = new() { ["group"] = AttributeValue.Of("group", (long)c), ["pads"] = AttributeValue.Of("pads", new long[] { 1, 1, 1, 1 }) },
        };
        var g = new Graph { Nodes = [node] };
        g.Inputs.Add(new ValueInfo("x", DataType.UInt8, [Dim.Of(1), Dim.Of(c), Dim.Of(14), Dim.Of(14)]));
        g.Initializers["xs"] = Tensor.Scalar(0.02f);
        g.Initializers["xz"] = Tensor.Scalar((byte)128);
        g.Initializers["w"] = Tensor.FromArray((sbyte[])(Array)w, c, 1, 3, 3);
        g.Initializers["ws"] = Tensor.FromArray(Enumerable.Repeat(0.01f, c).ToArray(), c);
        g.Initializers["wz"] = Tensor.FromArray(new sbyte[c], c);
        g.Initializers["ys"] = Tensor.Scalar(0.1f);
        g.Initializers["yz"] = Tensor.Scalar((byte)120);
        g.Initializers["b"] = Tensor.FromArray(new int[c], c);
        g.Outputs.Add(new ValueInfo("y", DataType.Undefined, null));
        var session = new InferenceSession(new Model { Graph = g, Opsets = { [""] = 13 } });
        var x = new byte[c * 14 * 14];
        rng.NextBytes(x);
        var inputs = new[] { Tensor.FromArray(x, 1, c, 14, 14) };
        var outputs = new Tensor[1];
        session.Run(inputs, outputs);
        session.Run(inputs, outputs);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 5; i++) session.Run(inputs, outputs);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Equal(IntDepthwiseVnni.IsSupported, IntDepthwise3x3.LastRunVnni);
    }

    [Fact]
    public void MaddubsTileMatchesReferenceWhenPairsFit()
    {
        var rng = new Random(77);
        for (int trial = 0; trial < 60; trial++)
        {
            int m = 1 + rng.Next(20), n = 1 + rng.Next(40), k = 1 + rng.Next(trial % 6 == 0 ? 300 : 40);
            var a = new byte[m * k]; // signed, 7-bit: every pair fits int16 against unsigned bytes
            for (int i = 0; i < a.Length; i++) a[i] = (byte)(sbyte)(trial % 7 == 0 ? ((i & 1) == 0 ? -64 : 64) : rng.Next(-64, 65));
            var b = new byte[k * n];
            rng.NextBytes(b);
            if (trial % 7 == 0) Array.Fill(b, (byte)255);
            Assert.True(FastIntGemm.PairsFitInt16(a, m, k, k));
            int[] za = [rng.Next(-10, 10)];
            int[] zb = [rng.Next(0, 256)];
            var expect = new int[m * n];
            IntGemm.Multiply<sbyte, byte>(m, n, k, (sbyte[])(Array)a, k, za, b, n, zb, expect, n);
            var got = WithPath(IntGemmPath.Avx2, () =>
            {
                FastIntGemm.Plan(true, false, out bool flip, out bool aUnsigned, out int shift);
                var ap = new byte[FastIntGemm.PackedASize(m, k)];
                var rs = new int[m];
                FastIntGemm.PackA(a, m, k, k, flip, true ^ flip, ap, rs);
                var bp = new byte[FastIntGemm.PackedBSize(k, n)];
                var cs = new int[n];
                FastIntGemm.PackB(b, k, n, n, false, bp, cs);
                var c = new int[m * n];
                FastIntGemm.Multiply(m, n, k, ap, rs, [za[0] + shift], aUnsigned, bp, cs, zb, new int[FastIntGemm.WorkInts(n)], c, n, pairsFit: true);
                return c;
            });
            Assert.Equal(expect, got);
        }
    }

    [Fact]
    public void PairCheckRejectsWeightsThatCouldSaturate()
    {
        byte[] a = [unchecked((byte)(sbyte)-100), 100, 0, 0];
        Assert.False(FastIntGemm.PairsFitInt16(a, 1, 4, 4));
        Assert.False(FastIntGemm.ColumnPairsFitInt16(a, 2, 2, 2) && FastIntGemm.ColumnPairsFitInt16([(byte)100, 0, 100, 0], 2, 2, 2));
        Assert.True(FastIntGemm.PairsFitInt16([64, unchecked((byte)(sbyte)-64), 127, 1], 1, 4, 4));
    }

    [Fact]
    public void VectorQuantizeAndDequantizeMatchScalar()
    {
        var rng = new Random(5);
        var x = Enumerable.Range(0, 203).Select(i => i switch
        {
            7 => float.PositiveInfinity,
            8 => float.NegativeInfinity,
            9 => 1e30f,
            150 => float.NaN,
            _ => (float)(rng.NextDouble() * 40 - 15),
        }).ToArray();
        x[20] = 0.5f * 0.1f; x[21] = 1.5f * 0.1f; x[22] = 2.5f * 0.1f; // near-ties after the division
        foreach (bool signed in new[] { false, true })
        {
            float scale = 0.1f;
            int zp = signed ? -3 : 17, min = signed ? -128 : 0, max = signed ? 127 : 255;
            var y = new byte[x.Length];
            int done = QuantizeVector.Quantize(x, scale, zp, y, signed);
            for (int i = 0; i < done; i++)
            {
                int expect = QuantMath.Quantize(x[i] / scale, zp, min, max);
                Assert.Equal(expect, signed ? (sbyte)y[i] : y[i]);
            }
            var back = new float[y.Length];
            int dd = QuantizeVector.Dequantize(y, signed, zp, scale, back);
            for (int i = 0; i < dd; i++) Assert.Equal(((signed ? (sbyte)y[i] : y[i]) - (float)zp) * scale, back[i]);
        }
    }
}
