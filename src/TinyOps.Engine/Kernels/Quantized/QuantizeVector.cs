using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace TinyOps.Engine.Kernels.Quantized;

/// <summary>
/// Vectorized per-tensor QuantizeLinear (float → uint8/int8) and DequantizeLinear (uint8/int8 → float) runs,
/// bit-identical to the scalar loops of <see cref="QuantizeLinearKernel"/> and <see cref="DequantizeLinearKernel"/>:
/// the same IEEE division / multiplication, round half to even, saturation. Blocks holding NaN take the scalar route.
/// Each returns how many leading elements it did; the caller finishes the rest with its scalar loop.
/// With AVX-512, 16 values a step (vrndscaleps round-to-nearest-even / vpmovdb, or vpmovzxbd / vpmovsxbd and
/// one subtraction and multiplication), then 8 at a time with AVX2 for what is left over.
/// <para>
/// The quotient x / scale is not a vdivps (one every 5-10 cycles, which bounded these loops) but a multiplication by
/// the reciprocal corrected by one residual (<see cref="Quotient(Vector512{float}, Vector512{float}, Vector512{float})"/>):
/// q = x·r with r = RN(1/scale), e = x − q·scale exactly (FMA), then RN(q + e·r). Markstein's theorem makes that the
/// correctly rounded quotient when r is within half an ulp of 1/scale and q within one ulp of x/scale, as they are for
/// normal operands; where the quotient is subnormal it may differ by an ulp, which rounds to the same integer (0). An
/// exhaustive check over every finite float x (a C program, 2026-12-07) for 19 scales from 1.2·10⁻³⁸ to 8.5·10³⁷ (1 − 2⁻²⁴,
/// 2 − 2⁻²³ and 1/255 among them) found no rounded integer that differs. Scales whose reciprocal is not a normal float
/// keep the division (<see cref="UsesReciprocal"/>), and so does a block where the product comes out NaN (an infinite
/// x, or a quotient that overflows).
/// </para>
/// </summary>
internal static class QuantizeVector
{
    private static bool Enabled => Avx2.IsSupported && !IntRequantize.ForceScalar;

    private static bool Use512 => Avx512F.IsSupported && Vector512.IsHardwareAccelerated && !Force256;

    /// <summary>Tests set this (per thread) to run the AVX2 code where AVX-512 is there.</summary>
    [ThreadStatic] internal static bool Force256;

    /// <summary>Tests and A/B comparisons set this (per thread) to divide instead of multiplying by the reciprocal.</summary>
    [ThreadStatic] internal static bool ForceDivide;

    /// <summary>True when x / <paramref name="scale"/> is computed by the corrected reciprocal (see the class remarks).</summary>
    internal static bool UsesReciprocal(float scale) =>
        !ForceDivide && Fma.IsSupported && float.IsNormal(scale) && float.IsNormal(1f / scale);

    /// <summary>x / scale rounded to nearest, from r = RN(1/scale) (see the class remarks).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> Quotient(Vector512<float> x, Vector512<float> scale, Vector512<float> r)
    {
        var q = x * r;
        return Avx512F.FusedMultiplyAdd(Avx512F.FusedMultiplyAddNegated(q, scale, x), r, q);
    }

    /// <inheritdoc cref="Quotient(Vector512{float}, Vector512{float}, Vector512{float})"/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> Quotient(Vector256<float> x, Vector256<float> scale, Vector256<float> r)
    {
        var q = x * r;
        return Fma.MultiplyAdd(Fma.MultiplyAddNegated(q, scale, x), r, q);
    }

    /// <summary>
    /// x / scale: by <see cref="Quotient(Vector512{float}, Vector512{float}, Vector512{float})"/> when
    /// <paramref name="reciprocal"/> (<see cref="UsesReciprocal"/>), by vdivps for a block where that gave NaN (an
    /// infinite x or an overflowing quotient; a NaN x stays NaN) or without it.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Divided(Vector512<float> x, Vector512<float> scale, Vector512<float> r, bool reciprocal)
    {
        if (!reciprocal) return Avx512F.Divide(x, scale);
        var q = Quotient(x, scale, r);
        return Vector512.EqualsAll(q, q) ? q : Avx512F.Divide(x, scale);
    }

