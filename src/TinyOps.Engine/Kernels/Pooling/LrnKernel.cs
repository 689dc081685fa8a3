using TinyOps.Engine.Ir;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Kernels.Pooling;

/// <summary>LRN: local response normalization across channels, y = x / (bias + alpha / size * sum(x^2))^beta.</summary>
internal sealed class LrnKernel : Kernel
{
    private readonly float _alpha, _beta, _bias;
    private readonly int _size, _before, _after;

    public LrnKernel(Node node, int opset) : base(node, opset)
    {
        _alpha = node.GetFloat("alpha", 1e-4f);
        _beta = node.GetFloat("beta", 0.75f);
        _bias = node.GetFloat("bias", 1f);
        long size = node.GetIntRequired("size");
        if (size < 1 || size > int.MaxValue / 2) throw Error($"'size' must be positive, not {size}");
        _size = (int)size;
        _before = (_size - 1) / 2;
        _after = _size - 1 - _before; // ceil((size - 1) / 2)
    }

    public override void Infer(InferContext ctx)
    {
        ctx.ExpectType(0, DataType.Float32);
        var x = ctx.InputShape(0);
        if (x.Length < 3) throw ctx.Error($"input has rank {x.Length}; it must be (N, C, D1, ...) with rank at least 3");
        ctx.SetOutputLike(0, 0);
    }

    public override void Run(RunContext ctx)
    {
        var xt = ctx.Input(0);
        var x = xt.ReadOnlySpan<float>();
        var y = ctx.Output(0).Span<float>();
        int n = xt.Shape[0], channels = xt.Shape[1];
        int plane = ShapeUtil.SizeFrom(xt.Shape, 2);
        float scale = _alpha / _size;
        for (int b = 0; b < n; b++)
        {
            int baseOff = b * channels * plane;
            for (int c = 0; c < channels; c++)
            {
                int lo = Math.Max(0, c - _before), hi = Math.Min(channels - 1, c + _after);
                int yo = baseOff + c * plane;
                for (int i = 0; i < plane; i++)
                {
                    float sq = 0;
                    for (int j = lo; j <= hi; j++)
                    {
                        float v = x[baseOff + j * plane + i];
                        sq += v * v;
                    }
                    y[yo + i] = x[yo + i] / MathF.Pow(_bias + scale * sq, _beta);
                }
            }
        }
    }
}
