using System.Numerics;
using System.Numerics.Tensors;
using TinyOps.Engine.Tensors;
using Tensor = TinyOps.Engine.Tensors.Tensor;

namespace TinyOps.Engine.Kernels.Elementwise;

/// <summary>
/// Element type conversions with C semantics: float to integer truncates toward zero (saturating out of range),
/// integer narrowing wraps, anything to bool is "!= 0", bool reads as 0/1.
/// </summary>
internal static class TypeConvert
{
    /// <summary>Converts every element of <paramref name="src"/> into <paramref name="dst"/> (same length).</summary>
    public static void To<TTo>(Tensor src, Span<TTo> dst) where TTo : unmanaged, INumberBase<TTo>
    {
        switch (src.Type)
        {
            case DataType.Float32: Convert(src.ReadOnlySpan<float>(), dst); break;
            case DataType.Float16: Convert(src.ReadOnlySpan<Half>(), dst); break;
            case DataType.Int8: Convert(src.ReadOnlySpan<sbyte>(), dst); break;
            case DataType.UInt8: Convert(src.ReadOnlySpan<byte>(), dst); break;
            case DataType.Bool: BoolTo(src.ReadOnlySpan<byte>(), dst); break;
            case DataType.Int32: Convert(src.ReadOnlySpan<int>(), dst); break;
            case DataType.Int64: Convert(src.ReadOnlySpan<long>(), dst); break;
            default: throw new UnsupportedTypeException($"cannot convert from {src.Type.OnnxName()}");
        }
    }

    /// <summary>Converts <paramref name="src"/> into every element of tensor <paramref name="dst"/> (same length).</summary>
    public static void From<TFrom>(ReadOnlySpan<TFrom> src, Tensor dst) where TFrom : unmanaged, INumberBase<TFrom>
    {
        switch (dst.Type)
        {
            case DataType.Float32: Convert(src, dst.Span<float>()); break;
            case DataType.Int8: Convert(src, dst.Span<sbyte>()); break;
            case DataType.UInt8: Convert(src, dst.Span<byte>()); break;
            case DataType.Int32: Convert(src, dst.Span<int>()); break;
            case DataType.Int64: Convert(src, dst.Span<long>()); break;
            case DataType.Bool:
                {
                    var d = dst.Span<bool>();
                    for (int i = 0; i < d.Length; i++) d[i] = src[i] != TFrom.Zero;
                    break;
                }
            default: throw new UnsupportedTypeException($"cannot convert to {dst.Type.OnnxName()}");
        }
    }

    /// <summary>Converts tensor <paramref name="src"/> into tensor <paramref name="dst"/> of the same length.</summary>
    public static void Copy(Tensor src, Tensor dst)
    {
        if (src.Type == dst.Type)
        {
            src.Bytes.CopyTo(dst.Bytes);
            return;
        }
        switch (src.Type)
        {
            case DataType.Float32: From(src.ReadOnlySpan<float>(), dst); break;
            case DataType.Float16: From(src.ReadOnlySpan<Half>(), dst); break;
            case DataType.Int8: From(src.ReadOnlySpan<sbyte>(), dst); break;
            case DataType.UInt8: From(src.ReadOnlySpan<byte>(), dst); break;
            case DataType.Bool: From(BoolBytes(src), dst); break;
            case DataType.Int32: From(src.ReadOnlySpan<int>(), dst); break;
            case DataType.Int64: From(src.ReadOnlySpan<long>(), dst); break;
            default: throw new UnsupportedTypeException($"cannot convert from {src.Type.OnnxName()}");
        }
    }

    private static ReadOnlySpan<byte> BoolBytes(Tensor t) => t.ReadOnlySpan<byte>();

    private static void Convert<TFrom, TTo>(ReadOnlySpan<TFrom> src, Span<TTo> dst)
        where TFrom : unmanaged, INumberBase<TFrom> where TTo : unmanaged, INumberBase<TTo>
    {
        if (typeof(TFrom) == typeof(float) && typeof(TTo) != typeof(float) && typeof(TTo) != typeof(double))
        {
            // float to integer: truncate toward zero through a 64-bit integer, then wrap like C's narrowing
            for (int i = 0; i < dst.Length; i++)
            {
                long v = (long)float.CreateTruncating(src[i]);
                dst[i] = TTo.CreateTruncating(v);
            }
            return;
        }
        TensorPrimitives.ConvertTruncating(src, dst);
    }

    private static void BoolTo<TTo>(ReadOnlySpan<byte> src, Span<TTo> dst) where TTo : unmanaged, INumberBase<TTo>
    {
        for (int i = 0; i < dst.Length; i++) dst[i] = src[i] != 0 ? TTo.One : TTo.Zero;
    }
}