    /// <inheritdoc cref="Divided(Vector512{float}, Vector512{float}, Vector512{float}, bool)"/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Divided(Vector256<float> x, Vector256<float> scale, Vector256<float> r, bool reciprocal)
    {
        if (!reciprocal) return Avx.Divide(x, scale);
        var q = Quotient(x, scale, r);
        return Vector256.EqualsAll(q, q) ? q : Avx.Divide(x, scale);
    }

    public static int Quantize(ReadOnlySpan<float> x, float scale, int zeroPoint, Span<byte> y, bool signed)
    {
        if (!Enabled) return 0;
        ref float x0 = ref MemoryMarshal.GetReference(x);
        ref byte y0 = ref MemoryMarshal.GetReference(y);
        int j = 0;
        if (Use512 && x.Length >= 16)
        {
            var sc5 = Vector512.Create(scale);
            var rc5 = Vector512.Create(1f / scale);
            var zp5 = Vector512.Create((float)zeroPoint);
            var lo5 = Vector512.Create(signed ? -128f : 0f);
            var hi5 = Vector512.Create(signed ? 127f : 255f);
            bool reciprocal = UsesReciprocal(scale);
            for (; j + 16 <= x.Length; j += 16)
            {
                var v = Vector512.LoadUnsafe(ref x0, (nuint)j);
                // imm 0x08: round to nearest even, exceptions suppressed (what vroundps 0x08 does for 8 lanes)
                var r = Avx512F.RoundScale(Divided(v, sc5, rc5, reciprocal), 0x08) + zp5;
                if (!Vector512.EqualsAll(r, r)) return j; // NaN: let the scalar loop define it
                r = Avx512F.Min(Avx512F.Max(r, lo5), hi5);
                // the values are in range, so the truncating narrow keeps them (two's complement for int8)
                var b = Avx512F.ConvertToVector128Byte(Avx512F.ConvertToVector512Int32WithTruncation(r));
                b.StoreUnsafe(ref y0, (nuint)j);
            }
        }
        var sc = Vector256.Create(scale);
        var rc = Vector256.Create(1f / scale);
        var zp = Vector256.Create((float)zeroPoint);
        var lo = Vector256.Create(signed ? -128f : 0f);
        var hi = Vector256.Create(signed ? 127f : 255f);
        bool reciprocal256 = UsesReciprocal(scale);
        for (; j + 8 <= x.Length; j += 8)
        {
            var v = Vector256.LoadUnsafe(ref x0, (nuint)j);
            var r = Avx.RoundToNearestInteger(Divided(v, sc, rc, reciprocal256)) + zp;
            if (!Vector256.EqualsAll(r, r)) break; // NaN: let the scalar loop define it
            r = Avx.Min(Avx.Max(r, lo), hi);
            var i = Avx.ConvertToVector256Int32WithTruncation(r);
            var p = Sse2.PackSignedSaturate(i.GetLower(), i.GetUpper());
            var b = signed ? Sse2.PackSignedSaturate(p, p).AsByte() : Sse2.PackUnsignedSaturate(p, p);
            Unsafe.WriteUnaligned(ref Unsafe.Add(ref y0, j), b.AsUInt64().ToScalar());
        }
        return j;
    }

