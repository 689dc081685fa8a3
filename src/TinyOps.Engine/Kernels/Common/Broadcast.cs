using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Kernels.Common;

/// <summary>An element-wise binary operation for <see cref="Broadcast.Binary{TIn, TOut, TOp}"/>.</summary>
public interface IBinaryOp<TIn, TOut>
{
    static abstract TOut Apply(TIn a, TIn b);
}

/// <summary>Numpy-style multidirectional broadcasting for element-wise kernels, without allocation.</summary>
public static class Broadcast
{
    public const int MaxRank = 16;

    /// <summary>The broadcast shape of the inputs, or an error naming the node.</summary>
    public static int[] Shape(InferContext ctx, params int[] inputs)
    {
        int[] shape = ctx.InputShape(inputs[0]);
        for (int k = 1; k < inputs.Length; k++)
        {
            var next = ShapeUtil.TryBroadcast(shape, ctx.InputShape(inputs[k]));
            if (next is null)
                throw ctx.Error($"input shapes {string.Join(" and ", inputs.Select(i => ShapeUtil.Format(ctx.InputShape(i))))} do not broadcast");
            shape = next;
        }
        if (shape.Length > MaxRank) throw ctx.Error($"rank {shape.Length} is above the supported {MaxRank}");
        return shape;
    }

    /// <summary>y = op(a, b) with broadcasting; <paramref name="yShape"/> must be the broadcast shape.</summary>
    public static void Binary<TIn, TOut, TOp>(ReadOnlySpan<TIn> a, ReadOnlySpan<int> aShape, ReadOnlySpan<TIn> b, ReadOnlySpan<int> bShape, Span<TOut> y, ReadOnlySpan<int> yShape)
        where TOp : struct, IBinaryOp<TIn, TOut>
    {
        if (a.Length == y.Length && b.Length == y.Length)
        {
            for (int i = 0; i < y.Length; i++) y[i] = TOp.Apply(a[i], b[i]);
            return;
        }
        if (b.Length == 1 && a.Length == y.Length)
        {
            var s = b[0];
            for (int i = 0; i < y.Length; i++) y[i] = TOp.Apply(a[i], s);
            return;
        }
        if (a.Length == 1 && b.Length == y.Length)
        {
            var s = a[0];
            for (int i = 0; i < y.Length; i++) y[i] = TOp.Apply(s, b[i]);
            return;
        }
        int rank = yShape.Length;
        Span<int> sa = stackalloc int[rank];
        Span<int> sb = stackalloc int[rank];
        Span<int> idx = stackalloc int[rank];
        ShapeUtil.BroadcastStrides(aShape, yShape, sa);
        ShapeUtil.BroadcastStrides(bShape, yShape, sb);
        idx.Clear();
        int inner = rank == 0 ? 1 : yShape[rank - 1];
        int ia = rank == 0 ? 0 : sa[rank - 1], ib = rank == 0 ? 0 : sb[rank - 1];
        int oa = 0, ob = 0;
        for (int o = 0; o < y.Length; o += inner)
        {
            int pa = oa, pb = ob;
            for (int i = 0; i < inner; i++, pa += ia, pb += ib) y[o + i] = TOp.Apply(a[pa], b[pb]);
            // advance the odometer over all but the last dimension
            for (int d = rank - 2; d >= 0; d--)
            {
                idx[d]++;
                oa += sa[d];
                ob += sb[d];
                if (idx[d] < yShape[d]) break;
                oa -= sa[d] * yShape[d];
                ob -= sb[d] * yShape[d];
                idx[d] = 0;
            }
        }
    }

    /// <summary>
    /// For each output element (row-major over <paramref name="outShape"/>), the offset of the element of an input
    /// of shape <paramref name="inShape"/> that broadcasts to it. <paramref name="offsets"/> holds one int per output element.
    /// </summary>
    public static void Offsets(ReadOnlySpan<int> inShape, ReadOnlySpan<int> outShape, Span<int> offsets)
    {
        int rank = outShape.Length;
        if (ShapeUtil.Size(inShape) == offsets.Length)
        {
            for (int i = 0; i < offsets.Length; i++) offsets[i] = i;
            return;
        }
        Span<int> strides = stackalloc int[rank];
        Span<int> idx = stackalloc int[rank];
        ShapeUtil.BroadcastStrides(inShape, outShape, strides);
        idx.Clear();
        int off = 0;
        for (int o = 0; o < offsets.Length; o++)
        {
            offsets[o] = off;
            for (int d = rank - 1; d >= 0; d--)
            {
                idx[d]++;
                off += strides[d];
                if (idx[d] < outShape[d]) break;
                off -= strides[d] * outShape[d];
                idx[d] = 0;
            }
        }
    }
}
