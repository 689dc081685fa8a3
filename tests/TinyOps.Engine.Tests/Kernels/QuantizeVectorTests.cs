using TinyOps.Engine.Kernels.Quantized;
using Xunit;

namespace TinyOps.Engine.Tests.Kernels;

/// <summary>
/// The vector QuantizeLinear / DequantizeLinear runs (AVX-512 and AVX2, forced per thread) against the scalar
/// formulas of the kernels, bit for bit: every length across the vector steps, exact ties, saturation, infinities
/// and NaN (which must stop the vector run so the scalar loop defines it).
/// </summary>
public class QuantizeVectorTests
{
    private static float[] Values(int n, int seed, float scale)
    {
        var r = new Random(seed);
        var x = new float[n];
        for (int i = 0; i < n; i++)
            x[i] = (i % 11) switch
            {
                0 => (r.Next(-300, 300) + 0.5f) * scale, // ties after the division
                1 => r.Next(-300, 300) * scale,
                2 => (float)(r.NextDouble() * 1e6 - 5e5),
                _ => (float)(r.NextDouble() * 60 - 20) * scale,
            };
        return x;
    }

    private static void CheckQuantize(float[] x, float scale, bool signed, bool force256)
    {
        int zp = signed ? -3 : 17, min = signed ? -128 : 0, max = signed ? 127 : 255;
        var y = new byte[x.Length];
        int done;
        try
        {
            QuantizeVector.Force256 = force256;
            done = QuantizeVector.Quantize(x, scale, zp, y, signed);
        }
        finally { QuantizeVector.Force256 = false; }
        Assert.InRange(done, 0, x.Length);
        for (int i = 0; i < done; i++)
        {
            Assert.False(float.IsNaN(x[i]), $"the vector run went over a NaN at {i}");
            int expect = QuantMath.Quantize(x[i] / scale, zp, min, max);
            Assert.True(expect == (signed ? (sbyte)y[i] : y[i]), $"n={x.Length} signed={signed} 256={force256} at {i}: x={x[i]} expected {expect}, got {y[i]}");
        }
        if (!Array.Exists(x, float.IsNaN) && System.Runtime.Intrinsics.X86.Avx2.IsSupported) Assert.Equal(x.Length / 8 * 8, done);
    }

    [Fact]
    public void QuantizeMatchesScalarAtEveryLength()
    {
        foreach (bool force256 in new[] { false, true })
            foreach (bool signed in new[] { false, true })
                for (int n = 0; n <= 80; n++)
                {
                    CheckQuantize(Values(n, n, 0.1f), 0.1f, signed, force256);
                    CheckQuantize(Values(n, n + 1000, 0.5f), 0.5f, signed, force256);
                }
    }

    [Fact]
    public void QuantizeMatchesDivisionNextToEveryTie()
    {
        // Inputs one or two ulps either side of (k + 0.5) * scale, for scales whose reciprocal is inexact: where any
        // shortcut for the division (a multiplication by the reciprocal) would round differently from dividing.
        var r = new Random(11);
        var scales = new List<float> { 1f / 255, 0.1f, 0.3f, 0.017352f, 7f, 0.0078125f, 3.1e-5f, 1.7e9f };
        for (int i = 0; i < 24; i++) scales.Add((float)Math.Exp(r.NextDouble() * 20 - 12));
        foreach (float scale in scales)
        {
            var x = new float[400];
            for (int i = 0; i < x.Length; i++)
            {
                float tie = (r.Next(-400, 400) + 0.5f) * scale;
                x[i] = (i % 5) switch
                {
                    0 => tie,
                    1 => MathF.BitIncrement(tie),
                    2 => MathF.BitDecrement(tie),
                    3 => MathF.BitIncrement(MathF.BitIncrement(tie)),
                    _ => MathF.BitDecrement(MathF.BitDecrement(tie)),
                };
            }
            foreach (bool force256 in new[] { false, true })
            {
                CheckQuantize(x, scale, false, force256);
                CheckQuantize(x, scale, true, force256);
            }
        }
    }

    [Fact]
    public void ReciprocalQuotientMatchesDivisionOverTheWholeFloatRange()
    {
        // x / scale is a product by the reciprocal with one FMA correction where FMA is there (QuantizeVector's
        // remarks): random bit patterns (every exponent, subnormals included) and random scales from 1e-9 to 1e9, each
        // against the scalar division; then the corner scales whose reciprocal is not a normal float (division kept)
        if (!System.Runtime.Intrinsics.X86.Avx2.IsSupported) return;
        var r = new Random(5);
        var scales = new List<float> { 1f / 255, 0.99999994f, 1.9999999f, 1f, 3f, 16777215f, float.Epsilon * 3, 1e-39f, 3e38f };
        for (int i = 0; i < 40; i++) scales.Add((float)Math.Exp(r.NextDouble() * 41.4 - 20.7));
        Assert.True(!System.Runtime.Intrinsics.X86.Fma.IsSupported || QuantizeVector.UsesReciprocal(0.1f), "FMA machines take the reciprocal");
        Assert.False(QuantizeVector.UsesReciprocal(1e-39f));
        Assert.False(QuantizeVector.UsesReciprocal(3e38f));
        foreach (float scale in scales)
        {
            var x = new float[512];
            for (int i = 0; i < x.Length; i++)
            {
                float v;
                do v = BitConverter.Int32BitsToSingle(r.Next() ^ (r.Next(2) << 31)); while (!float.IsFinite(v));
                // half of them near the quantized range, where the rounding matters
                x[i] = i % 2 == 0 ? v : (float)(r.NextDouble() * 600 - 300) * scale;
            }
            foreach (bool force256 in new[] { false, true })
            {
                CheckQuantize(x, scale, false, force256);
                CheckQuantize(x, scale, true, force256);
            }
        }
    }

