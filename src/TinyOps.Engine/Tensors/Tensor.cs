using System.Runtime.InteropServices;

namespace TinyOps.Engine.Tensors;

/// <summary>
/// A dense, row-major tensor: an element type, a shape and a view of bytes. The bytes may be the tensor's own
/// array or a window of a shared arena; tensors handed out by a session are valid until its next run.
/// </summary>
public sealed class Tensor
{
    private static readonly int[] ScalarShape = [];

    public DataType Type { get; }
    public int[] Shape { get; }
    public int Length { get; }
    public byte[] Buffer { get; }
    public int ByteOffset { get; }

    public Tensor(DataType type, int[] shape, byte[] buffer, int byteOffset)
    {
        Type = type;
        Shape = shape;
        Length = ShapeUtil.SizeChecked(shape, "tensor");
        Buffer = buffer;
        ByteOffset = byteOffset;
        long bytes = (long)Length * type.ElementSize();
        if (byteOffset < 0 || byteOffset + bytes > buffer.Length)
            throw new ArgumentException($"tensor of {bytes} bytes at offset {byteOffset} does not fit a buffer of {buffer.Length} bytes");
    }

    public int ByteLength => Length * Type.ElementSize();
    public int Rank => Shape.Length;

    /// <summary>A new zero-filled tensor with its own storage.</summary>
    public static Tensor Zeros(DataType type, params int[] shape)
    {
        long bytes = (long)ShapeUtil.SizeChecked(shape, "tensor") * type.ElementSize();
        if (bytes > Array.MaxLength) throw new ResourceLimitException($"a tensor of shape {ShapeUtil.Format(shape)} needs {bytes} bytes, more than one array can hold");
        return new Tensor(type, (int[])shape.Clone(), new byte[bytes], 0);
    }

    public static Tensor FromArray<T>(T[] data, params int[] shape) where T : unmanaged
    {
        var t = Zeros(DataTypeExtensions.ForClr<T>(), shape);
        if (data.Length != t.Length) throw new ArgumentException($"{data.Length} values do not fill shape {ShapeUtil.Format(shape)} ({t.Length} elements)");
        data.AsSpan().CopyTo(t.Span<T>());
        return t;
    }

    public static Tensor Scalar<T>(T value) where T : unmanaged => FromArray([value], ScalarShape);

    public Span<byte> Bytes => Buffer.AsSpan(ByteOffset, ByteLength);

    /// <summary>The elements as <typeparamref name="T"/>; T must match the element type's size and kind.</summary>
    public Span<T> Span<T>() where T : unmanaged
    {
        CheckType<T>();
        return MemoryMarshal.Cast<byte, T>(Buffer.AsSpan(ByteOffset, ByteLength));
    }

    public ReadOnlySpan<T> ReadOnlySpan<T>() where T : unmanaged => Span<T>();

    private void CheckType<T>() where T : unmanaged
    {
        bool ok = Type switch
        {
            DataType.Float32 => typeof(T) == typeof(float),
            DataType.UInt8 => typeof(T) == typeof(byte),
            DataType.Int8 => typeof(T) == typeof(sbyte),
            DataType.Int32 => typeof(T) == typeof(int),
            DataType.Int64 => typeof(T) == typeof(long),
            DataType.Bool => typeof(T) == typeof(bool) || typeof(T) == typeof(byte),
            DataType.Float16 => typeof(T) == typeof(Half) || typeof(T) == typeof(ushort),
            _ => false,
        };
        if (!ok) throw new InvalidOperationException($"a {Type.OnnxName()} tensor was read as {typeof(T).Name}");
    }

    public T[] ToArray<T>() where T : unmanaged => Span<T>().ToArray();

    /// <summary>A deep copy with its own storage.</summary>
    public Tensor Clone()
    {
        var t = new Tensor(Type, (int[])Shape.Clone(), new byte[ByteLength], 0);
        Bytes.CopyTo(t.Bytes);
        return t;
    }

    /// <summary>Reads element <paramref name="i"/> of an integer or bool tensor as long (shape and index inputs).</summary>
    public long GetInt64(int i) => Type switch
    {
        DataType.Int64 => Span<long>()[i],
        DataType.Int32 => Span<int>()[i],
        DataType.Int8 => Span<sbyte>()[i],
        DataType.UInt8 or DataType.Bool => Buffer[ByteOffset + i],
        DataType.Float32 => (long)Span<float>()[i],
        _ => throw new UnsupportedTypeException($"cannot read {Type.OnnxName()} as an integer"),
    };

    public long[] ToInt64Array()
    {
        var r = new long[Length];
        for (int i = 0; i < r.Length; i++) r[i] = GetInt64(i);
        return r;
    }

    public float GetFloat(int i) => Type switch
    {
        DataType.Float32 => Span<float>()[i],
        _ => GetInt64(i),
    };

    public override string ToString() => $"tensor({Type.OnnxName()}) {ShapeUtil.Format(Shape)}";
}
