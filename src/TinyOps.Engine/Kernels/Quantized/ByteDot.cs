using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace TinyOps.Engine.Kernels.Quantized;

/// <summary>
/// The byte dot product of the wide kernels (<see cref="WideIntGemm"/>, <see cref="IntDirectConv"/>,
/// <see cref="IntDepthwiseVnni"/>): each int32 lane adds the four products of unsigned bytes by signed bytes in it.
/// <para>
/// With AVX-VNNI that is one vpdpbusd. .NET 10 has no intrinsic for the EVEX form of AVX512-VNNI, so on machines
/// that have AVX-512 but not the VEX-encoded AVX-VNNI (AMD Zen 4, Intel Ice Lake and Cascade Lake servers) it is
/// emulated: vpmaddubsw (pairs of products summed to int16, saturating) then vpmaddwd by ones (pairs of int16 to
/// int32) and an add. That is exact only when no pair saturates: every pair of signed bytes at an even offset of a
/// quad has |a| + |b| ≤ 128 (then |x·a + y·b| ≤ 255·128 = 32640). Weights quantized to 7 bits always pass; the
/// callers check their packed weights with <see cref="PairsFit"/> and keep their other routes for weights that fail.
/// </para>
/// <para>
/// <see cref="Native"/> is <c>AvxVnni.IsSupported</c>, a constant to the JIT, so the kernels carry no branch (a static
/// readonly flag was not folded in the kernels' fully optimized code: a class-initialization check and a test per step,
/// and spilled accumulators). The runtime's own switch <c>DOTNET_EnableAVXVNNI=0</c> turns the emulation on where
/// AVX-VNNI exists, which is how the tests cover both forms on one machine (see .ci/run).
/// </para>
/// </summary>
internal static class ByteDot
{
    /// <summary>True when vpdpbusd is used; false when it is emulated (see the class remarks).</summary>
    public static bool Native => AvxVnni.IsSupported;

    /// <summary>The vector instruction sets the wide kernels need besides the dot product.</summary>
    public static bool WideHardware => Avx2.IsSupported && Avx512F.VL.IsSupported && Avx512BW.VL.IsSupported;

    /// <summary>acc + the sums of four u·s products per int32 lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> Add(Vector256<int> acc, Vector256<byte> u, Vector256<sbyte> s)
        => Native ? AvxVnni.MultiplyWideningAndAdd(acc, u, s) : Emulated(acc, u, s);

    /// <summary>
    /// The emulation on any AVX2 machine: vpmaddubsw (pairs of products to int16, saturating), vpmaddwd by ones (pairs
    /// of int16 to int32), an add; exact where <see cref="PairsWithin128"/> holds for the signed operand.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> Emulated(Vector256<int> acc, Vector256<byte> u, Vector256<sbyte> s)
        => acc + Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(u, s), Vector256<short>.One);

    /// <summary>
    /// True when the emulation is exact for these signed bytes as the signed operand: every pair at an even offset has
    /// |a| + |b| ≤ 128 (an odd last byte pairs with nothing). Always true where <see cref="Native"/>.
    /// </summary>
    public static bool PairsFit(ReadOnlySpan<byte> signedBytes) => Native || PairsWithin128(signedBytes);

    /// <summary>
    /// True when every pair of signed bytes at an even offset has |a| + |b| ≤ 128 (an odd last byte pairs with nothing),
    /// so that vpmaddubsw against any unsigned bytes cannot saturate (255·128 = 32640).
    /// </summary>
    public static bool PairsWithin128(ReadOnlySpan<byte> signedBytes)
    {
        for (int i = 0; i + 1 < signedBytes.Length; i += 2)
            if (Math.Abs((int)(sbyte)signedBytes[i]) + Math.Abs((int)(sbyte)signedBytes[i + 1]) > 128) return false;
        return true;
    }

    /// <summary>As <see cref="PairsFit(ReadOnlySpan{byte})"/> for packed ints (four bytes each).</summary>
    public static bool PairsFit(ReadOnlySpan<int> packed) => PairsFit(MemoryMarshal.AsBytes(packed));
}