    public static int Dequantize(ReadOnlySpan<byte> x, bool signed, int zeroPoint, float scale, Span<float> y)
    {
        if (!Enabled) return 0;
        ref byte x0 = ref MemoryMarshal.GetReference(x);
        ref float y0 = ref MemoryMarshal.GetReference(y);
        int j = 0;
        if (Use512 && x.Length >= 16)
        {
            var sc5 = Vector512.Create(scale);
            var zp5 = Vector512.Create((float)zeroPoint);
            for (; j + 16 <= x.Length; j += 16)
            {
                var b = Vector128.LoadUnsafe(ref x0, (nuint)j);
                var i = signed ? Avx512F.ConvertToVector512Int32(b.AsSByte()) : Avx512F.ConvertToVector512Int32(b);
                ((Avx512F.ConvertToVector512Single(i) - zp5) * sc5).StoreUnsafe(ref y0, (nuint)j);
            }
        }
        var sc = Vector256.Create(scale);
        var zp = Vector256.Create((float)zeroPoint);
        for (; j + 8 <= x.Length; j += 8)
        {
            var b = Vector128.CreateScalar(Unsafe.ReadUnaligned<long>(ref Unsafe.Add(ref x0, j))).AsByte();
            var i = signed ? Avx2.ConvertToVector256Int32(b.AsSByte()) : Avx2.ConvertToVector256Int32(b);
            ((Avx.ConvertToVector256Single(i) - zp) * sc).StoreUnsafe(ref y0, (nuint)j);
        }
        return j;
    }

