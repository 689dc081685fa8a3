using TinyOps.Engine.Ir;
using TinyOps.Engine.Kernels.Quantized;
using Xunit;

namespace TinyOps.Engine.Tests.Kernels;

/// <summary>
/// The direct depthwise 3×3 int8 kernel (vector and forced-scalar paths) against its plain reference, bit for bit, on
/// random shapes: stride 1 and 2, symmetric and asymmetric padding, per-tensor and per-channel weight zero points,
/// uint8/int8 inputs, weights and outputs. Also the vpmaddubsw GEMM tile and the vectorized quantize/dequantize.
/// </summary>
public sealed class IntDepthwiseTests
{
    public static TheoryData<int> Paths => new() { (int)IntGemmPath.Auto, (int)IntGemmPath.Scalar };

    private static T WithPath<T>(IntGemmPath path, Func<T> f)
    {
        var old = FastIntGemm.Forced;
        FastIntGemm.Forced = path;
        try { return f(); }
        finally { FastIntGemm.Forced = old; }
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void FastDepthwiseMatchesReference(int pathId)
    {
        var path = (IntGemmPath)pathId;
        var rng = new Random(4242 + pathId);
        for (int trial = 0; trial < 120; trial++)
        {
            int stride = 1 + (trial & 1);
            bool xSigned = (trial & 2) != 0, wSigned = (trial & 4) != 0, ySigned = (trial & 8) != 0, perChannel = (trial & 16) != 0;
            int c = 2 + rng.Next(8), h = 3 + rng.Next(trial % 7 == 0 ? 60 : 20), w = 3 + rng.Next(trial % 5 == 0 ? 70 : 20);
            long[] pads = (trial % 3) switch { 0 => [1L, 1, 1, 1], 1 => [0L, 0, 0, 0], _ => [rng.Next(3), rng.Next(3), rng.Next(3), rng.Next(3)] };
            var node = new Node { OpType = "QLinearConv", Name = "dw" };
            node.Attributes["group"] = AttributeValue.Of("group", (long)c);
            node.Attributes["strides"] = AttributeValue.Of("strides", new long[] { stride, stride });
            node.Attributes["pads"] = AttributeValue.Of("pads", pads);
            var g = new ConvGeometry(node);
            Assert.Null(g.Compute([1, c, h, w], [c, 1, 3, 3]));
            Assert.True(IntDepthwise3x3.Supports(g));

            var x = new byte[c * h * w];
            var wt = new byte[c * 9];
            rng.NextBytes(x);
            rng.NextBytes(wt);
            if (trial % 11 == 0) { Array.Fill(x, xSigned ? (byte)0x80 : (byte)0xFF); Array.Fill(wt, (byte)0x80); } // extremes
            int xZero = xSigned ? rng.Next(-128, 128) : rng.Next(0, 256);
            var wZero = Enumerable.Range(0, perChannel ? c : 1).Select(_ => wSigned ? rng.Next(-128, 128) : rng.Next(0, 256)).ToArray();
            int[] bias = trial % 4 == 0 ? [] : Enumerable.Range(0, c).Select(_ => rng.Next(-20000, 20000)).ToArray();
            var mult = Enumerable.Range(0, c).Select(_ => (float)(rng.NextDouble() * 0.004)).ToArray();
            int yZero = ySigned ? rng.Next(-128, 128) : rng.Next(0, 256);
            int outSize = g.OutSize * c;

            var expect = new byte[outSize];
            IntDepthwise3x3.Reference(g, x, xSigned, xZero, wt, wSigned, wZero, bias, mult, yZero, expect, ySigned);
            var got = WithPath(path, () =>
            {
                var y = new byte[outSize];
                var plane = new short[IntDepthwise3x3.PlaneShorts(g)];
                var acc = new int[IntDepthwise3x3.AccInts(g)];
                IntDepthwise3x3.Run(g, x, xSigned, xZero, wt, wSigned, wZero, bias, mult, yZero, y, ySigned, plane, acc);
                return y;
            });
            Assert.True(expect.AsSpan().SequenceEqual(got),
                $"trial {trial} ({path}): c {c}, {h}x{w}, stride {stride}, pads [{string.Join(",", pads)}], x {(xSigned ? "s8" : "u8")}, w {(wSigned ? "s8" : "u8")}, y {(ySigned ? "s8" : "u8")}, per-channel {perChannel}");
        }
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
