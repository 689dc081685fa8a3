using TinyOps.Engine.Kernels.Common;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Kernels.Elementwise;

/// <summary>
/// Numpy-style broadcasting for binary span operations. Output dimensions are coalesced so the innermost loop
/// runs over the longest contiguous run, where the op sees a vector-vector, vector-scalar or scalar-vector call.
/// Allocation-free.
/// </summary>
internal static class BroadcastDriver
{
    /// <summary>y = op(a, b); <paramref name="yShape"/> must be a shape both inputs broadcast to. y may be a.</summary>
    public static void Run<TIn, TOut, TOp>(ReadOnlySpan<TIn> a, ReadOnlySpan<int> aShape, ReadOnlySpan<TIn> b, ReadOnlySpan<int> bShape, Span<TOut> y, ReadOnlySpan<int> yShape)
        where TOp : ISpanBinaryOp<TIn, TOut>
    {
        int total = y.Length;
        if (total == 0) return;
        if (a.Length == total && b.Length == total) { TOp.VV(a, b, y); return; }
        if (a.Length == total && b.Length == 1) { TOp.VS(a, b[0], y); return; }
        if (a.Length == 1 && b.Length == total) { TOp.SV(a[0], b, y); return; }
        if (a.Length == 1 && b.Length == 1)
        {
            TOp.VS(a, b[0], y[..1]);
            y.Fill(y[0]);
            return;
        }

        int rank = yShape.Length;
        if (rank > Broadcast.MaxRank) throw new ModelValidationException($"rank {rank} is above the supported {Broadcast.MaxRank}");
        Span<int> fa = stackalloc int[rank];
        Span<int> fb = stackalloc int[rank];
        ShapeUtil.BroadcastStrides(aShape, yShape, fa);
        ShapeUtil.BroadcastStrides(bShape, yShape, fb);

        // coalesce: drop unit dimensions and merge neighbours with the same broadcast pattern
        Span<int> dims = stackalloc int[rank];
        Span<int> sa = stackalloc int[rank];
        Span<int> sb = stackalloc int[rank];
        int n = 0;
        for (int d = 0; d < rank; d++)
        {
            if (yShape[d] == 1) continue;
            if (n > 0 && (sa[n - 1] == 0) == (fa[d] == 0) && (sb[n - 1] == 0) == (fb[d] == 0))
            {
                dims[n - 1] *= yShape[d];
                sa[n - 1] = fa[d];
                sb[n - 1] = fb[d];
            }
            else
            {
                dims[n] = yShape[d];
                sa[n] = fa[d];
                sb[n] = fb[d];
                n++;
            }
        }

        int inner = dims[n - 1];
        bool va = sa[n - 1] != 0, vb = sb[n - 1] != 0;
        int outer = total / inner;
        Span<int> idx = stackalloc int[n];
        idx.Clear();
        int oa = 0, ob = 0;
        for (int o = 0, yo = 0; o < outer; o++, yo += inner)
        {
            var ys = y.Slice(yo, inner);
            if (va && vb) TOp.VV(a.Slice(oa, inner), b.Slice(ob, inner), ys);
            else if (va) TOp.VS(a.Slice(oa, inner), b[ob], ys);
            else if (vb) TOp.SV(a[oa], b.Slice(ob, inner), ys);
            else
            {
                TOp.VS(a.Slice(oa, 1), b[ob], ys[..1]);
                ys.Fill(ys[0]);
            }
            for (int d = n - 2; d >= 0; d--)
            {
                idx[d]++;
                oa += sa[d];
                ob += sb[d];
                if (idx[d] < dims[d]) break;
                oa -= sa[d] * dims[d];
                ob -= sb[d] * dims[d];
                idx[d] = 0;
            }
        }
    }
}
