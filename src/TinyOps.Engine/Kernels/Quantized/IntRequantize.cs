using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace TinyOps.Engine.Kernels.Quantized;

/// <summary>
/// Vectorized requantization of int32 accumulators to uint8/int8, bit-identical to
/// <see cref="QuantMath.Requantize"/>: round-half-to-even((acc + bias)·(double)multiplier + zeroPoint), saturated.
/// The double product and sum are the same IEEE operations in both (no fused multiply-add), so results match exactly.
/// Non-finite multipliers take the scalar route, which defines the NaN case.
/// </summary>
internal static class IntRequantize
{
    internal static bool ForceScalar => FastIntGemm.Forced is IntGemmPath.Scalar or IntGemmPath.Reference;

    /// <summary>
    /// 16 values, no checks: the caller has established AVX, a finite multiplier and a uint8/int8 output
    /// (GEMM tiles call this once per row of a tile, so the per-call tests of <see cref="Row{TY}(ReadOnlySpan{int}, int, float, int, Span{TY})"/> are hoisted).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Row16(ReadOnlySpan<int> acc, int bias, float multiplier, int yZero, Span<byte> y, bool signed)
    {
        var mul = Vector256.Create((double)multiplier);
        var zp = Vector256.Create((double)yZero);
        var lo = Vector256.Create(signed ? -128.0 : 0.0);
        var hi = Vector256.Create(signed ? 127.0 : 255.0);
        var bv = Vector128.Create(bias);
        ref int a0 = ref MemoryMarshal.GetReference(acc);
        ref byte y0 = ref MemoryMarshal.GetReference(y);
        for (int j = 0; j < 16; j += 8)
        {
            var r0 = Convert(Vector128.LoadUnsafe(ref a0, (nuint)j) + bv, mul, zp, lo, hi);
            var r1 = Convert(Vector128.LoadUnsafe(ref a0, (nuint)j + 4) + bv, mul, zp, lo, hi);
            var p = Sse2.PackSignedSaturate(r0, r1);
            var b = signed ? Sse2.PackSignedSaturate(p, p).AsByte() : Sse2.PackUnsignedSaturate(p, p);
            Unsafe.WriteUnaligned(ref Unsafe.Add(ref y0, j), b.AsUInt64().ToScalar());
        }
    }

    /// <summary>y[j] = requantize(acc[j] + bias, multiplier) for one shared multiplier.</summary>
    public static void Row<TY>(ReadOnlySpan<int> acc, int bias, float multiplier, int yZero, Span<TY> y)
        where TY : unmanaged, INumberBase<TY>
    {
        var (min, max) = QuantMath.Range<TY>();
        int j = 0;
        if (Avx.IsSupported && !ForceScalar && float.IsFinite(multiplier) && (typeof(TY) == typeof(byte) || typeof(TY) == typeof(sbyte)))
        {
            var mul = Vector256.Create((double)multiplier);
            var zp = Vector256.Create((double)yZero);
            var lo = Vector256.Create((double)min);
            var hi = Vector256.Create((double)max);
            var bv = Vector128.Create(bias);
            ref int a0 = ref MemoryMarshal.GetReference(acc);
            ref byte y0 = ref Unsafe.As<TY, byte>(ref MemoryMarshal.GetReference(y));
            for (; j + 8 <= acc.Length; j += 8)
            {
                var r0 = Convert(Vector128.LoadUnsafe(ref a0, (nuint)j) + bv, mul, zp, lo, hi);
                var r1 = Convert(Vector128.LoadUnsafe(ref a0, (nuint)j + 4) + bv, mul, zp, lo, hi);
                Store<TY>(r0, r1, ref Unsafe.Add(ref y0, j));
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
        if (Avx.IsSupported && !ForceScalar && AllFinite(multipliers) && (typeof(TY) == typeof(byte) || typeof(TY) == typeof(sbyte)))
        {
            var zp = Vector256.Create((double)yZero);
            var lo = Vector256.Create((double)min);
            var hi = Vector256.Create((double)max);
            ref int a0 = ref MemoryMarshal.GetReference(acc);
            ref float m0 = ref MemoryMarshal.GetReference(multipliers);
            ref byte y0 = ref Unsafe.As<TY, byte>(ref MemoryMarshal.GetReference(y));
            for (; j + 8 <= acc.Length; j += 8)
            {
                var r0 = Convert(Vector128.LoadUnsafe(ref a0, (nuint)j), Avx.ConvertToVector256Double(Vector128.LoadUnsafe(ref m0, (nuint)j)), zp, lo, hi);
                var r1 = Convert(Vector128.LoadUnsafe(ref a0, (nuint)j + 4), Avx.ConvertToVector256Double(Vector128.LoadUnsafe(ref m0, (nuint)j + 4)), zp, lo, hi);
                Store<TY>(r0, r1, ref Unsafe.Add(ref y0, j));
            }
        }
        for (; j < acc.Length; j++) y[j] = QuantMath.FromInt<TY>(QuantMath.Requantize(acc[j], multipliers[j], yZero, min, max));
    }

    private static bool AllFinite(ReadOnlySpan<float> v)
    {
        foreach (float f in v) if (!float.IsFinite(f)) return false;
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<int> Convert(Vector128<int> acc, Vector256<double> mul, Vector256<double> zp, Vector256<double> lo, Vector256<double> hi)
    {
        var d = Avx.ConvertToVector256Double(acc);
        d = Avx.Multiply(d, mul);
        d = Avx.Add(d, zp);
        d = Avx.RoundToNearestInteger(d);
        d = Avx.Min(Avx.Max(d, lo), hi);
        return Avx.ConvertToVector128Int32WithTruncation(d);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store<TY>(Vector128<int> r0, Vector128<int> r1, ref byte dst)
    {
        var s = Sse2.PackSignedSaturate(r0, r1); // values are already in range
        var b = typeof(TY) == typeof(byte) ? Sse2.PackUnsignedSaturate(s, s) : Sse2.PackSignedSaturate(s, s).AsByte();
        Unsafe.WriteUnaligned(ref dst, b.AsUInt64().ToScalar());
    }
}
