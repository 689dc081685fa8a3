namespace TinyOps.Engine.Tensors;

/// <summary>Element types, numbered as ONNX's TensorProto.DataType.</summary>
public enum DataType
{
    Undefined = 0,
    Float32 = 1,
    UInt8 = 2,
    Int8 = 3,
    UInt16 = 4,
    Int16 = 5,
    Int32 = 6,
    Int64 = 7,
    String = 8,
    Bool = 9,
    Float16 = 10,
    Double = 11,
    UInt32 = 12,
    UInt64 = 13,
    Complex64 = 14,
    Complex128 = 15,
    BFloat16 = 16,
    Float8E4M3FN = 17,
    Float8E4M3FNUZ = 18,
    Float8E5M2 = 19,
    Float8E5M2FNUZ = 20,
    UInt4 = 21,
    Int4 = 22,
    Float4E2M1 = 23,
    Float8E8M0 = 24,
    UInt2 = 25,
    Int2 = 26,
}

public static class DataTypeExtensions
{
    /// <summary>True for the element types this engine computes with.</summary>
    public static bool IsSupported(this DataType t) => t is DataType.Float32 or DataType.UInt8 or DataType.Int8
        or DataType.Int32 or DataType.Int64 or DataType.Bool;

    /// <summary>Bytes per element of a supported type.</summary>
    public static int ElementSize(this DataType t) => t switch
    {
        DataType.Float32 => 4,
        DataType.UInt8 => 1,
        DataType.Int8 => 1,
        DataType.Int32 => 4,
        DataType.Int64 => 8,
        DataType.Bool => 1,
        DataType.Float16 => 2, // storage only: weights kept as float16 in a file and Cast to float32 at load
        _ => throw new UnsupportedTypeException($"element type {t.OnnxName()} is not supported by this engine (supported: float32, int8, uint8, int32, int64, bool)"),
    };

    /// <summary>The ONNX spelling of the type, e.g. tensor(float).</summary>
    public static string OnnxName(this DataType t) => t switch
    {
        DataType.Float32 => "float32",
        DataType.UInt8 => "uint8",
        DataType.Int8 => "int8",
        DataType.UInt16 => "uint16",
        DataType.Int16 => "int16",
        DataType.Int32 => "int32",
        DataType.Int64 => "int64",
        DataType.String => "string",
        DataType.Bool => "bool",
        DataType.Float16 => "float16",
        DataType.Double => "double",
        DataType.UInt32 => "uint32",
        DataType.UInt64 => "uint64",
        DataType.BFloat16 => "bfloat16",
        _ => t.ToString().ToLowerInvariant(),
    };

    public static DataType ForClr<T>() where T : unmanaged
    {
        if (typeof(T) == typeof(float)) return DataType.Float32;
        if (typeof(T) == typeof(byte)) return DataType.UInt8;
        if (typeof(T) == typeof(sbyte)) return DataType.Int8;
        if (typeof(T) == typeof(int)) return DataType.Int32;
        if (typeof(T) == typeof(long)) return DataType.Int64;
        if (typeof(T) == typeof(bool)) return DataType.Bool;
        if (typeof(T) == typeof(Half)) return DataType.Float16;
        throw new UnsupportedTypeException($"CLR type {typeof(T).Name} has no engine element type");
    }
}
