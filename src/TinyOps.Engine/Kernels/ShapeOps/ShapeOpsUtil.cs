using System.Runtime.InteropServices;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Kernels.ShapeOps;

/// <summary>Shared helpers of the shape kernels: reading shape-carrying inputs and moving elements by size.</summary>
internal static class ShapeOpsUtil
{
    public static readonly DataType[] AllTypes =
        [DataType.Float32, DataType.Int8, DataType.UInt8, DataType.Int32, DataType.Int64, DataType.Bool];

    public static readonly DataType[] IndexTypes = [DataType.Int32, DataType.Int64];

    /// <summary>Reads an integer tensor (shape, axes, pads...) in Infer; must be int64 (or int32 where allowed).</summary>
    public static long[] ReadInts(InferContext ctx, int input, string what, bool allowInt32 = false)
    {
        var t = ctx.RequireValue(input);
        if (t.Type != DataType.Int64 && !(allowInt32 && t.Type == DataType.Int32))
        {
            if (!t.Type.IsSupported())
                throw new UnsupportedTypeException($"{ctx.Node.DisplayName}: input {input} ('{what}') has type {t.Type.OnnxName()}, which this engine does not support");
            throw ctx.Error($"input {input} ('{what}') must be int64{(allowInt32 ? " or int32" : "")}, it is {t.Type.OnnxName()}");
        }
        if (t.Rank > 1) throw ctx.Error($"input {input} ('{what}') must be 1-D, it has shape {ShapeUtil.Format(t.Shape)}");
        return t.ToInt64Array();
    }

    public static int ToDim(InferContext ctx, long v, string what)
    {
        if (v < 0 || v > int.MaxValue) throw ctx.Error($"{what} {v} is not a valid dimension");
        return (int)v;
    }

    /// <summary>Normalizes a list of axes against a rank; rejects duplicates.</summary>
    public static int[] NormalizeAxes(InferContext ctx, long[] axes, int rank, string what)
    {
        var r = new int[axes.Length];
        for (int i = 0; i < axes.Length; i++)
        {
            long a = axes[i];
            if (a < -rank || a >= rank) throw ctx.Error($"{what} {a} is out of range for rank {rank}");
            r[i] = (int)(a < 0 ? a + rank : a);
            for (int j = 0; j < i; j++)
                if (r[j] == r[i]) throw ctx.Error($"{what} {axes[i]} is repeated");
        }
        return r;
    }

    /// <summary>
    /// Gathers elements through per-axis offset maps: output element (i0..in) comes from input element
    /// sum_d maps[d][i_d]; a negative map entry means the fill value. <paramref name="maps"/> holds, axis after
    /// axis, outShape[d] entries. <paramref name="fill"/> holds one element's bytes (or is empty when unused).
    /// </summary>
    public static void MapGather(Tensor src, Tensor dst, ReadOnlySpan<int> outShape, ReadOnlySpan<int> maps, ReadOnlySpan<byte> fill)
    {
        switch (dst.Type.ElementSize())
        {
            case 1: MapGather(src.Bytes, dst.Bytes, outShape, maps, fill.Length > 0 ? fill[0] : (byte)0); break;
            case 4: MapGather(MemoryMarshal.Cast<byte, int>(src.Bytes), MemoryMarshal.Cast<byte, int>(dst.Bytes), outShape, maps, fill.Length >= 4 ? MemoryMarshal.Read<int>(fill) : 0); break;
            default: MapGather(MemoryMarshal.Cast<byte, long>(src.Bytes), MemoryMarshal.Cast<byte, long>(dst.Bytes), outShape, maps, fill.Length >= 8 ? MemoryMarshal.Read<long>(fill) : 0L); break;
        }
    }

    private static void MapGather<T>(ReadOnlySpan<T> src, Span<T> dst, ReadOnlySpan<int> outShape, ReadOnlySpan<int> maps, T fill) where T : unmanaged
    {
        int rank = outShape.Length;
        if (dst.Length == 0) return;
        if (rank == 0) { dst[0] = src[0]; return; }
        Span<int> idx = stackalloc int[rank];
        Span<int> start = stackalloc int[rank];
        idx.Clear();
        int acc = 0;
        for (int d = 0; d < rank; d++) { start[d] = acc; acc += outShape[d]; }
        int inner = outShape[rank - 1];
        var last = maps.Slice(start[rank - 1], inner);
        bool contiguous = true;
        for (int i = 0; i < inner; i++)
            if (last[i] < 0 || last[i] != last[0] + i) { contiguous = false; break; }
        for (int o = 0; o < dst.Length; o += inner)
        {
            int off = 0;
            bool outside = false;
            for (int d = 0; d < rank - 1; d++)
            {
                int m = maps[start[d] + idx[d]];
                if (m < 0) { outside = true; break; }
                off += m;
            }
            var row = dst.Slice(o, inner);
            if (outside) row.Fill(fill);
            else if (contiguous) src.Slice(off + last[0], inner).CopyTo(row);
            else
            {
                for (int i = 0; i < inner; i++)
                {
                    int m = last[i];
                    row[i] = m < 0 ? fill : src[off + m];
                }
            }
            for (int d = rank - 2; d >= 0; d--)
            {
                if (++idx[d] < outShape[d]) break;
                idx[d] = 0;
            }
        }
    }
}
