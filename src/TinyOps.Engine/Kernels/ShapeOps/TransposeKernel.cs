using TinyOps.Engine.Ir;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Kernels.ShapeOps;

/// <summary>Transpose: output axis i is input axis perm[i] (default: reversed axes).</summary>
internal sealed class TransposeKernel : Kernel
{
    private readonly long[]? _perm;

    public TransposeKernel(Node node, int opset) : base(node, opset)
    {
        _perm = node.GetInts("perm");
    }

    public override void Infer(InferContext ctx)
    {
        var type = ctx.ExpectType(0, ShapeOpsUtil.AllTypes);
        var s = ctx.InputShape(0);
        int r = s.Length;
        var output = new int[r];
        if (_perm is null)
        {
            for (int i = 0; i < r; i++) output[i] = s[r - 1 - i];
        }
        else
        {
            if (_perm.Length != r) throw ctx.Error($"perm has {_perm.Length} entries but the input has rank {r}");
            var seen = new bool[r];
            for (int i = 0; i < r; i++)
            {
                long p = _perm[i];
                if (p < 0 || p >= r || seen[p]) throw ctx.Error($"perm [{string.Join(",", _perm)}] is not a permutation of 0..{r - 1}");
                seen[p] = true;
                output[i] = s[p];
            }
        }
        ctx.SetOutput(0, type, output);
    }

    public override void Run(RunContext ctx)
    {
        var x = ctx.Input(0);
        var y = ctx.Output(0);
        int r = x.Rank;
        var inShape = x.Shape;
        var outShape = y.Shape;
        Span<int> strides = stackalloc int[r];
        int acc = 1;
        for (int d = r - 1; d >= 0; d--) { strides[d] = acc; acc *= inShape[d]; }
        var maps = ctx.Scratch<int>(Math.Max(1, Sum(outShape)), 0);
        int k = 0;
        for (int d = 0; d < r; d++)
        {
            int stride = strides[_perm is null ? r - 1 - d : (int)_perm[d]];
            for (int i = 0; i < outShape[d]; i++) maps[k++] = i * stride;
        }
        ShapeOpsUtil.MapGather(x, y, outShape, maps, default);
    }

    private static int Sum(int[] s)
    {
        int n = 0;
        foreach (int v in s) n += v;
        return n;
    }
}
