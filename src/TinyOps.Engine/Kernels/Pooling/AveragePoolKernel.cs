using TinyOps.Engine.Ir;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Kernels.Pooling;

/// <summary>AveragePool (opsets 1-22): N-d average pooling with pads, strides, ceil_mode (10+), dilations (19+), auto_pad and count_include_pad (7+).</summary>
internal sealed class AveragePoolKernel : Kernel
{
    private readonly PoolGeometry _g;
    private readonly bool _includePad;

    public AveragePoolKernel(Node node, int opset) : base(node, opset)
    {
        _g = new PoolGeometry(node, allowCeil: opset >= 10, allowDilations: opset >= 19);
        long cip = node.GetInt("count_include_pad", 0);
        if (cip is not (0 or 1)) throw Error($"'count_include_pad' must be 0 or 1, not {cip}");
        _includePad = cip == 1;
    }

    public override void Infer(InferContext ctx)
    {
        ctx.ExpectType(0, DataType.Float32);
        var x = ctx.InputShape(0);
        string? err = _g.Compute(x);
        if (err is not null) throw ctx.Error(err);
        ctx.SetOutput(0, DataType.Float32, _g.OutputShape(x));
    }

    public override void Run(RunContext ctx)
    {
        var xt = ctx.Input(0);
        _g.Compute(xt.Shape);
        var x = xt.ReadOnlySpan<float>();
        var y = ctx.Output(0).Span<float>();
        var g = _g;
        int channels = xt.Shape[0] * xt.Shape[1];
        int in0 = g.In[0], in1 = g.In[1], in2 = g.In[2];
        int out0 = g.Out[0], out1 = g.Out[1], out2 = g.Out[2];
        int inSize = g.InSize, outSize = g.OutSize;
        for (int c = 0; c < channels; c++)
        {
            var xc = x.Slice(c * inSize, inSize);
            int yo = c * outSize;
            for (int o0 = 0; o0 < out0; o0++)
            {
                int s0 = o0 * g.S[0] - g.PadBegin[0];
                PoolGeometry.TapRange(s0, g.K[0], g.D[0], in0, out int lo0, out int hi0);
                int n0 = _includePad ? PoolGeometry.PaddedTapCount(s0, g.K[0], g.D[0], in0, g.PadBegin[0], g.PadEnd[0]) : hi0 - lo0;
                for (int o1 = 0; o1 < out1; o1++)
                {
                    int s1 = o1 * g.S[1] - g.PadBegin[1];
                    PoolGeometry.TapRange(s1, g.K[1], g.D[1], in1, out int lo1, out int hi1);
                    int n1 = _includePad ? PoolGeometry.PaddedTapCount(s1, g.K[1], g.D[1], in1, g.PadBegin[1], g.PadEnd[1]) : hi1 - lo1;
                    for (int o2 = 0; o2 < out2; o2++, yo++)
                    {
                        int s2 = o2 * g.S[2] - g.PadBegin[2];
                        PoolGeometry.TapRange(s2, g.K[2], g.D[2], in2, out int lo2, out int hi2);
                        int n2 = _includePad ? PoolGeometry.PaddedTapCount(s2, g.K[2], g.D[2], in2, g.PadBegin[2], g.PadEnd[2]) : hi2 - lo2;
                        float sum = 0;
                        for (int k0 = lo0; k0 < hi0; k0++)
                        {
                            int p0 = s0 + k0 * g.D[0];
                            for (int k1 = lo1; k1 < hi1; k1++)
                            {
                                int row = (p0 * in1 + s1 + k1 * g.D[1]) * in2 + s2;
                                for (int k2 = lo2; k2 < hi2; k2++) sum += xc[row + k2 * g.D[2]];
                            }
                        }
                        int count = n0 * n1 * n2;
                        y[yo] = count == 0 ? float.NaN : sum / count;
                    }
                }
            }
        }
    }
}
