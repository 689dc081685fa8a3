using TinyOps.Engine.Ir;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Kernels.Elementwise;

/// <summary>
/// Dropout. In inference (the default, and whenever training_mode is false or ratio is 0) the output is the input
/// and the optional mask is all true. Opset 12+ training_mode=true drops elements at random (seeded by 'seed')
/// and scales the rest by 1/(1-ratio); a 'seed' draws the mask like numpy's RandomState(seed).uniform, as
/// the ONNX reference does. Before opset 10 the mask has the input's type (1.0 for kept elements).
/// </summary>
internal sealed class DropoutKernel : Kernel
{
    private readonly float _ratioAttr;
    private readonly bool _maskIsBool;
    private readonly Mt19937 _random;
    private readonly uint? _seed;

    public DropoutKernel(Node node, int opset) : base(node, opset)
    {
        _ratioAttr = node.GetFloat("ratio", 0.5f);
        _maskIsBool = opset >= 10;
        _seed = node.HasAttribute("seed") ? unchecked((uint)node.GetInt("seed", 0)) : null;
        _random = new Mt19937(_seed ?? (uint)Environment.TickCount);
        if (opset < 12 && (_ratioAttr < 0f || _ratioAttr >= 1f && _ratioAttr != 1f))
            throw Error($"ratio {_ratioAttr} is outside [0, 1)");
    }

    public override bool Foldable => Opset < 12 || !Node.HasInput(2);

    public override void Infer(InferContext ctx)
    {
        ctx.ExpectType(0, DataType.Float32);
        if (Opset >= 12)
        {
            if (ctx.HasInput(1))
            {
                ctx.ExpectType(1, DataType.Float32);
                if (ShapeUtil.Size(ctx.InputShape(1)) != 1) throw ctx.Error($"ratio must be a scalar, it has shape {ShapeUtil.Format(ctx.InputShape(1))}");
            }
            if (ctx.HasInput(2))
            {
                ctx.ExpectType(2, DataType.Bool);
                if (ShapeUtil.Size(ctx.InputShape(2)) != 1) throw ctx.Error($"training_mode must be a scalar, it has shape {ShapeUtil.Format(ctx.InputShape(2))}");
            }
        }
        ctx.SetOutputLike(0, 0);
        ctx.SetOutput(1, _maskIsBool ? DataType.Bool : DataType.Float32, ctx.InputShape(0));
    }

    public override void Run(RunContext ctx)
    {
        var x = ctx.Input(0).ReadOnlySpan<float>();
        var y = ctx.Output(0).Span<float>();
        bool wantMask = ctx.OutputCount > 1;
        bool training = false;
        float ratio = _ratioAttr;
        if (Opset >= 12)
        {
            var tm = ctx.OptionalInput(2);
            training = tm is not null && tm.ReadOnlySpan<bool>()[0];
            var r = ctx.OptionalInput(1);
            if (r is not null) ratio = r.ReadOnlySpan<float>()[0];
        }
        if (!training || ratio == 0f)
        {
            x.CopyTo(y);
            if (wantMask) FillMask(ctx.Output(1), keepAll: true);
            return;
        }
        if (ratio < 0f || ratio >= 1f) throw Error($"ratio {ratio} is outside [0, 1)");
        float scale = 1f / (1f - ratio);
        if (_seed is uint seed) _random.Seed(seed); // a seeded node gives the same mask every run, like the reference
        Span<bool> mask = wantMask ? ctx.Output(1).Span<bool>() : default;
        for (int i = 0; i < y.Length; i++)
        {
            bool keep = _random.NextDouble() >= ratio;
            y[i] = keep ? x[i] * scale : 0f;
            if (wantMask) mask[i] = keep;
        }
    }

    private void FillMask(Tensor mask, bool keepAll)
    {
        if (_maskIsBool) mask.Span<bool>().Fill(keepAll);
        else mask.Span<float>().Fill(keepAll ? 1f : 0f);
    }
}
