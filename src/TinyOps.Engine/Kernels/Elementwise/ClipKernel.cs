using System.Numerics;
using System.Numerics.Tensors;
using TinyOps.Engine.Ir;
using TinyOps.Engine.Tensors;
using Tensor = TinyOps.Engine.Tensors.Tensor;

namespace TinyOps.Engine.Kernels.Elementwise;

/// <summary>
/// Clip: y = min(max(x, lo), hi), so lo &gt; hi gives hi everywhere. Opsets 1 and 6 take float attributes min/max
/// (opset 6 defaults to the float range); opset 11+ takes optional scalar inputs; opset 12+ also integer types.
/// </summary>
internal sealed class ClipKernel : Kernel
{
    private readonly bool _fromInputs;
    private readonly float? _min;
    private readonly float? _max;

    public ClipKernel(Node node, int opset) : base(node, opset)
    {
        _fromInputs = opset >= 11;
        if (!_fromInputs)
        {
            float? defMin = opset >= 6 ? float.MinValue : null;
            float? defMax = opset >= 6 ? float.MaxValue : null;
            _min = node.HasAttribute("min") ? node.GetFloat("min", 0f) : defMin;
            _max = node.HasAttribute("max") ? node.GetFloat("max", 0f) : defMax;
        }
    }

    public override void Infer(InferContext ctx)
    {
        var t = _fromInputs
            ? ctx.ExpectType(0, DataType.Float32, DataType.Int8, DataType.UInt8, DataType.Int32, DataType.Int64)
            : ctx.ExpectType(0, DataType.Float32);
        if (_fromInputs)
        {
            for (int i = 1; i <= 2; i++)
            {
                if (!ctx.HasInput(i)) continue;
                if (ctx.InputType(i) != t)
                {
                    ctx.ExpectType(i, DataType.Float32, DataType.Int8, DataType.UInt8, DataType.Int32, DataType.Int64);
                    throw ctx.Error($"input {i} ({(i == 1 ? "min" : "max")}) has type {ctx.InputType(i).OnnxName()}, but the input is {t.OnnxName()}");
                }
                var s = ctx.InputShape(i);
                if (ShapeUtil.Size(s) != 1)
                    throw ctx.Error($"input {i} ({(i == 1 ? "min" : "max")}) must be a scalar, it has shape {ShapeUtil.Format(s)}");
            }
        }
        ctx.SetOutputLike(0, 0);
    }

    public override void Run(RunContext ctx)
    {
        var x = ctx.Input(0);
        var y = ctx.Output(0);
        Tensor? lo = _fromInputs ? ctx.OptionalInput(1) : null;
        Tensor? hi = _fromInputs ? ctx.OptionalInput(2) : null;
        switch (x.Type)
        {
            case DataType.Float32:
                if (_fromInputs) Typed(x.ReadOnlySpan<float>(), y.Span<float>(), lo, hi);
                else Apply(x.ReadOnlySpan<float>(), y.Span<float>(), _min.HasValue, _min ?? 0f, _max.HasValue, _max ?? 0f);
                break;
            case DataType.Int8: Typed(x.ReadOnlySpan<sbyte>(), y.Span<sbyte>(), lo, hi); break;
            case DataType.UInt8: Typed(x.ReadOnlySpan<byte>(), y.Span<byte>(), lo, hi); break;
            case DataType.Int32: Typed(x.ReadOnlySpan<int>(), y.Span<int>(), lo, hi); break;
            case DataType.Int64: Typed(x.ReadOnlySpan<long>(), y.Span<long>(), lo, hi); break;
            default: throw Error($"unexpected type {x.Type.OnnxName()}");
        }
    }

    private static void Typed<T>(ReadOnlySpan<T> x, Span<T> y, Tensor? lo, Tensor? hi) where T : unmanaged, INumber<T>
    {
        bool hasLo = lo is not null, hasHi = hi is not null;
        T l = hasLo ? lo!.ReadOnlySpan<T>()[0] : T.Zero;
        T h = hasHi ? hi!.ReadOnlySpan<T>()[0] : T.Zero;
        Apply(x, y, hasLo, l, hasHi, h);
    }

    private static void Apply<T>(ReadOnlySpan<T> x, Span<T> y, bool hasLo, T lo, bool hasHi, T hi) where T : unmanaged, INumber<T>
    {
        if (hasLo) TensorPrimitives.Max(x, lo, y);
        else x.CopyTo(y);
        if (hasHi) TensorPrimitives.Min(y, hi, y);
    }
}
