using TinyOps.Engine.Ir;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Kernels.ShapeOps;

/// <summary>Shape: the input's dimensions as a 1-D int64 tensor, optionally sliced by 'start'/'end' (opset 15+).</summary>
internal sealed class ShapeKernel : Kernel
{
    private readonly long _start;
    private readonly long? _end;

    public ShapeKernel(Node node, int opset) : base(node, opset)
    {
        if (opset >= 15)
        {
            _start = node.GetInt("start", 0);
            if (node.HasAttribute("end")) _end = node.GetIntRequired("end");
        }
    }

    private (int Start, int End) Range(int rank)
    {
        long s = _start < 0 ? _start + rank : _start;
        long e = _end is long v ? (v < 0 ? v + rank : v) : rank;
        s = Math.Clamp(s, 0, rank);
        e = Math.Clamp(e, 0, rank);
        return ((int)s, (int)Math.Max(s, e));
    }

    public override void Infer(InferContext ctx)
    {
        if (!ctx.InputType(0).IsSupported())
            ctx.ExpectType(0, ShapeOpsUtil.AllTypes);
        var shape = ctx.InputShape(0);
        var (s, e) = Range(shape.Length);
        ctx.SetOutput(0, DataType.Int64, [e - s]);
        // The value depends only on the input's shape, which is fixed for a plan: fold it.
        var value = Tensor.Zeros(DataType.Int64, e - s);
        var v = value.Span<long>();
        for (int i = 0; i < v.Length; i++) v[i] = shape[s + i];
        ctx.SetOutputValue(0, value);
    }

    public override void Run(RunContext ctx)
    {
        var x = ctx.Input(0);
        var y = ctx.Output(0).Span<long>();
        var (s, _) = Range(x.Rank);
        for (int i = 0; i < y.Length; i++) y[i] = x.Shape[s + i];
    }
}
