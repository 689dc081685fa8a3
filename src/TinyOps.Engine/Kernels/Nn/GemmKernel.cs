using TinyOps.Engine.Ir;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Kernels.Nn;

/// <summary>
/// Gemm (opsets 1-13), float32: Y = act(alpha * op(A) * op(B) + beta * C) (act: a fused activation, if any), with C unidirectionally broadcast to
/// [M, N] and optional from opset 11. The opset 1-6 'broadcast' attribute is accepted either way (broadcasting
/// a C of the full shape is the identity).
/// </summary>
internal sealed class GemmKernel : Kernel
{
    private readonly bool _transA;
    private readonly bool _transB;
    private readonly float _alpha;
    private readonly float _beta;
    private readonly FusedActivation _act;

    public GemmKernel(Node node, int opset) : base(node, opset)
    {
        _act = FusedActivation.FromNode(node);
        _transA = node.GetInt("transA", 0) != 0;
        _transB = node.GetInt("transB", 0) != 0;
        _alpha = node.GetFloat("alpha", 1f);
        _beta = node.GetFloat("beta", 1f);
    }

    public override void Infer(InferContext ctx)
    {
        ctx.ExpectType(0, DataType.Float32);
        ctx.ExpectType(1, DataType.Float32);
        var a = ctx.InputShape(0);
        var b = ctx.InputShape(1);
        if (a.Length != 2) throw ctx.Error($"input A must be a matrix, it has shape {ShapeUtil.Format(a)}");
        if (b.Length != 2) throw ctx.Error($"input B must be a matrix, it has shape {ShapeUtil.Format(b)}");
        int m = _transA ? a[1] : a[0], k = _transA ? a[0] : a[1];
        int kb = _transB ? b[1] : b[0], n = _transB ? b[0] : b[1];
        if (k != kb)
            throw ctx.Error($"inner dimensions differ: A {ShapeUtil.Format(a)} (transA={(_transA ? 1 : 0)}) and B {ShapeUtil.Format(b)} (transB={(_transB ? 1 : 0)})");
        if (ctx.HasInput(2))
        {
            ctx.ExpectType(2, DataType.Float32);
            var c = ctx.InputShape(2);
            bool ok = c.Length <= 2
                && (c.Length < 1 || c[^1] == n || c[^1] == 1)
                && (c.Length < 2 || c[0] == m || c[0] == 1);
            if (!ok) throw ctx.Error($"input C of shape {ShapeUtil.Format(c)} does not broadcast to [{m},{n}]");
        }
        else if (Opset < 11)
            throw ctx.Error("input C is required before opset 11");
        ctx.SetOutput(0, DataType.Float32, [m, n]);
    }

    public override void Run(RunContext ctx)
    {
        var aT = ctx.Input(0);
        var bT = ctx.Input(1);
        var cT = ctx.OptionalInput(2);
        var yT = ctx.Output(0);
        int m = yT.Shape[0], n = yT.Shape[1];
        int k = _transA ? aT.Shape[0] : aT.Shape[1];
        var y = yT.Span<float>();
        float beta = 0f;
        ReadOnlySpan<float> colBias = default;
        if (cT is not null && _beta == 1f && n > 1 && cT.Length == n && cT.Shape[^1] == n)
        {
            // A bias row (the common Linear layer): added in the GEMM epilogue.
            colBias = cT.ReadOnlySpan<float>();
        }
        else if (cT is not null && _beta != 0f && m > 0 && n > 0)
        {
            var c = cT.ReadOnlySpan<float>();
            int cRows = cT.Rank == 2 ? cT.Shape[0] : 1;
            int cCols = cT.Rank >= 1 ? cT.Shape[^1] : 1;
            for (int i = 0; i < m; i++)
            {
                var row = y.Slice(i * n, n);
                int ci = cRows == 1 ? 0 : i * cCols;
                if (cCols == 1) row.Fill(c[ci]);
                else c.Slice(ci, n).CopyTo(row);
            }
            beta = _beta;
        }
        SGemm.Multiply(_transA, _transB, m, n, k, _alpha, aT.ReadOnlySpan<float>(), aT.Shape[1], bT.ReadOnlySpan<float>(), bT.Shape[1], beta, y, n,
            default, colBias, in _act, ctx.Threads);
    }
}