    /// <summary>
    /// One pass of DequantizeLinear → Add → [Relu] → QuantizeLinear over same-shaped operands: y[i] =
    /// Q(relu(DQ(a[i]) + b[i])) where b is float (<paramref name="bf"/>) or quantized (<paramref name="bq"/>, then
    /// DQ(b[i]) with its own scale and zero point); the same operations, in the same order, as the separate kernels
    /// (so the same bits). With AVX-512, 16 values a step; a block holding NaN stops the loop (the caller's scalar
    /// loop defines it). Returns how many leading elements it did.
    /// </summary>
    public static int AddQuantize(ReadOnlySpan<byte> a, bool aSigned, int za, float sa, ReadOnlySpan<byte> bq, bool bSigned, int zb, float sb,
        ReadOnlySpan<float> bf, bool relu, float ys, int zy, Span<byte> y, bool ySigned)
    {
        if (!Enabled || a.Length < 8) return 0;
        if (!Use512 || a.Length < 16) return AddQuantize256(a, aSigned, za, sa, bq, bSigned, zb, sb, bf, relu, ys, zy, y, ySigned);
        bool quantizedB = bf.IsEmpty;
        ref byte a0 = ref MemoryMarshal.GetReference(a);
        ref byte bq0 = ref MemoryMarshal.GetReference(bq);
        ref float bf0 = ref MemoryMarshal.GetReference(bf);
        ref byte y0 = ref MemoryMarshal.GetReference(y);
        var sa5 = Vector512.Create(sa);
        var za5 = Vector512.Create((float)za);
        var sb5 = Vector512.Create(sb);
        var zb5 = Vector512.Create((float)zb);
        var ys5 = Vector512.Create(ys);
        var yr5 = Vector512.Create(1f / ys);
        bool reciprocal = UsesReciprocal(ys);
        var zy5 = Vector512.Create((float)zy);
        var lo5 = Vector512.Create(ySigned ? -128f : 0f);
        var hi5 = Vector512.Create(ySigned ? 127f : 255f);
        int j = 0;
        for (; j + 16 <= a.Length; j += 16)
        {
            var ab = Vector128.LoadUnsafe(ref a0, (nuint)j);
            var fa = (Avx512F.ConvertToVector512Single(aSigned ? Avx512F.ConvertToVector512Int32(ab.AsSByte()) : Avx512F.ConvertToVector512Int32(ab)) - za5) * sa5;
            Vector512<float> fb;
            if (quantizedB)
            {
                var bb = Vector128.LoadUnsafe(ref bq0, (nuint)j);
                fb = (Avx512F.ConvertToVector512Single(bSigned ? Avx512F.ConvertToVector512Int32(bb.AsSByte()) : Avx512F.ConvertToVector512Int32(bb)) - zb5) * sb5;
            }
            else fb = Vector512.LoadUnsafe(ref bf0, (nuint)j);
            var s = fa + fb;
            if (!Vector512.EqualsAll(s, s)) return j; // NaN: let the scalar loop define it
            if (relu) s = Avx512F.Max(s, Vector512<float>.Zero);
            var r = Avx512F.RoundScale(Divided(s, ys5, yr5, reciprocal), 0x08) + zy5;
            r = Avx512F.Min(Avx512F.Max(r, lo5), hi5);
            Avx512F.ConvertToVector128Byte(Avx512F.ConvertToVector512Int32WithTruncation(r)).StoreUnsafe(ref y0, (nuint)j);
        }
        return j;
    }
    /// <summary>
    /// The sum of two quantized tensors by ratio multipliers (see <c>DequantizeChainKernel.AddByRatios</c>): y[i] =
    /// saturate(round_half_even(fma(a[i] − za, ra, (b[i] − zb)·rb), relu first when asked) + zy). The caller has checked
    /// that |(a − za)·ra| + |(b − zb)·rb| stays below 2²¹, so the rounding is the addition of 1.5·2²³ (the float's bits
    /// less those of 1.5·2²³ are the integer) and no value is NaN. 16 values a step with AVX-512, 8 with AVX2 and FMA;
    /// returns how many leading elements it did.
    /// </summary>
    public static int AddQuantizeByRatios(ReadOnlySpan<byte> a, bool aSigned, int za, ReadOnlySpan<byte> b, bool bSigned, int zb,
        float ra, float rb, bool relu, int zy, Span<byte> y, bool ySigned)
    {
        if (!Enabled || !Fma.IsSupported || a.Length < 8) return 0;
        ref byte a0 = ref MemoryMarshal.GetReference(a);
        ref byte b0 = ref MemoryMarshal.GetReference(b);
        ref byte y0 = ref MemoryMarshal.GetReference(y);
        int lo = ySigned ? sbyte.MinValue : byte.MinValue, hi = ySigned ? sbyte.MaxValue : byte.MaxValue;
        int j = 0;
        if (Use512 && a.Length >= 16)
        {
            var za5 = Vector512.Create(za);
            var zb5 = Vector512.Create(zb);
            var ra5 = Vector512.Create(ra);
            var rb5 = Vector512.Create(rb);
            var magic5 = Vector512.Create(QuantMath.Magic);
            var off5 = Vector512.Create(QuantMath.MagicBits - zy);
            var lo5 = Vector512.Create(lo);
            var hi5 = Vector512.Create(hi);
            for (; j + 16 <= a.Length; j += 16)
            {
                var ab = Vector128.LoadUnsafe(ref a0, (nuint)j);
                var bb = Vector128.LoadUnsafe(ref b0, (nuint)j);
                var ia = (aSigned ? Avx512F.ConvertToVector512Int32(ab.AsSByte()) : Avx512F.ConvertToVector512Int32(ab)) - za5;
                var ib = (bSigned ? Avx512F.ConvertToVector512Int32(bb.AsSByte()) : Avx512F.ConvertToVector512Int32(bb)) - zb5;
                var v = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(ia), ra5, Avx512F.ConvertToVector512Single(ib) * rb5);
                if (relu) v = Avx512F.Max(v, Vector512<float>.Zero);
                var r = Avx512F.Min(Avx512F.Max((v + magic5).AsInt32() - off5, lo5), hi5);
                Avx512F.ConvertToVector128Byte(r).StoreUnsafe(ref y0, (nuint)j);
            }
        }
        var za8 = Vector256.Create(za);
        var zb8 = Vector256.Create(zb);
        var ra8 = Vector256.Create(ra);
        var rb8 = Vector256.Create(rb);
        var magic8 = Vector256.Create(QuantMath.Magic);
        var off8 = Vector256.Create(QuantMath.MagicBits - zy);
        var lo8 = Vector256.Create(lo);
        var hi8 = Vector256.Create(hi);
        for (; j + 8 <= a.Length; j += 8)
        {
            var ab = Vector128.CreateScalarUnsafe(Unsafe.ReadUnaligned<long>(ref Unsafe.Add(ref a0, j))).AsByte();
            var bb = Vector128.CreateScalarUnsafe(Unsafe.ReadUnaligned<long>(ref Unsafe.Add(ref b0, j))).AsByte();
            var ia = (aSigned ? Avx2.ConvertToVector256Int32(ab.AsSByte()) : Avx2.ConvertToVector256Int32(ab)) - za8;
            var ib = (bSigned ? Avx2.ConvertToVector256Int32(bb.AsSByte()) : Avx2.ConvertToVector256Int32(bb)) - zb8;
            var v = Fma.MultiplyAdd(Avx.ConvertToVector256Single(ia), ra8, Avx.ConvertToVector256Single(ib) * rb8);
            if (relu) v = Avx.Max(v, Vector256<float>.Zero);
            var r = Avx2.Min(Avx2.Max((v + magic8).AsInt32() - off8, lo8), hi8);
            // in range, so the saturating packs keep the values
            var p = Sse2.PackSignedSaturate(r.GetLower(), r.GetUpper());
            var bytes = ySigned ? Sse2.PackSignedSaturate(p, p).AsByte() : Sse2.PackUnsignedSaturate(p, p);
            Unsafe.WriteUnaligned(ref Unsafe.Add(ref y0, j), bytes.AsUInt64().ToScalar());
        }
        return j;
    }

    /// <summary><see cref="AddQuantize"/> eight values at a time (AVX2), the same arithmetic and rounding.</summary>
    private static int AddQuantize256(ReadOnlySpan<byte> a, bool aSigned, int za, float sa, ReadOnlySpan<byte> bq, bool bSigned, int zb, float sb,
        ReadOnlySpan<float> bf, bool relu, float ys, int zy, Span<byte> y, bool ySigned)
    {
        bool quantizedB = bf.IsEmpty;
        ref byte a0 = ref MemoryMarshal.GetReference(a);
        ref byte bq0 = ref MemoryMarshal.GetReference(bq);
        ref float bf0 = ref MemoryMarshal.GetReference(bf);
        ref byte y0 = ref MemoryMarshal.GetReference(y);
        var sav = Vector256.Create(sa);
        var zav = Vector256.Create((float)za);
        var sbv = Vector256.Create(sb);
        var zbv = Vector256.Create((float)zb);
        var ysv = Vector256.Create(ys);
        var yrv = Vector256.Create(1f / ys);
        bool reciprocal = UsesReciprocal(ys);
        var zyv = Vector256.Create((float)zy);
        var lo = Vector256.Create(ySigned ? -128f : 0f);
        var hi = Vector256.Create(ySigned ? 127f : 255f);
        int j = 0;
        for (; j + 8 <= a.Length; j += 8)
        {
            var ab = Vector128.CreateScalarUnsafe(Unsafe.ReadUnaligned<long>(ref Unsafe.Add(ref a0, j))).AsByte();
            var fa = (Avx.ConvertToVector256Single(aSigned ? Avx2.ConvertToVector256Int32(ab.AsSByte()) : Avx2.ConvertToVector256Int32(ab)) - zav) * sav;
            Vector256<float> fb;
            if (quantizedB)
            {
                var bb = Vector128.CreateScalarUnsafe(Unsafe.ReadUnaligned<long>(ref Unsafe.Add(ref bq0, j))).AsByte();
                fb = (Avx.ConvertToVector256Single(bSigned ? Avx2.ConvertToVector256Int32(bb.AsSByte()) : Avx2.ConvertToVector256Int32(bb)) - zbv) * sbv;
            }
            else fb = Vector256.LoadUnsafe(ref bf0, (nuint)j);
            var s = fa + fb;
            if (!Vector256.EqualsAll(s, s)) return j; // NaN: let the scalar loop define it
            if (relu) s = Avx.Max(s, Vector256<float>.Zero);
            var r = Avx.RoundToNearestInteger(Divided(s, ysv, yrv, reciprocal)) + zyv;
            r = Avx.Min(Avx.Max(r, lo), hi);
            // the values are in range, so the truncating conversion and saturating packs keep them
            var i = Avx.ConvertToVector256Int32WithTruncation(r);
            var p = Sse2.PackSignedSaturate(i.GetLower(), i.GetUpper());
            var b = ySigned ? Sse2.PackSignedSaturate(p, p).AsByte() : Sse2.PackUnsignedSaturate(p, p);
            Unsafe.WriteUnaligned(ref Unsafe.Add(ref y0, j), b.AsUInt64().ToScalar());
        }
        return j;
    }
}