    [Fact]
    public void QuantizeKeepsVectorRunsThroughInfinitiesAndOverflow()
    {
        // the reciprocal gives NaN for an infinite x and for a quotient past float's range: those blocks divide
        // instead, saturate like the scalar loop and do not stop the vector run
        if (!System.Runtime.Intrinsics.X86.Avx2.IsSupported) return;
        foreach (bool force256 in new[] { false, true })
        {
            var x = Values(64, 9, 0.001f);
            x[3] = float.PositiveInfinity;
            x[20] = float.NegativeInfinity;
            x[40] = 3e38f; // 3e38 / 0.001 overflows
            x[41] = -3e38f;
            CheckQuantize(x, 0.001f, false, force256);
            CheckQuantize(x, 0.001f, true, force256);
        }
    }

    [Fact]
    public void QuantizeStopsAtNaNAndSaturatesInfinities()
    {
        foreach (bool force256 in new[] { false, true })
            foreach (int at in new[] { 0, 5, 15, 16, 17, 31, 40 })
            {
                var x = Values(50, at, 0.1f);
                x[3] = float.PositiveInfinity;
                x[4] = float.NegativeInfinity;
                x[at] = float.NaN;
                CheckQuantize(x, 0.1f, false, force256);
                CheckQuantize(x, 0.1f, true, force256);
            }
    }

    [Fact]
    public void DequantizeMatchesScalarAtEveryLength()
    {
        var r = new Random(3);
        foreach (bool force256 in new[] { false, true })
            foreach (bool signed in new[] { false, true })
                for (int n = 0; n <= 80; n++)
                {
                    var b = new byte[n];
                    r.NextBytes(b);
                    int zp = signed ? -9 : 131;
                    float scale = 0.0371f;
                    var y = new float[n];
                    int done;
                    try
                    {
                        QuantizeVector.Force256 = force256;
                        done = QuantizeVector.Dequantize(b, signed, zp, scale, y);
                    }
                    finally { QuantizeVector.Force256 = false; }
                    if (System.Runtime.Intrinsics.X86.Avx2.IsSupported) Assert.Equal(n / 8 * 8, done);
                    for (int i = 0; i < done; i++)
                        Assert.Equal(((signed ? (sbyte)b[i] : b[i]) - (float)zp) * scale, y[i]);
                }
    }
    [Fact]
    public void AddQuantizeMatchesScalarAtEveryLength()
    {
        // the fused DequantizeLinear → Add → [Relu] → QuantizeLinear pass, 16 lanes and 8 lanes (AVX2 machines), against
        // the separate steps' formulas: both addends as bytes or the second as floats, signed and unsigned, with Relu
        if (!System.Runtime.Intrinsics.X86.Avx2.IsSupported) return;
        var r = new Random(11);
        foreach (bool force256 in new[] { false, true })
            foreach (bool floatB in new[] { false, true })
                foreach (bool signed in new[] { false, true })
                    for (int n = 0; n <= 70; n++)
                    {
                        bool relu = n % 3 == 0;
                        var a = new byte[n];
                        var bq = new byte[n];
                        r.NextBytes(a);
                        r.NextBytes(bq);
                        var bf = floatB ? Enumerable.Range(0, n).Select(_ => (float)(r.NextDouble() * 8 - 4)).ToArray() : [];
                        int za = signed ? -3 : 120, zb = signed ? 7 : 131, zy = signed ? -5 : 128;
                        float sa = 0.031f, sb = 0.027f, ys = 0.043f;
                        var y = new byte[n];
                        int done;
                        try
                        {
                            QuantizeVector.Force256 = force256;
                            done = QuantizeVector.AddQuantize(a, signed, za, sa, bq, signed, zb, sb, bf, relu, ys, zy, y, signed);
                        }
                        finally { QuantizeVector.Force256 = false; }
                        Assert.Equal(n < 8 ? 0 : force256 || n < 16 ? n / 8 * 8 : n / 16 * 16, done);
                        for (int i = 0; i < done; i++)
                        {
                            float fa = ((signed ? (sbyte)a[i] : a[i]) - (float)za) * sa;
                            float fb = floatB ? bf[i] : ((signed ? (sbyte)bq[i] : bq[i]) - (float)zb) * sb;
                            float sum = fa + fb;
                            if (relu) sum = MathF.Max(sum, 0f);
                            float q = MathF.Round(sum / ys, MidpointRounding.ToEven) + zy;
                            int expect = (int)Math.Clamp(q, signed ? -128f : 0f, signed ? 127f : 255f);
                            Assert.True((byte)expect == y[i], $"n={n} i={i} force256={force256} floatB={floatB} signed={signed} relu={relu}: {y[i]} vs {(byte)expect}");
                        }
                    }
    }
}
