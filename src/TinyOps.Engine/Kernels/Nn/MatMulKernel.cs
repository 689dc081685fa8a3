using System.Numerics;
using TinyOps.Engine.Ir;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Kernels.Nn;

/// <summary>
/// MatMul (opsets 1-13) with numpy semantics: 1-D operands are promoted to a row (A) or column (B) and the
/// promoted axis removed from the output; leading batch dimensions broadcast. float32 uses <see cref="SGemm"/>;
/// int32 and int64 use a plain loop (wrapping arithmetic).
/// </summary>
internal sealed class MatMulKernel : Kernel
{
    private const int MaxRank = 16;

    public MatMulKernel(Node node, int opset) : base(node, opset) { }

    public override void Infer(InferContext ctx)
    {
        var t = ctx.ExpectType(0, DataType.Float32, DataType.Int32, DataType.Int64);
        if (ctx.InputType(1) != t)
            throw ctx.Error($"inputs have different types {t.OnnxName()} and {ctx.InputType(1).OnnxName()}");
        var a = ctx.InputShape(0);
        var b = ctx.InputShape(1);
        if (a.Length == 0 || b.Length == 0) throw ctx.Error($"MatMul inputs must have rank 1 or more, got {ShapeUtil.Format(a)} and {ShapeUtil.Format(b)}");
        if (a.Length > MaxRank || b.Length > MaxRank) throw ctx.Error($"ranks above {MaxRank} are not supported");
        int k = a[^1];
        int kb = b.Length == 1 ? b[0] : b[^2];
        if (k != kb) throw ctx.Error($"inner dimensions differ: A {ShapeUtil.Format(a)} and B {ShapeUtil.Format(b)}");
        var aBatch = a.Length > 2 ? a[..^2] : [];
        var bBatch = b.Length > 2 ? b[..^2] : [];
        var batch = ShapeUtil.TryBroadcast(aBatch, bBatch)
            ?? throw ctx.Error($"batch dimensions of A {ShapeUtil.Format(a)} and B {ShapeUtil.Format(b)} do not broadcast");
        var shape = new List<int>(batch);
        if (a.Length >= 2) shape.Add(a[^2]);
        if (b.Length >= 2) shape.Add(b[^1]);
        ctx.SetOutput(0, t, [.. shape]);
    }

    public override void Run(RunContext ctx)
    {
        var aT = ctx.Input(0);
        var bT = ctx.Input(1);
        var yT = ctx.Output(0);
        var a = aT.Shape;
        var b = bT.Shape;
        int m = a.Length >= 2 ? a[^2] : 1;
        int k = a[^1];
        int n = b.Length >= 2 ? b[^1] : 1;
        int aBatchRank = Math.Max(0, a.Length - 2), bBatchRank = Math.Max(0, b.Length - 2);
        int rank = Math.Max(aBatchRank, bBatchRank);
        Span<int> batch = stackalloc int[rank];
        Span<int> aStride = stackalloc int[rank];
        Span<int> bStride = stackalloc int[rank];
        int aMat = m * k, bMat = k * n;
        int total = 1;
        for (int d = rank - 1, sa = aMat, sb = bMat; d >= 0; d--)
        {
            int ai = d - (rank - aBatchRank), bi = d - (rank - bBatchRank);
            int da = ai >= 0 ? a[ai] : 1, db = bi >= 0 ? b[bi] : 1;
            batch[d] = Math.Max(da, db);
            if (da == 0 || db == 0) batch[d] = 0;
            aStride[d] = da == 1 ? 0 : sa;
            bStride[d] = db == 1 ? 0 : sb;
            sa *= da;
            sb *= db;
            total *= batch[d];
        }
        int yMat = m * n;
        if (total == 0 || yMat == 0) return;
        if (k == 0)
        {
            yT.Bytes.Clear();
            return;
        }

        // B shared by every batch and A not broadcast: one tall GEMM over all batches.
        bool foldBatch = bBatchRank == 0 || bT.Length == bMat;
        if (foldBatch && aT.Length == total * aMat)
        {
            Multiply(yT.Type, aT, 0, bT, 0, yT, 0, total * m, n, k, ctx.Threads);
            return;
        }
        Span<int> idx = stackalloc int[rank];
        idx.Clear();
        int aOff = 0, bOff = 0;
        for (int t = 0; t < total; t++)
        {
            Multiply(yT.Type, aT, aOff, bT, bOff, yT, t * yMat, m, n, k, ctx.Threads);
            for (int d = rank - 1; d >= 0; d--)
            {
                idx[d]++;
                aOff += aStride[d];
                bOff += bStride[d];
                if (idx[d] < batch[d]) break;
                aOff -= aStride[d] * batch[d];
                bOff -= bStride[d] * batch[d];
                idx[d] = 0;
            }
        }
    }

    private static void Multiply(DataType type, Tensor aT, int aOff, Tensor bT, int bOff, Tensor yT, int yOff, int m, int n, int k, int threads)
    {
        switch (type)
        {
            case DataType.Float32:
                SGemm.Multiply(false, false, m, n, k, 1f,
                    aT.ReadOnlySpan<float>().Slice(aOff, m * k), k,
                    bT.ReadOnlySpan<float>().Slice(bOff, k * n), n,
                    0f, yT.Span<float>().Slice(yOff, m * n), n, default, default, FusedActivation.None, threads);
                break;
            case DataType.Int32:
                MultiplyInt(aT.ReadOnlySpan<int>().Slice(aOff, m * k), bT.ReadOnlySpan<int>().Slice(bOff, k * n), yT.Span<int>().Slice(yOff, m * n), m, n, k);
                break;
            default:
                MultiplyInt(aT.ReadOnlySpan<long>().Slice(aOff, m * k), bT.ReadOnlySpan<long>().Slice(bOff, k * n), yT.Span<long>().Slice(yOff, m * n), m, n, k);
                break;
        }
    }

    private static void MultiplyInt<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y, int m, int n, int k)
        where T : unmanaged, IBinaryInteger<T>
    {
        y.Clear();
        for (int i = 0; i < m; i++)
        {
            var yi = y.Slice(i * n, n);
            for (int p = 0; p < k; p++)
            {
                T av = a[i * k + p];
                var bp = b.Slice(p * n, n);
                for (int j = 0; j < n; j++) yi[j] += av * bp[j];
            }
        }
    }
}
