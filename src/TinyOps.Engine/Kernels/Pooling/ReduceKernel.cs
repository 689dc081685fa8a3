using System.Numerics;
using System.Numerics.Tensors;
using TinyOps.Engine.Ir;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Kernels.Pooling;

/// <summary>Which reduction a <see cref="ReduceKernel"/> computes.</summary>
internal enum ReduceOp
{
    Sum,
    Mean,
    Max,
}

/// <summary>
/// ReduceSum, ReduceMean and ReduceMax. Axes come from the 'axes' attribute before opset 13 (ReduceSum) or 18
/// (ReduceMean, ReduceMax) and from the optional second input afterwards; keepdims and noop_with_empty_axes
/// follow the spec. Reducing an empty set gives 0 (sum), NaN (float mean) or the lowest value (max).
/// </summary>
internal sealed class ReduceKernel : Kernel
{
    private const int MaxRank = 16;

    private readonly ReduceOp _op;
    private readonly bool _keepDims, _noopWithEmptyAxes, _axesFromInput;
    private readonly long[] _attrAxes;

    public ReduceKernel(Node node, int opset, ReduceOp op) : base(node, opset)
    {
        _op = op;
        _axesFromInput = opset >= (op == ReduceOp.Sum ? 13 : 18);
        long keep = node.GetInt("keepdims", 1);
        if (keep is not (0 or 1)) throw Error($"'keepdims' must be 0 or 1, not {keep}");
        _keepDims = keep == 1;
        long noop = node.GetInt("noop_with_empty_axes", 0);
        if (noop is not (0 or 1)) throw Error($"'noop_with_empty_axes' must be 0 or 1, not {noop}");
        _noopWithEmptyAxes = _axesFromInput && noop == 1;
        if (_axesFromInput && node.HasAttribute("axes"))
            throw Error($"from opset {(op == ReduceOp.Sum ? 13 : 18)} the axes are an input, not an attribute");
        _attrAxes = _axesFromInput ? [] : node.GetInts("axes") ?? [];
    }

    public override void Infer(InferContext ctx)
    {
        var type = _op switch
        {
            ReduceOp.Max when Opset >= 20 => ctx.ExpectType(0, DataType.Float32, DataType.Int32, DataType.Int64, DataType.Int8, DataType.UInt8, DataType.Bool),
            ReduceOp.Max when Opset >= 12 => ctx.ExpectType(0, DataType.Float32, DataType.Int32, DataType.Int64, DataType.Int8, DataType.UInt8),
            _ => ctx.ExpectType(0, DataType.Float32, DataType.Int32, DataType.Int64),
        };
        var x = ctx.InputShape(0);
        int rank = x.Length;
        if (rank > MaxRank) throw ctx.Error($"rank {rank} is above the supported {MaxRank}");
        long[] axes = _attrAxes;
        if (_axesFromInput && ctx.HasInput(1))
        {
            var at = ctx.InputType(1);
            if (at != DataType.Int64) ctx.ExpectType(1, DataType.Int64);
            var shape = ctx.InputShape(1);
            if (shape.Length != 1) throw ctx.Error($"the axes input must be 1-D, it has shape {ShapeUtil.Format(shape)}");
            axes = ctx.RequireValue(1).ToInt64Array();
        }
        Span<bool> mask = stackalloc bool[rank];
        string? err = Mask(axes.AsSpan(), rank, mask, out bool noop);
        if (err is not null) throw ctx.Error(err);
        if (noop)
        {
            ctx.SetOutput(0, type, (int[])x.Clone());
            return;
        }
        var y = new List<int>(rank);
        for (int d = 0; d < rank; d++)
        {
            if (!mask[d]) y.Add(x[d]);
            else if (_keepDims) y.Add(1);
        }
        ctx.SetOutput(0, type, y.ToArray());
    }

    /// <summary>Marks reduced axes; returns an error message or null. <paramref name="noop"/> is set for an identity.</summary>
    private string? Mask(ReadOnlySpan<long> axes, int rank, Span<bool> mask, out bool noop)
    {
        noop = false;
        mask.Clear();
        if (axes.Length == 0)
        {
            if (_noopWithEmptyAxes) { noop = true; return null; }
            mask.Fill(true);
            return null;
        }
        foreach (long a in axes)
        {
            if (a < -rank || a >= rank) return $"axis {a} is out of range for an input of rank {rank}";
            int d = (int)(a < 0 ? a + rank : a);
            if (mask[d]) return $"axis {a} is listed twice";
            mask[d] = true;
        }
        return null;
    }

