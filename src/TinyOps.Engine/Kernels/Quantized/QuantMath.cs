using System.Numerics;
using System.Runtime.CompilerServices;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Kernels.Quantized;

/// <summary>Rounding, saturation and parameter helpers shared by the quantized kernels.</summary>
internal static class QuantMath
{
    /// <summary>
    /// Rounding by addition, for vector requantization: a float t with |t| below <see cref="MagicLimit"/> gives
    /// t + <see cref="Magic"/> in [2²³, 2²⁴), where the floats are the integers, so the addition rounds t half to even
    /// (1.5·2²³ is even) and the sum's bits minus <see cref="MagicBits"/> are round_half_even(t): the value vcvtps2dq
    /// gives, from an addition that may issue on port 5 where the conversion competes with vpdpbusd for ports 0 and 1.
    /// </summary>
    public const float Magic = 12582912f; // 1.5·2²³

    /// <summary>The bits of <see cref="Magic"/>.</summary>
    public const int MagicBits = 0x4B400000;

    /// <summary>Largest bound on |t| a caller may rely on for <see cref="Magic"/> (2²¹: room below 2²² for the product's rounding).</summary>
    public const double MagicLimit = 1 << 21;

    /// <summary>The saturation range of a quantized element type.</summary>
    public static (int Min, int Max) Range(DataType t) => t switch
    {
        DataType.UInt8 => (byte.MinValue, byte.MaxValue),
        DataType.Int8 => (sbyte.MinValue, sbyte.MaxValue),
        DataType.Int32 => (int.MinValue, int.MaxValue),
        _ => throw new UnsupportedTypeException($"quantized type {t.OnnxName()} is not supported by this engine (supported: uint8, int8)"),
    };

    public static (int Min, int Max) Range<T>() where T : unmanaged
    {
        if (typeof(T) == typeof(byte)) return (byte.MinValue, byte.MaxValue);
        if (typeof(T) == typeof(sbyte)) return (sbyte.MinValue, sbyte.MaxValue);
        return (int.MinValue, int.MaxValue);
    }

    /// <summary>round-half-to-even(v) + zeroPoint, saturated to [min, max].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Quantize(float v, int zeroPoint, int min, int max)
    {
        float r = MathF.Round(v) + zeroPoint; // MathF.Round rounds half to even
        if (!(r > min)) return float.IsNaN(r) ? Math.Clamp(zeroPoint, min, max) : min;
        if (r >= max) return max;
        return (int)r;
    }

    /// <summary>
    /// Requantizes an int32 accumulator: round-half-to-even((float)acc · multiplier) + zeroPoint, saturated. Single
    /// precision, like ONNX Runtime's requantization, so a vector of 16 lanes does it in three instructions and every
    /// vector route gives the same bits (see <see cref="IntRequantize"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Requantize(int acc, float multiplier, int zeroPoint, int min, int max)
    {
        float r = MathF.Round((float)acc * multiplier) + zeroPoint;
        if (!(r > min)) return float.IsNaN(r) ? Math.Clamp(zeroPoint, min, max) : min;
        if (r >= max) return max;
        return (int)r;
    }

    /// <summary>Reads element <paramref name="i"/> of a uint8/int8/int32 tensor as int.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int ReadInt(Tensor t, int i) => t.Type switch
    {
        DataType.UInt8 => t.Buffer[t.ByteOffset + i],
        DataType.Int8 => (sbyte)t.Buffer[t.ByteOffset + i],
        DataType.Int32 => t.Span<int>()[i],
        _ => throw new UnsupportedTypeException($"cannot read {t.Type.OnnxName()} as a zero point"),
    };

    /// <summary>Copies the integer values of a zero-point tensor (or 0 when absent) into <paramref name="dst"/>.</summary>
    public static void ReadInts(Tensor? t, int offset, Span<int> dst)
    {
        if (t is null) { dst.Clear(); return; }
        for (int i = 0; i < dst.Length; i++) dst[i] = ReadInt(t, offset + i);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int ToInt<T>(T v) where T : unmanaged, INumberBase<T> => int.CreateTruncating(v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T FromInt<T>(int v) where T : unmanaged, INumberBase<T> => T.CreateTruncating(v);
}
