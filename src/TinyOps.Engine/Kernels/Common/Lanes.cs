using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace TinyOps.Engine.Kernels.Common;

/// <summary>
/// Stride-2 splits of 16 consecutive floats held in two vectors (AVX2): the 8 even-indexed or the 8 odd-indexed
/// ones, in order. A shuffle picks them within each 128-bit lane, a 64-bit permute puts the pieces in order.
/// Callers check <see cref="Avx2.IsSupported"/>. <see cref="Split2"/> splits a whole row into its two column phases.
/// </summary>
internal static class Lanes
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Even(Vector256<float> a, Vector256<float> b) =>
        Avx2.Permute4x64(Avx.Shuffle(a, b, 0b10_00_10_00).AsDouble(), 0b11_01_10_00).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Odd(Vector256<float> a, Vector256<float> b) =>
        Avx2.Permute4x64(Avx.Shuffle(a, b, 0b11_01_11_01).AsDouble(), 0b11_01_10_00).AsSingle();

    /// <summary>
    /// One source row into the two column phases of stride 2: padded column q = iw + PW goes to phase q % 2, index
    /// q / 2; indices with no source column are zero.
    /// </summary>
    public static unsafe void Split2(float* src, int IW, int PW, int Wq, float* p0, float* p1)
    {
        // Source column iw lands in phase (iw + PW) % 2 at index (iw + PW) / 2; even columns of src share one phase.
        float* evenDst = (PW & 1) == 0 ? p0 : p1, oddDst = (PW & 1) == 0 ? p1 : p0;
        int evenOff = PW >> 1, oddOff = (PW + 1) >> 1;
        // Zero the indices no source column reaches, in both phases.
        int e0 = Math.Min(Wq, evenOff), e1 = Math.Clamp(evenOff + (IW + 1) / 2, e0, Wq);
        int o0 = Math.Min(Wq, oddOff), o1 = Math.Clamp(oddOff + IW / 2, o0, Wq);
        for (int j = 0; j < e0; j++) evenDst[j] = 0f;
        for (int j = e1; j < Wq; j++) evenDst[j] = 0f;
        for (int j = 0; j < o0; j++) oddDst[j] = 0f;
        for (int j = o1; j < Wq; j++) oddDst[j] = 0f;
        int t = 0; // source pairs (2t, 2t + 1) done
        int pairs = Math.Min(IW / 2, Math.Min(Wq - evenOff, Wq - oddOff)); // whole pairs whose both ends fit
        if (Avx512F.IsSupported && Vector512.IsHardwareAccelerated)
        {
            var ie = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
            var io = Vector512.Create(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
            for (; t + 16 <= pairs; t += 16)
            {
                var a = Vector512.Load(src + 2 * t);
                var b = Vector512.Load(src + 2 * t + 16);
                Vector512.Store(Avx512F.PermuteVar16x32x2(a, ie, b), evenDst + evenOff + t);
                Vector512.Store(Avx512F.PermuteVar16x32x2(a, io, b), oddDst + oddOff + t);
            }
        }
        if (Avx2.IsSupported)
            for (; t + 8 <= pairs; t += 8)
            {
                var a = Vector256.Load(src + 2 * t);
                var b = Vector256.Load(src + 2 * t + 8);
                Vector256.Store(Lanes.Even(a, b), evenDst + evenOff + t);
                Vector256.Store(Lanes.Odd(a, b), oddDst + oddOff + t);
            }
        for (int iw = 2 * t; iw < IW; iw++)
        {
            int q = iw + PW;
            if ((q >> 1) >= Wq) break;
            ((q & 1) == 0 ? p0 : p1)[q >> 1] = src[iw];
        }
    }

}
