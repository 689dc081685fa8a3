using TinyOps.Engine.Ir;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Kernels.Elementwise;

/// <summary>
/// Cast between float32, int8, uint8, int32, int64 and bool, and from float16 (weights stored as float16). Float to integer truncates toward zero, anything to
/// bool is "!= 0". Opset 1 names the target type with a string; later opsets with a TensorProto.DataType number.
/// The opset 19+ 'saturate' attribute only concerns float8 targets, which this engine does not support.
/// </summary>
internal sealed class CastKernel : Kernel
{
    private static readonly DataType[] AnySupported =
        [DataType.Float32, DataType.Int8, DataType.UInt8, DataType.Int32, DataType.Int64, DataType.Bool];

    private readonly DataType _to;

    public CastKernel(Node node, int opset) : base(node, opset)
    {
        if (!node.Attributes.TryGetValue("to", out var attr)) throw Error("required attribute 'to' is missing");
        if (attr.Kind == AttributeKind.String)
        {
            _to = ParseName(attr.String) ?? throw Error($"attribute 'to' names an unknown type '{attr.String}'");
        }
        else
        {
            long to = node.GetIntRequired("to");
            if (to <= 0 || to > (long)DataType.Float4E2M1 && to is not (24 or 25 or 26))
                throw Error($"attribute 'to' is {to}, which is not an ONNX element type");
            _to = (DataType)to;
        }
    }

    private static DataType? ParseName(string name) => name.ToUpperInvariant() switch
    {
        "FLOAT" or "FLOAT32" => DataType.Float32,
        "UINT8" => DataType.UInt8,
        "INT8" => DataType.Int8,
        "UINT16" => DataType.UInt16,
        "INT16" => DataType.Int16,
        "INT32" => DataType.Int32,
        "INT64" => DataType.Int64,
        "STRING" => DataType.String,
        "BOOL" => DataType.Bool,
        "FLOAT16" => DataType.Float16,
        "DOUBLE" => DataType.Double,
        "UINT32" => DataType.UInt32,
        "UINT64" => DataType.UInt64,
        "BFLOAT16" => DataType.BFloat16,
        _ => null,
    };

    public override void Infer(InferContext ctx)
    {
        // float16 only as a source: weights stored as float16 become float32 (or another supported type) here
        ctx.ExpectType(0, [.. AnySupported, DataType.Float16]);
        if (!_to.IsSupported())
            throw new UnsupportedTypeException($"{Node.DisplayName}: casting to {_to.OnnxName()} is not supported by this engine");
        ctx.SetOutput(0, _to, ctx.InputShape(0));
    }

    public override void Run(RunContext ctx) => TypeConvert.Copy(ctx.Input(0), ctx.Output(0));
}
