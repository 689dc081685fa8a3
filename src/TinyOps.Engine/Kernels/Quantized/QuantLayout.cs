using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Kernels.Quantized;

/// <summary>
/// How a scale/zero-point tensor maps onto the elements of x for QuantizeLinear and DequantizeLinear: x is
/// viewed as [Outer, Axis, Inner]; element (o, d, i) uses parameter o*OuterStride + (d / Block)*AxisStride + i*InnerStride.
/// Per-tensor, per-axis and blocked quantization are all expressed this way.
/// </summary>
internal readonly struct QuantLayout
{
    public readonly int Outer, Axis, Inner, OuterStride, AxisStride, InnerStride, Block;

    private QuantLayout(int outer, int axis, int inner, int os, int ds, int iS, int block)
    {
        Outer = outer; Axis = axis; Inner = inner; OuterStride = os; AxisStride = ds; InnerStride = iS; Block = block;
    }

    /// <summary>Builds the layout, or returns an error message describing why the shapes do not fit.</summary>
    public static QuantLayout Create(ReadOnlySpan<int> x, ReadOnlySpan<int> scale, long axisAttr, long blockSize, bool allowPerAxis, out string? error)
    {
        error = null;
        int n = ShapeUtil.Size(x);
        int sSize = ShapeUtil.Size(scale);
        if (blockSize <= 0)
        {
            if (sSize == 1 && scale.Length <= 1) return new QuantLayout(1, 1, n, 0, 0, 0, 1);
            if (!allowPerAxis) { error = $"the scale must be a scalar at this opset, it has shape {ShapeUtil.Format(scale)}"; return default; }
            if (scale.Length != 1) { error = $"the scale must be a scalar or a 1-D tensor (per-axis), it has shape {ShapeUtil.Format(scale)}; set block_size for blocked quantization"; return default; }
            if (axisAttr < -x.Length || axisAttr >= x.Length) { error = $"axis {axisAttr} is out of range for an input of rank {x.Length}"; return default; }
            int ax = (int)(axisAttr < 0 ? axisAttr + x.Length : axisAttr);
            if (scale[0] != x[ax]) { error = $"the per-axis scale has {scale[0]} elements but input dimension {ax} is {x[ax]}"; return default; }
            return new QuantLayout(ShapeUtil.SizeTo(x, ax), x[ax], ShapeUtil.SizeFrom(x, ax + 1), 0, 1, 0, 1);
        }
        else
        {
            if (axisAttr < -x.Length || axisAttr >= x.Length) { error = $"axis {axisAttr} is out of range for an input of rank {x.Length}"; return default; }
            int ax = (int)(axisAttr < 0 ? axisAttr + x.Length : axisAttr);
            if (scale.Length != x.Length) { error = $"blocked quantization needs a scale of the input's rank {x.Length}, it has shape {ShapeUtil.Format(scale)}"; return default; }
            for (int d = 0; d < x.Length; d++)
            {
                int want = d == ax ? (int)((x[d] + blockSize - 1) / blockSize) : x[d];
                if (scale[d] != want) { error = $"with block_size {blockSize} on axis {ax} the scale must have shape dimension {d} = {want}, it has shape {ShapeUtil.Format(scale)} for an input of shape {ShapeUtil.Format(x)}"; return default; }
            }
            int inner = ShapeUtil.SizeFrom(x, ax + 1);
            return new QuantLayout(ShapeUtil.SizeTo(x, ax), x[ax], inner, scale[ax] * inner, inner, 1, (int)Math.Min(blockSize, int.MaxValue));
        }
    }
}