    public override void Run(RunContext ctx)
    {
        var xt = ctx.Input(0);
        var yt = ctx.Output(0);
        var shape = xt.Shape;
        int rank = shape.Length;
        Span<long> axes = stackalloc long[MaxRank];
        int naxes;
        if (_axesFromInput)
        {
            var at = ctx.OptionalInput(1);
            naxes = at?.Length ?? 0;
            if (naxes > MaxRank) throw Error($"{naxes} axes are more than the rank {rank}");
            for (int i = 0; i < naxes; i++) axes[i] = at!.GetInt64(i);
        }
        else
        {
            naxes = _attrAxes.Length;
            if (naxes > MaxRank) throw Error($"{naxes} axes are more than the rank {rank}");
            _attrAxes.AsSpan().CopyTo(axes);
        }
        Span<bool> mask = stackalloc bool[rank];
        string? err = Mask(axes[..naxes], rank, mask, out bool noop);
        if (err is not null) throw Error(err);
        if (noop)
        {
            xt.Bytes.CopyTo(yt.Bytes);
            return;
        }
        switch (xt.Type)
        {
            case DataType.Float32: Reduce(xt.ReadOnlySpan<float>(), yt.Span<float>(), shape, mask, float.NegativeInfinity); break;
            case DataType.Int32: Reduce(xt.ReadOnlySpan<int>(), yt.Span<int>(), shape, mask, int.MinValue); break;
            case DataType.Int64: Reduce(xt.ReadOnlySpan<long>(), yt.Span<long>(), shape, mask, long.MinValue); break;
            case DataType.Int8: Reduce(xt.ReadOnlySpan<sbyte>(), yt.Span<sbyte>(), shape, mask, sbyte.MinValue); break;
            case DataType.UInt8: Reduce(xt.ReadOnlySpan<byte>(), yt.Span<byte>(), shape, mask, byte.MinValue); break;
            case DataType.Bool: Reduce(xt.ReadOnlySpan<byte>(), yt.Span<byte>(), shape, mask, (byte)0); break;
            default: throw Error($"unsupported type {xt.Type.OnnxName()}");
        }
    }

    private void Reduce<T>(ReadOnlySpan<T> x, Span<T> y, ReadOnlySpan<int> shape, ReadOnlySpan<bool> mask, T lowest)
        where T : unmanaged, INumber<T>
    {
        if (y.Length == 0) return;
        bool max = _op == ReduceOp.Max;
        int count = 1;
        for (int d = 0; d < shape.Length; d++) if (mask[d]) count *= shape[d];
        T init = max ? lowest : T.Zero;
        if (x.Length == 0)
        {
            // Every output reduces an empty set.
            y.Fill(_op == ReduceOp.Mean && typeof(T) == typeof(float) ? T.CreateTruncating(float.NaN) : init);
            return;
        }

        // Merge adjacent dimensions of the same kind and drop size-1 dimensions.
        Span<int> dims = stackalloc int[shape.Length + 1];
        Span<bool> red = stackalloc bool[shape.Length + 1];
        int m = 0;
        for (int d = 0; d < shape.Length; d++)
        {
            if (shape[d] == 1) continue;
            if (m > 0 && red[m - 1] == mask[d]) dims[m - 1] *= shape[d];
            else { dims[m] = shape[d]; red[m] = mask[d]; m++; }
        }
        if (m == 0) { dims[0] = 1; red[0] = false; m = 1; }

        // Output strides of the merged dimensions (0 for reduced ones).
        Span<int> ostride = stackalloc int[m];
        int acc = 1;
        for (int d = m - 1; d >= 0; d--)
        {
            ostride[d] = red[d] ? 0 : acc;
            if (!red[d]) acc *= dims[d];
        }
        Span<int> idx = stackalloc int[m];
        idx.Clear();
        y.Fill(init);
        int len = dims[m - 1];
        bool innerReduced = red[m - 1];
        int oo = 0;
        for (int b = 0; b < x.Length; b += len)
        {
            var row = x.Slice(b, len);
            if (innerReduced)
            {
                T v = max ? TensorPrimitives.Max(row) : TensorPrimitives.Sum(row);
                y[oo] = max ? Max(y[oo], v) : y[oo] + v;
            }
            else
            {
                var yr = y.Slice(oo, len);
                if (max) TensorPrimitives.Max(yr, row, yr);
                else TensorPrimitives.Add(yr, row, yr);
            }
            for (int d = m - 2; d >= 0; d--)
            {
                idx[d]++;
                oo += ostride[d];
                if (idx[d] < dims[d]) break;
                oo -= ostride[d] * dims[d];
                idx[d] = 0;
            }
        }
        if (_op == ReduceOp.Mean)
        {
            if (typeof(T) == typeof(float)) TensorPrimitives.Divide(y, T.CreateTruncating(count), y);
            else
            {
                T c = T.CreateTruncating(count);
                for (int i = 0; i < y.Length; i++) y[i] /= c;
            }
        }
    }

    private static T Max<T>(T a, T b) where T : INumber<T> => T.IsNaN(a) || T.IsNaN(b) ? a + b : a > b ? a : b;
}
