using System.Runtime.InteropServices;
using Google.Protobuf;
using TinyOps.Engine.Onnx.Schema;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Onnx;

/// <summary>Converts between ONNX TensorProto messages and engine tensors, checking sizes before allocating.</summary>
public static class OnnxTensors
{
    public static Tensor FromProto(TensorProto p, string where)
    {
        var type = (DataType)p.DataType;
        string name = p.Name.Length > 0 ? $"'{p.Name}'" : "(unnamed)";
        if (!Enum.IsDefined(type) || type == DataType.Undefined)
            throw new ModelFormatException($"{where}: tensor {name} has unknown data_type {p.DataType}");
        if (!type.IsSupported() && type != DataType.Float16)
            throw new UnsupportedTypeException($"{where}: tensor {name} has element type {type.OnnxName()}, which this engine does not support (supported: float32, int8, uint8, int32, int64, bool; float16 as stored weights that a Cast turns into float32)");
        if (p.DataLocation == 1)
            throw new ModelFormatException($"{where}: tensor {name} keeps its data in an external file; re-save the model with its weights embedded");
        if (p.Segment is not null)
            throw new ModelFormatException($"{where}: tensor {name} is segmented, which this engine does not support");

        var shape = new int[p.Dims.Count];
        long count = 1;
        for (int i = 0; i < shape.Length; i++)
        {
            long d = p.Dims[i];
            if (d < 0) throw new ModelFormatException($"{where}: tensor {name} has negative dimension {d} at index {i}");
            count *= d;
            if (d > int.MaxValue || count > ShapeUtil.MaxElements)
                throw new ResourceLimitException($"{where}: tensor {name} declares {string.Join("x", p.Dims)} elements, more than the limit of {ShapeUtil.MaxElements}");
            shape[i] = (int)d;
        }
        int n = (int)count;
        int esize = type.ElementSize();

        if (!p.RawData.IsEmpty)
        {
            if (p.RawData.Length != (long)n * esize)
                throw new ModelFormatException($"{where}: tensor {name} of shape {ShapeUtil.Format(shape)} needs {(long)n * esize} bytes of raw_data but has {p.RawData.Length}");
            var buf = p.RawData.ToByteArray();
            if (type == DataType.Bool) NormalizeBools(buf);
            return new Tensor(type, shape, buf, 0);
        }

        var t = Tensor.Zeros(type, shape);
        switch (type)
        {
            case DataType.Float32:
                CheckCount(p.FloatData.Count, n, "float_data", where, name);
                for (int i = 0; i < n; i++) t.Span<float>()[i] = p.FloatData[i];
                break;
            case DataType.Int32:
                CheckCount(p.Int32Data.Count, n, "int32_data", where, name);
                for (int i = 0; i < n; i++) t.Span<int>()[i] = p.Int32Data[i];
                break;
            case DataType.Int8:
                CheckCount(p.Int32Data.Count, n, "int32_data", where, name);
                for (int i = 0; i < n; i++) t.Span<sbyte>()[i] = (sbyte)p.Int32Data[i];
                break;
            case DataType.UInt8:
                CheckCount(p.Int32Data.Count, n, "int32_data", where, name);
                for (int i = 0; i < n; i++) t.Span<byte>()[i] = (byte)p.Int32Data[i];
                break;
            case DataType.Bool:
                CheckCount(p.Int32Data.Count, n, "int32_data", where, name);
                for (int i = 0; i < n; i++) t.Span<byte>()[i] = p.Int32Data[i] != 0 ? (byte)1 : (byte)0;
                break;
            case DataType.Float16: // the bits of each value in the low 16 bits of int32_data
                CheckCount(p.Int32Data.Count, n, "int32_data", where, name);
                for (int i = 0; i < n; i++) t.Span<ushort>()[i] = (ushort)p.Int32Data[i];
                break;
            case DataType.Int64:
                CheckCount(p.Int64Data.Count, n, "int64_data", where, name);
                for (int i = 0; i < n; i++) t.Span<long>()[i] = p.Int64Data[i];
                break;
        }
        return t;
    }

    private static void NormalizeBools(byte[] buf)
    {
        for (int i = 0; i < buf.Length; i++) if (buf[i] > 1) buf[i] = 1;
    }

    private static void CheckCount(int have, int need, string field, string where, string name)
    {
        if (have != need)
            throw new ModelFormatException($"{where}: tensor {name} needs {need} values but its {field} (and raw_data) holds {have}");
    }

    public static TensorProto ToProto(Tensor t, string name)
    {
        var p = new TensorProto { Name = name, DataType = (int)t.Type };
        foreach (var d in t.Shape) p.Dims.Add(d);
        p.RawData = ByteString.CopyFrom(t.Bytes);
        return p;
    }

    /// <summary>Reads a serialized TensorProto (the .pb files of ONNX's test layout).</summary>
    public static Tensor ReadPb(byte[] bytes, string where)
    {
        TensorProto p;
        try { p = TensorProto.Parser.ParseFrom(bytes); }
        catch (InvalidProtocolBufferException e) { throw new ModelFormatException($"{where}: not a valid TensorProto ({e.Message})", e); }
        return FromProto(p, where);
    }

    public static byte[] WritePb(Tensor t, string name) => ToProto(t, name).ToByteArray();

    /// <summary>The element type and name a serialized TensorProto declares, without converting its data.</summary>
    public static (DataType Type, string Name) PeekPb(byte[] bytes)
    {
        var p = TensorProto.Parser.ParseFrom(bytes);
        return ((DataType)p.DataType, p.Name);
    }

    internal static ReadOnlySpan<byte> AsBytes<T>(ReadOnlySpan<T> s) where T : unmanaged => MemoryMarshal.AsBytes(s);
}
