using TinyOps.Engine.Ir;
using TinyOps.Engine.Kernels.Common;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Kernels.Elementwise;

/// <summary>Where: y = condition ? x : y, all three inputs broadcast together; any element type.</summary>
internal sealed class WhereKernel : Kernel
{
    public WhereKernel(Node node, int opset) : base(node, opset) { }

    public override void Infer(InferContext ctx)
    {
        ctx.ExpectType(0, DataType.Bool);
        var t = ctx.ExpectType(1, DataType.Float32, DataType.Int8, DataType.UInt8, DataType.Int32, DataType.Int64, DataType.Bool);
        if (ctx.InputType(2) != t)
        {
            ctx.ExpectType(2, DataType.Float32, DataType.Int8, DataType.UInt8, DataType.Int32, DataType.Int64, DataType.Bool);
            throw ctx.Error($"X and Y types differ: {t.OnnxName()} and {ctx.InputType(2).OnnxName()}");
        }
        ctx.SetOutput(0, t, Broadcast.Shape(ctx, 0, 1, 2));
    }

    public override void Run(RunContext ctx)
    {
        var c = ctx.Input(0);
        var x = ctx.Input(1);
        var y = ctx.Input(2);
        var o = ctx.Output(0);
        switch (o.Type.ElementSize())
        {
            case 1: Select<byte>(c, x.Bytes, x.Shape, y.Bytes, y.Shape, o.Bytes, o.Shape); break;
            case 4: Select(c, Cast<int>(x), x.Shape, Cast<int>(y), y.Shape, CastW<int>(o), o.Shape); break;
            case 8: Select(c, Cast<long>(x), x.Shape, Cast<long>(y), y.Shape, CastW<long>(o), o.Shape); break;
            default: throw Error($"unexpected type {o.Type.OnnxName()}");
        }
    }

    private static ReadOnlySpan<T> Cast<T>(Tensor t) where T : unmanaged => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, T>(t.Bytes);

    private static Span<T> CastW<T>(Tensor t) where T : unmanaged => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, T>(t.Bytes);

    private static void Select<T>(Tensor cond, ReadOnlySpan<T> x, int[] xShape, ReadOnlySpan<T> y, int[] yShape, Span<T> o, int[] oShape) where T : unmanaged
    {
        var c = cond.ReadOnlySpan<bool>();
        int total = o.Length;
        if (total == 0) return;
        if (c.Length == total && x.Length == total && y.Length == total)
        {
            for (int i = 0; i < total; i++) o[i] = c[i] ? x[i] : y[i];
            return;
        }
        int rank = oShape.Length;
        Span<int> sc = stackalloc int[rank];
        Span<int> sx = stackalloc int[rank];
        Span<int> sy = stackalloc int[rank];
        Span<int> idx = stackalloc int[rank];
        ShapeUtil.BroadcastStrides(cond.Shape, oShape, sc);
        ShapeUtil.BroadcastStrides(xShape, oShape, sx);
        ShapeUtil.BroadcastStrides(yShape, oShape, sy);
        idx.Clear();
        int inner = rank == 0 ? 1 : oShape[rank - 1];
        int ic = rank == 0 ? 0 : sc[rank - 1], ix = rank == 0 ? 0 : sx[rank - 1], iy = rank == 0 ? 0 : sy[rank - 1];
        int oc = 0, ox = 0, oy = 0;
        for (int p = 0; p < total; p += inner)
        {
            int pc = oc, px = ox, py = oy;
            for (int i = 0; i < inner; i++, pc += ic, px += ix, py += iy) o[p + i] = c[pc] ? x[px] : y[py];
            for (int d = rank - 2; d >= 0; d--)
            {
                idx[d]++;
                oc += sc[d];
                ox += sx[d];
                oy += sy[d];
                if (idx[d] < oShape[d]) break;
                oc -= sc[d] * oShape[d];
                ox -= sx[d] * oShape[d];
                oy -= sy[d] * oShape[d];
                idx[d] = 0;
            }
        }
    }
}
