using System.Runtime.CompilerServices;

namespace TinyOps.Optimize.Quantization;

/// <summary>
/// Deterministic pseudo-random inputs in [0, 1), the same on every platform and in bench/int8-agreement.mjs.
/// Element i of sample s (each sample has <c>size</c> elements) is <c>Value((uint)(s·size + i))</c> where
/// <code>
/// h = n·0x9E3779B9; h ^= h >> 16; h *= 0x85EBCA6B; h ^= h >> 13; h *= 0xC2B2AE35; h ^= h >> 16   (uint32, wrapping)
/// value = (h >> 8) / 2^24                                                                        (exact in float32)
/// </code>
/// </summary>
public static class PseudoRandomInputs
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Value(uint n)
    {
        uint h = n * 0x9E3779B9u;
        h ^= h >> 16;
        h *= 0x85EBCA6Bu;
        h ^= h >> 13;
        h *= 0xC2B2AE35u;
        h ^= h >> 16;
        return (h >> 8) * (1f / 16777216f);
    }

    /// <summary>Fills <paramref name="dst"/> with samples <paramref name="firstSample"/>… of <paramref name="sampleSize"/> elements each.</summary>
    public static void Fill(int firstSample, int sampleSize, Span<float> dst)
    {
        uint n = unchecked((uint)firstSample * (uint)sampleSize);
        for (int i = 0; i < dst.Length; i++) dst[i] = Value(unchecked(n + (uint)i));
    }
}
