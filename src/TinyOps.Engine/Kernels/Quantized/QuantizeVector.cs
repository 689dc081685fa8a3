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
/// With AVX-512, 16 values a step (vdivps / vrndscaleps round-to-nearest-even / vpmovdb, or vpmovzxbd / vpmovsxbd and
/// one subtraction and multiplication), then 8 at a time with AVX2 for what is left over.
/// </summary>
internal static class QuantizeVector
{
    private static bool Enabled => Avx2.IsSupported && !IntRequantize.ForceScalar;

    private static bool Use512 => Avx512F.IsSupported && Vector512.IsHardwareAccelerated && !Force256;

    /// <summary>Tests set this (per thread) to run the AVX2 code where AVX-512 is there.</summary>
    [ThreadStatic] internal static bool Force256;

    public static int Quantize(ReadOnlySpan<float> x, float scale, int zeroPoint, Span<byte> y, bool signed)
    {
        if (!Enabled) return 0;
        ref float x0 = ref MemoryMarshal.GetReference(x);
        ref byte y0 = ref MemoryMarshal.GetReference(y);
        int j = 0;
        if (Use512 && x.Length >= 16)
        {
            var sc5 = Vector512.Create(scale);
            var zp5 = Vector512.Create((float)zeroPoint);
            var lo5 = Vector512.Create(signed ? -128f : 0f);
            var hi5 = Vector512.Create(signed ? 127f : 255f);
            for (; j + 16 <= x.Length; j += 16)
            {
                // imm 0x08: round to nearest even, exceptions suppressed (what vroundps 0x08 does for 8 lanes)
                var r = Avx512F.RoundScale(Avx512F.Divide(Vector512.LoadUnsafe(ref x0, (nuint)j), sc5), 0x08) + zp5;
                if (!Vector512.EqualsAll(r, r)) return j; // NaN: let the scalar loop define it
                r = Avx512F.Min(Avx512F.Max(r, lo5), hi5);
                // the values are in range, so the truncating narrow keeps them (two's complement for int8)
                var b = Avx512F.ConvertToVector128Byte(Avx512F.ConvertToVector512Int32WithTruncation(r));
                b.StoreUnsafe(ref y0, (nuint)j);
            }
        }
        var sc = Vector256.Create(scale);
        var zp = Vector256.Create((float)zeroPoint);
        var lo = Vector256.Create(signed ? -128f : 0f);
        var hi = Vector256.Create(signed ? 127f : 255f);
        for (; j + 8 <= x.Length; j += 8)
        {
            var r = Avx.RoundToNearestInteger(Avx.Divide(Vector256.LoadUnsafe(ref x0, (nuint)j), sc)) + zp;
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
}
