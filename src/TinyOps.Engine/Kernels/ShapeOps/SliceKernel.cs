using TinyOps.Engine.Ir;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Kernels.ShapeOps;

/// <summary>
/// Slice: 'starts'/'ends'/'axes' attributes (opset 1-9) or starts, ends, axes, steps inputs (10+), with
/// negative indices, negative steps and clamping to the dimension.
/// </summary>
internal sealed class SliceKernel : Kernel
{
    private readonly long[]? _starts, _ends, _axes;

    public SliceKernel(Node node, int opset) : base(node, opset)
    {
        if (opset < 10)
        {
            _starts = node.GetInts("starts") ?? throw Error("required attribute 'starts' is missing");
            _ends = node.GetInts("ends") ?? throw Error("required attribute 'ends' is missing");
            _axes = node.GetInts("axes");
            if (_starts.Length != _ends.Length) throw Error($"'starts' has {_starts.Length} entries and 'ends' {_ends.Length}");
            if (_axes is not null && _axes.Length != _starts.Length) throw Error($"'axes' has {_axes.Length} entries and 'starts' {_starts.Length}");
        }
    }

    public override void Infer(InferContext ctx)
    {
        var type = ctx.ExpectType(0, ShapeOpsUtil.AllTypes);
        var input = ctx.InputShape(0);
        int r = input.Length;
        if (Opset >= 10)
        {
            ctx.RequireValue(1);
            ctx.RequireValue(2);
            ctx.ExpectType(1, ShapeOpsUtil.IndexTypes);
            ctx.ExpectType(2, ShapeOpsUtil.IndexTypes);
            if (ctx.HasInput(3)) { ctx.RequireValue(3); ctx.ExpectType(3, ShapeOpsUtil.IndexTypes); }
            if (ctx.HasInput(4)) { ctx.RequireValue(4); ctx.ExpectType(4, ShapeOpsUtil.IndexTypes); }
        }
        Span<int> start = stackalloc int[r];
        Span<int> step = stackalloc int[r];
        var output = new int[r];
        string? error = Compute(input, ctx.InputValue(1), ctx.InputValue(2), ctx.InputValue(3), ctx.InputValue(4), start, step, output);
        if (error is not null) throw ctx.Error(error);
        ctx.SetOutput(0, type, output);
    }

    /// <summary>Per-axis first index, step and output size; an error message or null.</summary>
    private string? Compute(ReadOnlySpan<int> shape, Tensor? startsT, Tensor? endsT, Tensor? axesT, Tensor? stepsT,
        Span<int> first, Span<int> step, Span<int> count)
    {
        int r = shape.Length;
        for (int d = 0; d < r; d++) { first[d] = 0; step[d] = 1; count[d] = shape[d]; }
        int n = _starts?.Length ?? startsT!.Length;
        if ((_ends?.Length ?? endsT!.Length) != n) return $"starts has {n} entries and ends {(_ends?.Length ?? endsT!.Length)}";
        if (axesT is not null && axesT.Length != n) return $"axes has {axesT.Length} entries and starts {n}";
        if (stepsT is not null && stepsT.Length != n) return $"steps has {stepsT.Length} entries and starts {n}";
        Span<bool> seen = stackalloc bool[r];
        seen.Clear();
        for (int i = 0; i < n; i++)
        {
            long a = _axes is not null ? _axes[i] : axesT is not null ? axesT.GetInt64(i) : i;
            if (a < -r || a >= r) return $"axis {a} is out of range for rank {r}";
            int axis = (int)(a < 0 ? a + r : a);
            if (seen[axis]) return $"axis {a} is repeated";
            seen[axis] = true;
            long dim = shape[axis];
            long s = _starts is not null ? _starts[i] : startsT!.GetInt64(i);
            long e = _ends is not null ? _ends[i] : endsT!.GetInt64(i);
            long st = stepsT is not null ? stepsT.GetInt64(i) : 1;
            if (st == 0) return $"step for axis {axis} is 0";
            if (st > int.MaxValue || st < -int.MaxValue) st = st > 0 ? int.MaxValue : -int.MaxValue;
            if (s < 0) s += dim;
            if (e < 0) e += dim;
            long c;
            if (dim == 0) { s = 0; c = 0; }
            else if (st > 0)
            {
                s = Math.Clamp(s, 0, dim);
                e = Math.Clamp(e, 0, dim);
                c = e > s ? (e - s + st - 1) / st : 0;
            }
            else
            {
                s = Math.Clamp(s, 0, dim - 1);
                e = Math.Clamp(e, -1, dim - 1);
                c = s > e ? (s - e + (-st) - 1) / -st : 0;
            }
            first[axis] = (int)Math.Max(s, 0);
            step[axis] = (int)st;
            count[axis] = (int)c;
        }
        return null;
    }

    public override void Run(RunContext ctx)
    {
        var x = ctx.Input(0);
        var y = ctx.Output(0);
        int r = x.Rank;
        Span<int> first = stackalloc int[r];
        Span<int> step = stackalloc int[r];
        Span<int> count = stackalloc int[r];
        string? error = Compute(x.Shape, ctx.OptionalInput(1), ctx.OptionalInput(2), ctx.OptionalInput(3), ctx.OptionalInput(4), first, step, count);
        if (error is not null) throw Error(error);
        var outShape = y.Shape;
        int total = 0;
        for (int d = 0; d < r; d++) total += outShape[d];
        var maps = ctx.Scratch<int>(Math.Max(1, total), 0);
        int k = 0, stride = 1;
        Span<int> strides = stackalloc int[r];
        for (int d = r - 1; d >= 0; d--) { strides[d] = stride; stride *= x.Shape[d]; }
        for (int d = 0; d < r; d++)
            for (int i = 0; i < outShape[d]; i++) maps[k++] = (first[d] + i * step[d]) * strides[d];
        ShapeOpsUtil.MapGather(x, y, outShape, maps, default);
    }
}
