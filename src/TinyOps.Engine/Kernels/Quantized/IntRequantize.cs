using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace TinyOps.Engine.Kernels.Quantized;

/// <summary>
/// Vectorized requantization of int32 accumulators to uint8/int8, bit-identical to <see cref="QuantMath.Requantize"/>:
/// round-half-to-even((float)(acc + bias) · multiplier) + zeroPoint, saturated.
/// <para>
/// Per vector: convert to float (round to nearest, as the scalar cast), multiply, clamp to ±2³⁰ (so the conversion
/// back cannot overflow; any such value saturates anyway), convert to int32 with the default rounding mode (half to
/// even, as <see cref="MathF.Round(float)"/>), add the zero point and narrow with saturation. Where the scalar code adds
/// the zero point in float, the result is an exact integer below 2²⁴ or saturates either way, so both agree.
/// Non-finite multipliers take the scalar route, which defines the NaN case.
/// </para>
/// </summary>
internal static class IntRequantize
{
    internal static bool ForceScalar => FastIntGemm.Forced is IntGemmPath.Scalar or IntGemmPath.Reference;

    /// <summary>|float| above which a value saturates whatever the zero point; keeps vcvtps2dq in range.</summary>
    private const float Limit = 1 << 30;

    private static bool Wide => Avx512BW.IsSupported && FastIntGemm.Forced is not (IntGemmPath.Avx2 or IntGemmPath.AvxVnni);

    /// <summary>16 int32 to 16 bytes (saturated to uint8, or to int8 when <paramref name="signed"/>): the AVX-512 step.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector128<byte> Narrow16(Vector512<float> scaled, Vector512<int> zp, bool signed)
    {
        var f = Avx512F.Min(Avx512F.Max(scaled, Vector512.Create(-Limit)), Vector512.Create(Limit));
        var r = Avx512F.ConvertToVector512Int32(f) + zp;
        return signed ? Avx512F.ConvertToVector128SByteWithSaturation(r).AsByte()
                      : Avx512F.ConvertToVector128ByteWithSaturation(Avx512F.Max(r, Vector512<int>.Zero).AsUInt32());
    }

    /// <summary>8 int32 to 8 bytes with AVX2 (saturated to uint8 or int8), in the low half of the result.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ulong Narrow8(Vector256<float> scaled, Vector256<int> zp, bool signed)
    {
        var f = Avx.Min(Avx.Max(scaled, Vector256.Create(-Limit)), Vector256.Create(Limit));
        var r = Avx2.Add(Avx.ConvertToVector256Int32(f), zp);
        var s = Sse2.PackSignedSaturate(r.GetLower(), r.GetUpper());
        var b = signed ? Sse2.PackSignedSaturate(s, s).AsByte() : Sse2.PackUnsignedSaturate(s, s);
        return b.AsUInt64().ToScalar();
    }

    /// <summary>
    /// 16 values, no checks: the caller has established AVX2, a finite multiplier and a uint8/int8 output
    /// (GEMM tiles call this once per row of a tile, so the per-call tests of <see cref="Row{TY}(ReadOnlySpan{int}, int, float, int, Span{TY})"/> are hoisted).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Row16(ReadOnlySpan<int> acc, int bias, float multiplier, int yZero, Span<byte> y, bool signed)
    {
        var mul = Vector256.Create(multiplier);
        var zp = Vector256.Create(yZero);
        var bv = Vector256.Create(bias);
        ref int a0 = ref MemoryMarshal.GetReference(acc);
        ref byte y0 = ref MemoryMarshal.GetReference(y);
        for (int j = 0; j < 16; j += 8)
        {
            var f = Avx.Multiply(Avx.ConvertToVector256Single(Avx2.Add(Vector256.LoadUnsafe(ref a0, (nuint)j), bv)), mul);
            Unsafe.WriteUnaligned(ref Unsafe.Add(ref y0, j), Narrow8(f, zp, signed));
        }
    }

    /// <summary>y[j] = requantize(acc[j] + bias, multiplier) for one shared multiplier.</summary>
    public static void Row<TY>(ReadOnlySpan<int> acc, int bias, float multiplier, int yZero, Span<TY> y)
        where TY : unmanaged, INumberBase<TY>
    {
        var (min, max) = QuantMath.Range<TY>();
        int j = 0;
        if (Avx2.IsSupported && !ForceScalar && float.IsFinite(multiplier) && (typeof(TY) == typeof(byte) || typeof(TY) == typeof(sbyte)))
        {
            bool signed = typeof(TY) == typeof(sbyte);
            ref int a0 = ref MemoryMarshal.GetReference(acc);
            ref byte y0 = ref Unsafe.As<TY, byte>(ref MemoryMarshal.GetReference(y));
            if (Wide)
            {
                var mul = Vector512.Create(multiplier);
                var zp = Vector512.Create(yZero);
                var bv = Vector512.Create(bias);
                for (; j + 16 <= acc.Length; j += 16)
                {
                    var f = Avx512F.Multiply(Avx512F.ConvertToVector512Single(Vector512.LoadUnsafe(ref a0, (nuint)j) + bv), mul);
                    Narrow16(f, zp, signed).StoreUnsafe(ref y0, (nuint)j);
                }
            }
            var mul8 = Vector256.Create(multiplier);
            var zp8 = Vector256.Create(yZero);
            var bv8 = Vector256.Create(bias);
            for (; j + 8 <= acc.Length; j += 8)
            {
                var f = Avx.Multiply(Avx.ConvertToVector256Single(Avx2.Add(Vector256.LoadUnsafe(ref a0, (nuint)j), bv8)), mul8);
                Unsafe.WriteUnaligned(ref Unsafe.Add(ref y0, j), Narrow8(f, zp8, signed));
            }
        }
        for (; j < acc.Length; j++) y[j] = QuantMath.FromInt<TY>(QuantMath.Requantize(acc[j] + bias, multiplier, yZero, min, max));
    }

    /// <summary>y[j] = requantize(acc[j], multipliers[j]) with one multiplier per column.</summary>
    public static void Row<TY>(ReadOnlySpan<int> acc, ReadOnlySpan<float> multipliers, int yZero, Span<TY> y)
        where TY : unmanaged, INumberBase<TY>
    {
        var (min, max) = QuantMath.Range<TY>();
        int j = 0;
        if (Avx2.IsSupported && !ForceScalar && AllFinite(multipliers) && (typeof(TY) == typeof(byte) || typeof(TY) == typeof(sbyte)))
        {
            bool signed = typeof(TY) == typeof(sbyte);
            var zp = Vector256.Create(yZero);
            ref int a0 = ref MemoryMarshal.GetReference(acc);
            ref float m0 = ref MemoryMarshal.GetReference(multipliers);
            ref byte y0 = ref Unsafe.As<TY, byte>(ref MemoryMarshal.GetReference(y));
            for (; j + 8 <= acc.Length; j += 8)
            {
                var f = Avx.Multiply(Avx.ConvertToVector256Single(Vector256.LoadUnsafe(ref a0, (nuint)j)), Vector256.LoadUnsafe(ref m0, (nuint)j));
                Unsafe.WriteUnaligned(ref Unsafe.Add(ref y0, j), Narrow8(f, zp, signed));
            }
        }
        for (; j < acc.Length; j++) y[j] = QuantMath.FromInt<TY>(QuantMath.Requantize(acc[j], multipliers[j], yZero, min, max));
    }

    private static bool AllFinite(ReadOnlySpan<float> v)
    {
        foreach (float f in v) if (!float.IsFinite(f)) return false;
        return true;
    }
}
