using System.Numerics.Tensors;
using TinyOps.Engine.Ir;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Kernels.Nn;

/// <summary>
/// ConvTranspose (opsets 1-22), float32, 1-D to 3-D. Per group, col = W_g^T * X_g by <see cref="SGemm"/> (in
/// chunks of input rows, into scratch memory), then col2im scatters col into Y, which starts from the bias.
/// </summary>
internal sealed class ConvTransposeKernel : Kernel
{
    private readonly ConvAttributes _attrs;

    public ConvTransposeKernel(Node node, int opset) : base(node, opset)
    {
        _attrs = new ConvAttributes(node, transpose: true);
    }

    public override void Infer(InferContext ctx)
    {
        ctx.ExpectType(0, DataType.Float32);
        ctx.ExpectType(1, DataType.Float32);
        var shape = _attrs.ForTranspose(ctx.InputShape(0), ctx.InputShape(1));
        if (ctx.HasInput(2))
        {
            ctx.ExpectType(2, DataType.Float32);
            var b = ctx.InputShape(2);
            if (b.Length != 1 || b[0] != shape.OutChannels)
                throw ctx.Error($"bias B has shape {ShapeUtil.Format(b)}, expected [{shape.OutChannels}]");
        }
        ctx.SetOutput(0, DataType.Float32, shape.OutputShape());
    }

    public override void Run(RunContext ctx)
    {
        var xT = ctx.Input(0);
        var wT = ctx.Input(1);
        var bT = ctx.OptionalInput(2);
        var s = _attrs.ForTranspose(xT.Shape, wT.Shape);
        ReadOnlySpan<float> x = xT.ReadOnlySpan<float>();
        ReadOnlySpan<float> w = wT.ReadOnlySpan<float>();
        ReadOnlySpan<float> bias = bT is null ? default : bT.ReadOnlySpan<float>();
        Span<float> y = ctx.Output(0).Span<float>();

        int outSize = s.OutSize;
        for (int n = 0; n < s.Batch; n++)
            for (int m = 0; m < s.OutChannels; m++)
            {
                var plane = y.Slice((n * s.OutChannels + m) * outSize, outSize);
                if (bT is null) plane.Clear(); else plane.Fill(bias[m]);
            }
        int inSize = s.InSize;
        if (outSize == 0 || inSize == 0 || s.Batch == 0) return;

        int cg = s.InChannels / s.Group;
        int mg = s.OutChannels / s.Group;
        int colRows = mg * s.KernelSize;
        int rows = s.In[0] * s.In[1];
        int rowLen = s.In[2];
        int chunkRows = (int)Math.Clamp(ConvKernel.MaxColumnFloats / Math.Max(1L, (long)colRows * rowLen), 1, rows);
        Span<float> col = ctx.Scratch<float>(colRows * chunkRows * rowLen);
        for (int n = 0; n < s.Batch; n++)
            for (int g = 0; g < s.Group; g++)
            {
                var xg = x.Slice((n * s.InChannels + g * cg) * inSize, cg * inSize);
                var wg = w.Slice(g * cg * colRows, cg * colRows);
                var yg = y.Slice((n * s.OutChannels + g * mg) * outSize, mg * outSize);
                for (int r0 = 0; r0 < rows; r0 += chunkRows)
                {
                    int rc = Math.Min(chunkRows, rows - r0);
                    int ncols = rc * rowLen;
                    var c = col.Slice(0, colRows * ncols);
                    // col[(m, k), i] = sum over input channels c of W[c, m, k] * X[c, i]
                    SGemm.Multiply(true, false, colRows, ncols, cg, 1f, wg, colRows, xg.Slice(r0 * rowLen), inSize, 0f, c, ncols);
                    Col2Im(c, yg, mg, r0, rc, in s);
                }
            }
    }

    /// <summary>Y[m, id*sd - pd + kd*dd, ih*sh - ph + kh*dh, iw*sw - pw + kw*dw] += col[(m, kd, kh, kw), (row, iw)] inside Y.</summary>
    private static void Col2Im(ReadOnlySpan<float> col, Span<float> yg, int mg, int r0, int rc, in ConvShape s)
    {
        int IH = s.In[1], IW = s.In[2];
        int KD = s.Kernel[0], KH = s.Kernel[1], KW = s.Kernel[2];
        int OD = s.Out[0], OH = s.Out[1], OW = s.Out[2];
        int SW = s.Stride[2];
        int outSize = s.OutSize;
        int ncols = rc * IW;
        int rr = 0;
        for (int m = 0; m < mg; m++)
        {
            var ym = yg.Slice(m * outSize, outSize);
            for (int kd = 0; kd < KD; kd++)
                for (int kh = 0; kh < KH; kh++)
                    for (int kw = 0; kw < KW; kw++, rr++)
                    {
                        var src = col.Slice(rr * ncols, ncols);
                        int offW = kw * s.Dilation[2] - s.PadBegin[2];
                        ConvAttributes.ValidRange(IW, SW, offW, OW, out int lo, out int hi);
                        if (lo == hi) continue;
                        int o = 0;
                        for (int r = r0; r < r0 + rc; r++, o += IW)
                        {
                            int id = r / IH, ih = r - id * IH;
                            int od = id * s.Stride[0] - s.PadBegin[0] + kd * s.Dilation[0];
                            int oh = ih * s.Stride[1] - s.PadBegin[1] + kh * s.Dilation[1];
                            if ((uint)od >= (uint)OD || (uint)oh >= (uint)OH) continue;
                            var yrow = ym.Slice((od * OH + oh) * OW, OW);
                            var seg = src.Slice(o, IW);
                            if (SW == 1)
                            {
                                var dst = yrow.Slice(lo + offW, hi - lo);
                                TensorPrimitives.Add(dst, seg.Slice(lo, hi - lo), dst);
                            }
                            else
                                for (int iw = lo; iw < hi; iw++) yrow[iw * SW + offW] += seg[iw];
                        }
                    }
        }
    }
}
