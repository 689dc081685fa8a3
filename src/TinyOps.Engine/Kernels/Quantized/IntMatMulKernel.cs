using System.Numerics;
using TinyOps.Engine.Ir;
using TinyOps.Engine.Kernels.Common;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Kernels.Quantized;

/// <summary>
/// MatMulInteger (opset 10) and QLinearMatMul (opsets 10, 21): numpy-matmul of uint8/int8 matrices with zero points
/// (per tensor, per row of a, per column of b, optionally per batch), accumulating in int32 via <see cref="IntGemm"/>.
/// MatMulInteger outputs the int32 sums; QLinearMatMul requantizes them with a_scale·b_scale/y_scale to uint8/int8.
/// The fast route packs a constant b once at planning time (see <see cref="Infer"/>) and multiplies with
/// <see cref="FastIntGemm"/>; the reference route (<see cref="IntGemm"/>) stays for tests.
/// </summary>
internal sealed class IntMatMulKernel : Kernel
{
    private readonly bool _qlinear;
    private readonly int _a, _aZero, _aScale, _b, _bZero, _bScale;

    // b packed at planning time when constant, one packed matrix per batch matrix of b; keyed by its source buffer.
    private byte[]? _packedB;
    private int[]? _packedColSums;
    private byte[]? _packedSrc;
    private int _packedSrcOffset, _packedSrcLength;
    private DataType _packedAType, _packedBType;
    // b is signed, a unsigned and b's k-pairs fit int16: the vpmaddubsw tile is exact (FastIntGemm.ColumnPairsFitInt16)
    private bool _packedPairsFit;
    // the packed b is in WideIntGemm's 24-column panels (planned on the wide path) rather than FastIntGemm's
    private bool _packedWide;

    /// <summary>
    /// A QLinearMatMul of one row against a constant B with constant per-tensor parameters (a classifier's layers),
    /// planned whole at load: the multiplier, zero points and column adjustments are computed once, and a run only
    /// sums the row (when b's zero point is not 0) and calls <see cref="WideIntGemm.MultiplyRowRequantize"/>, instead
    /// of reading shapes, batch offsets and parameters every time. Null when the node is not of that kind.
    /// </summary>
    private sealed class RowPlan
    {
        public int K, N, Zb, YZero;
        public bool ASigned, AUnsigned, YSigned;
        public float[] Mult = [0f];
        public int[] Za = [0];
        public int[] ColAdj = [];
        public int[] RowInit = [0];
    }

    private RowPlan? _rowPlan;

    /// <summary>Whether a single-row QLinearMatMul may take its planned route; a switch for tests and A/B comparisons.</summary>
    internal static bool PlanRows = true;

    public IntMatMulKernel(Node node, int opset, bool qlinear) : base(node, opset)
    {
        _qlinear = qlinear;
        if (qlinear) { _a = 0; _aScale = 1; _aZero = 2; _b = 3; _bScale = 4; _bZero = 5; }
        else { _a = 0; _b = 1; _aZero = 2; _bZero = 3; _aScale = -1; _bScale = -1; }
    }

    public override void Infer(InferContext ctx)
    {
        var aType = ctx.ExpectType(_a, DataType.UInt8, DataType.Int8);
        var bType = ctx.ExpectType(_b, DataType.UInt8, DataType.Int8);
        var a = ctx.InputShape(_a);
        var b = ctx.InputShape(_b);
        if (a.Length == 0 || b.Length == 0) throw ctx.Error($"inputs must have rank 1 or more, they have shapes {ShapeUtil.Format(a)} and {ShapeUtil.Format(b)}");
        bool a1 = a.Length == 1, b1 = b.Length == 1;
        int m = a1 ? 1 : a[^2], k = a[^1], bk = b1 ? b[0] : b[^2], n = b1 ? 1 : b[^1];
        if (k != bk) throw ctx.Error($"inner dimensions do not match: a has shape {ShapeUtil.Format(a)} and b has shape {ShapeUtil.Format(b)}");
        var aBatch = a1 ? [] : a[..^2];
        var bBatch = b1 ? [] : b[..^2];
        var batch = ShapeUtil.TryBroadcast(aBatch, bBatch) ?? throw ctx.Error($"batch dimensions of a {ShapeUtil.Format(a)} and b {ShapeUtil.Format(b)} do not broadcast");
        if (batch.Length > Broadcast.MaxRank) throw ctx.Error($"rank {batch.Length} is above the supported {Broadcast.MaxRank}");
        var outShape = new List<int>(batch);
        if (!a1) outShape.Add(m);
        if (!b1) outShape.Add(n);

        if (ctx.HasInput(_aZero))
        {
            if (ctx.InputType(_aZero) != aType) throw ctx.Error($"a_zero_point has type {ctx.InputType(_aZero).OnnxName()} but a has type {aType.OnnxName()}");
            CheckParam(ctx, _aZero, "a_zero_point", m, true, batch);
        }
        if (ctx.HasInput(_bZero))
        {
            if (ctx.InputType(_bZero) != bType) throw ctx.Error($"b_zero_point has type {ctx.InputType(_bZero).OnnxName()} but b has type {bType.OnnxName()}");
            CheckParam(ctx, _bZero, "b_zero_point", n, false, batch);
        }
        PrepackB(ctx, aType, bType, k, n);
        if (!_qlinear)
        {
            ctx.SetOutput(0, DataType.Int32, outShape.ToArray());
            return;
        }
        ctx.ExpectType(_aScale, DataType.Float32);
        ctx.ExpectType(_bScale, DataType.Float32);
        ctx.ExpectType(6, DataType.Float32);
        CheckParam(ctx, _aScale, "a_scale", m, true, batch);
        CheckParam(ctx, _bScale, "b_scale", n, false, batch);
        if (!ShapeUtil.SameShape(ctx.InputShape(_aScale), ctx.InputShape(_aZero)) && ShapeUtil.Size(ctx.InputShape(_aScale)) != ShapeUtil.Size(ctx.InputShape(_aZero)))
            throw ctx.Error($"a_scale shape {ShapeUtil.Format(ctx.InputShape(_aScale))} differs from a_zero_point shape {ShapeUtil.Format(ctx.InputShape(_aZero))}");
        if (!ShapeUtil.SameShape(ctx.InputShape(_bScale), ctx.InputShape(_bZero)) && ShapeUtil.Size(ctx.InputShape(_bScale)) != ShapeUtil.Size(ctx.InputShape(_bZero)))
            throw ctx.Error($"b_scale shape {ShapeUtil.Format(ctx.InputShape(_bScale))} differs from b_zero_point shape {ShapeUtil.Format(ctx.InputShape(_bZero))}");
        if (ShapeUtil.Size(ctx.InputShape(6)) != 1) throw ctx.Error($"y_scale must be a scalar, it has shape {ShapeUtil.Format(ctx.InputShape(6))}");
        var yType = ctx.ExpectType(7, DataType.UInt8, DataType.Int8);
        if (ShapeUtil.Size(ctx.InputShape(7)) != 1) throw ctx.Error($"y_zero_point must be a scalar, it has shape {ShapeUtil.Format(ctx.InputShape(7))}");
        ctx.SetOutput(0, yType, outShape.ToArray());
        _rowPlan = PlanRow(ctx, aType, bType, yType, a, b, m, k, n);
    }

    /// <summary>The <see cref="RowPlan"/> of this node, or null: one row (a of shape [k] or [1, k]), B a constant [k, n] packed for the wide route, every parameter a constant scalar, k a multiple of 4 and a of the other signedness than b.</summary>
    private RowPlan? PlanRow(InferContext ctx, DataType aType, DataType bType, DataType yType, int[] aShape, int[] bShape, int m, int k, int n)
    {
        if (!_packedWide || _packedB is null || m != 1 || aShape.Length > 2 || bShape.Length != 2 || (k & 3) != 0) return null;
        var scalars = new Tensor?[8];
        foreach (int i in new[] { _aScale, _aZero, _bScale, _bZero, 6, 7 })
        {
            if (!ctx.HasInput(i)) continue;
            var t = ctx.InputValue(i);
            if (t is null || t.Length != 1) return null;
            scalars[i] = t;
        }
        if (scalars[_aScale] is null || scalars[_bScale] is null || scalars[6] is null || scalars[7] is null) return null;
        bool aSigned = aType == DataType.Int8, bSigned = bType == DataType.Int8;
        FastIntGemm.Plan(aSigned, bSigned, out bool flip, out bool aUnsigned, out int shift);
        if (flip) return null;
        // the same float expression as RunFast's, so the same multiplier
        float mult = scalars[_aScale]!.ReadOnlySpan<float>()[0] * scalars[_bScale]!.ReadOnlySpan<float>()[0] / scalars[6]!.ReadOnlySpan<float>()[0];
        if (!float.IsFinite(mult)) return null;
        int za = (scalars[_aZero] is { } az ? QuantMath.ReadInt(az, 0) : 0) + shift, zb = scalars[_bZero] is { } bz ? QuantMath.ReadInt(bz, 0) : 0;
        var colAdj = new int[n];
        for (int j = 0; j < n; j++) colAdj[j] = _packedColSums![j] - k * zb;
        return new RowPlan
        {
            K = k, N = n, Zb = zb, YZero = QuantMath.ReadInt(scalars[7]!, 0), ASigned = aSigned, AUnsigned = aUnsigned,
            YSigned = yType == DataType.Int8, Mult = [mult], Za = [za], ColAdj = colAdj,
        };
    }

    /// <summary>Runs the node by its <see cref="RowPlan"/> when it has one and still applies (same wide route, B the packed constant); false otherwise.</summary>
    private bool TryRunRow(RunContext ctx, Tensor at, Tensor bt)
    {
        if (_rowPlan is not { } p || !PlanRows || !Wide(_packedPairsFit) || !ReferenceEquals(_packedSrc, bt.Buffer) || _packedSrcOffset != bt.ByteOffset
            || _packedSrcLength != bt.Length || at.Length != p.K || (at.Type == DataType.Int8) != p.ASigned) return false;
        var yt = ctx.Output(0);
        var a = at.Buffer.AsSpan(at.ByteOffset, p.K);
        int rowSum = p.Zb == 0 ? 0 : p.ASigned ? SumSigned(a) : SumUnsigned(a);
        p.RowInit[0] = -p.Zb * rowSum;
        var e = new WideIntGemm.Epilogue(p.RowInit, p.Mult, p.Za[0] == 0 ? default : p.Za, p.ColAdj, p.YZero, p.YSigned,
            yt.Buffer.AsSpan(yt.ByteOffset, p.N), p.N);
        WideIntGemm.MultiplyRowRequantize(p.N, p.K, a, p.AUnsigned, _packedB.AsSpan(0, WideIntGemm.PackedBSize(p.K, p.N)), e);
        return true;
    }

    /// <summary>Packs a constant b for the fast route when a is not constant (the node runs many times).</summary>
    private void PrepackB(InferContext ctx, DataType aType, DataType bType, int k, int n)
    {
        _packedSrc = null;
        _packedB = null;
        _packedColSums = null;
        var bv = ctx.InputValue(_b);
        if (bv is null || ctx.InputValue(_a) is not null) return;
        int mats = k * n == 0 ? 0 : bv.Length / (k * n);
        var bb = bv.Buffer.AsSpan(bv.ByteOffset, bv.Length);
        _packedPairsFit = aType == DataType.UInt8 && bType == DataType.Int8;
        for (int i = 0; i < mats && _packedPairsFit; i++) _packedPairsFit = FastIntGemm.ColumnPairsFitInt16(bb.Slice(i * k * n, k * n), k, n, n);
        bool wide = Wide(_packedPairsFit);
        int per = wide ? WideIntGemm.PackedBSize(k, n) : FastIntGemm.PackedBSize(k, n);
        var packed = new byte[per * mats];
        var sums = new int[n * mats];
        for (int i = 0; i < mats; i++)
        {
            if (wide) WideIntGemm.PackB(bb.Slice(i * k * n, k * n), k, n, n, bType == DataType.Int8, packed.AsSpan(i * per, per), sums.AsSpan(i * n, n));
            else FastIntGemm.PackB(bb.Slice(i * k * n, k * n), k, n, n, bType == DataType.Int8, packed.AsSpan(i * per, per), sums.AsSpan(i * n, n));
        }
        _packedWide = wide;
        _packedB = packed;
        _packedColSums = sums;
        _packedSrc = bv.Buffer;
        _packedSrcOffset = bv.ByteOffset;
        _packedSrcLength = bv.Length;
        _packedAType = aType;
        _packedBType = bType;
    }

    /// <summary>
    /// QLinearMatMul on this thread takes <see cref="WideIntGemm"/> (per-tensor parameters; see <see cref="RunWide"/>)
    /// for a B whose k-pairs are <paramref name="pairsFit"/>: without VNNI the wide kernels emulate the dot product,
    /// which is exact only for such a B (<see cref="ByteDot"/>).
    /// </summary>
    private bool Wide(bool pairsFit) => _qlinear && FastIntGemm.Active == IntGemmPath.AvxVnniWide && (ByteDot.Native || pairsFit);

    /// <summary>A parameter is a scalar, a vector over rows of a (or columns of b), or [..., M, 1] (or [..., 1, N]) per batch.</summary>
    private static void CheckParam(InferContext ctx, int input, string name, int len, bool perRow, int[] batch)
    {
        var s = ctx.InputShape(input);
        if (ShapeUtil.Size(s) == 1) return;
        if (s.Length == 1 && s[0] == len) return;
        if (s.Length >= 2 && (perRow ? s[^1] == 1 && s[^2] == len : s[^2] == 1 && s[^1] == len))
        {
            var pb = s[..^2];
            var r = ShapeUtil.TryBroadcast(pb, batch);
            if (r is not null && r.Length == batch.Length && ShapeUtil.SameShape(r, batch)) return;
        }
        string want = perRow ? $"[{len}] or [..., {len}, 1] per row" : $"[{len}] or [..., 1, {len}] per column";
        throw ctx.Error($"{name} must be a scalar or have shape {want}, it has shape {ShapeUtil.Format(s)}");
    }

    public override void Run(RunContext ctx)
    {
        var a = ctx.Input(_a);
        var b = ctx.Input(_b);
        if (!FastIntGemm.UseReference)
        {
            if (!TryRunRow(ctx, a, b)) RunFast(ctx, a, b);
            return;
        }
        switch (a.Type, b.Type)
        {
            case (DataType.UInt8, DataType.UInt8): Run<byte, byte>(ctx, a, b); break;
            case (DataType.UInt8, DataType.Int8): Run<byte, sbyte>(ctx, a, b); break;
            case (DataType.Int8, DataType.UInt8): Run<sbyte, byte>(ctx, a, b); break;
            default: Run<sbyte, sbyte>(ctx, a, b); break;
        }
    }

    /// <summary>Per-batch offsets (in units of matrices / parameter rows) of a tensor whose last two dims are the matrix.</summary>
    private static Span<int> BatchOffsets(RunContext ctx, int[] shape, bool isMatrixRank1, ReadOnlySpan<int> outBatch, int batches, int slot)
    {
        var offs = ctx.Scratch<int>(batches, slot);
        if (isMatrixRank1) offs.Clear();
        else Broadcast.Offsets(shape.AsSpan(0, shape.Length - 2), outBatch, offs);
        return offs;
    }

    private void Run<TA, TB>(RunContext ctx, Tensor at, Tensor bt)
        where TA : unmanaged, INumberBase<TA>
        where TB : unmanaged, INumberBase<TB>
    {
        var yt = ctx.Output(0);
        bool a1 = at.Rank == 1, b1 = bt.Rank == 1;
        int m = a1 ? 1 : at.Shape[^2], k = at.Shape[^1], n = b1 ? 1 : bt.Shape[^1];
        int batchRank = yt.Rank - (a1 ? 0 : 1) - (b1 ? 0 : 1);
        ReadOnlySpan<int> outBatch = yt.Shape.AsSpan(0, batchRank);
        int batches = ShapeUtil.Size(outBatch);
        var aOff = BatchOffsets(ctx, at.Shape, a1, outBatch, batches, 3);
        var bOff = BatchOffsets(ctx, bt.Shape, b1, outBatch, batches, 4);

        // parameters: the zero point (or for QLinearMatMul the scale, which has the same shape) decides the layout
        var azt = ctx.OptionalInput(_aZero);
        var bzt = ctx.OptionalInput(_bZero);
        var aParamShape = _qlinear ? ctx.Input(_aScale).Shape : azt?.Shape ?? [];
        var bParamShape = _qlinear ? ctx.Input(_bScale).Shape : bzt?.Shape ?? [];
        int aPLen = ShapeUtil.Size(aParamShape) == 1 ? 1 : m;
        int bPLen = ShapeUtil.Size(bParamShape) == 1 ? 1 : n;
        bool aPBatched = aPLen > 1 && aParamShape.Length >= 2;
        bool bPBatched = bPLen > 1 && bParamShape.Length >= 2;
        var apOff = BatchOffsets(ctx, aParamShape, !aPBatched, outBatch, batches, 5);
        var bpOff = BatchOffsets(ctx, bParamShape, !bPBatched, outBatch, batches, 6);
        var aZero = ctx.Scratch<int>(aPLen, 1);
        var bZero = ctx.Scratch<int>(bPLen, 2);

        var a = at.ReadOnlySpan<TA>();
        var b = bt.ReadOnlySpan<TB>();
        int mn = m * n;
        Span<int> acc = _qlinear ? ctx.Scratch<int>(mn, 0) : default;
        for (int bi = 0; bi < batches; bi++)
        {
            int aParamOffset = apOff[bi] * aPLen, bParamOffset = bpOff[bi] * bPLen;
            QuantMath.ReadInts(azt, aZero.Length == 1 ? 0 : aParamOffset, aZero);
            QuantMath.ReadInts(bzt, bZero.Length == 1 ? 0 : bParamOffset, bZero);
            var aMat = a.Slice(aOff[bi] * m * k, m * k);
            var bMat = b.Slice(bOff[bi] * k * n, k * n);
            if (!_qlinear)
            {
                IntGemm.Multiply(m, n, k, aMat, k, aZero, bMat, n, bZero, yt.Span<int>().Slice(bi * mn, mn), n);
                continue;
            }
            IntGemm.Multiply(m, n, k, aMat, k, aZero, bMat, n, bZero, acc, n);
            var aS = ctx.Input(_aScale).ReadOnlySpan<float>();
            var bS = ctx.Input(_bScale).ReadOnlySpan<float>();
            if (aPLen > 1) aS = aS.Slice(aParamOffset, m);
            if (bPLen > 1) bS = bS.Slice(bParamOffset, n);
            float yS = ctx.Input(6).ReadOnlySpan<float>()[0];
            int yZero = QuantMath.ReadInt(ctx.Input(7), 0);
            if (yt.Type == DataType.UInt8) Requantize(acc, yt.Span<byte>().Slice(bi * mn, mn), m, n, aS, bS, yS, yZero);
            else Requantize(acc, yt.Span<sbyte>().Slice(bi * mn, mn), m, n, aS, bS, yS, yZero);
        }
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    private void RunFast(RunContext ctx, Tensor at, Tensor bt)
    {
        var yt = ctx.Output(0);
        bool a1 = at.Rank == 1, b1 = bt.Rank == 1;
        int m = a1 ? 1 : at.Shape[^2], k = at.Shape[^1], n = b1 ? 1 : bt.Shape[^1];
        int batchRank = yt.Rank - (a1 ? 0 : 1) - (b1 ? 0 : 1);
        ReadOnlySpan<int> outBatch = yt.Shape.AsSpan(0, batchRank);
        int batches = ShapeUtil.Size(outBatch);
        var aOff = BatchOffsets(ctx, at.Shape, a1, outBatch, batches, 3);
        var bOff = BatchOffsets(ctx, bt.Shape, b1, outBatch, batches, 4);

        var azt = ctx.OptionalInput(_aZero);
        var bzt = ctx.OptionalInput(_bZero);
        var aParamShape = _qlinear ? ctx.Input(_aScale).Shape : azt?.Shape ?? [];
        var bParamShape = _qlinear ? ctx.Input(_bScale).Shape : bzt?.Shape ?? [];
        int aPLen = ShapeUtil.Size(aParamShape) == 1 ? 1 : m;
        int bPLen = ShapeUtil.Size(bParamShape) == 1 ? 1 : n;
        bool aPBatched = aPLen > 1 && aParamShape.Length >= 2;
        bool bPBatched = bPLen > 1 && bParamShape.Length >= 2;
        var apOff = BatchOffsets(ctx, aParamShape, !aPBatched, outBatch, batches, 5);
        var bpOff = BatchOffsets(ctx, bParamShape, !bPBatched, outBatch, batches, 6);

        bool aSigned = at.Type == DataType.Int8, bSigned = bt.Type == DataType.Int8;
        FastIntGemm.Plan(aSigned, bSigned, out bool flip, out bool aUnsigned, out int shift);
        bool bMatches = _packedB is not null && ReferenceEquals(_packedSrc, bt.Buffer) && _packedSrcOffset == bt.ByteOffset
            && _packedSrcLength == bt.Length && _packedAType == at.Type && _packedBType == bt.Type;
        bool wide = Wide(bMatches && _packedPairsFit) && aPLen == 1 && bPLen == 1;
        bool prepacked = bMatches && _packedWide == wide;
        if (wide)
        {
            float mult = ctx.Input(_aScale).ReadOnlySpan<float>()[0] * ctx.Input(_bScale).ReadOnlySpan<float>()[0] / ctx.Input(6).ReadOnlySpan<float>()[0];
            if (float.IsFinite(mult))
            {
                RunWide(ctx, at, bt, m, k, n, batches, aOff, bOff, azt, bzt, flip, aUnsigned, shift, prepacked, mult);
                return;
            }
            prepacked &= !_packedWide;
        }

        // ints: [aZero | bZero | row sums | column sums | work]; bytes: [packed a | packed b]
        int workInts = FastIntGemm.WorkInts(n);
        var ints = ctx.Scratch<int>(aPLen + bPLen + m + n + workInts, 1);
        var aZero = ints.Slice(0, aPLen);
        var bZero = ints.Slice(aPLen, bPLen);
        var rowSums = ints.Slice(aPLen + bPLen, m);
        var colSums = ints.Slice(aPLen + bPLen + m, n);
        var work = ints.Slice(aPLen + bPLen + m + n, workInts);
        int paSize = FastIntGemm.PackedASize(m, k), pbSize = FastIntGemm.PackedBSize(k, n);
        var bytes = ctx.Scratch<byte>(paSize + (prepacked ? 0 : pbSize), 7);
        var aPacked = bytes.Slice(0, paSize);
        var bPackedRun = bytes.Slice(paSize);

        var a = at.Buffer.AsSpan(at.ByteOffset, at.Length);
        var b = bt.Buffer.AsSpan(bt.ByteOffset, bt.Length);
        int mn = m * n;
        Span<int> acc = _qlinear ? ctx.Scratch<int>(mn, 0) : default;
        Span<float> colMult = _qlinear && bPLen > 1 ? ctx.Scratch<float>(n, 2) : default;
        for (int bi = 0; bi < batches; bi++)
        {
            int aParamOffset = apOff[bi] * aPLen, bParamOffset = bpOff[bi] * bPLen;
            QuantMath.ReadInts(azt, aZero.Length == 1 ? 0 : aParamOffset, aZero);
            QuantMath.ReadInts(bzt, bZero.Length == 1 ? 0 : bParamOffset, bZero);
            for (int i = 0; i < aZero.Length; i++) aZero[i] += shift;
            FastIntGemm.PackA(a.Slice(aOff[bi] * m * k, m * k), m, k, k, flip, aSigned ^ flip, aPacked, rowSums);
            ReadOnlySpan<byte> bPacked;
            ReadOnlySpan<int> cs;
            if (prepacked)
            {
                bPacked = _packedB.AsSpan(bOff[bi] * pbSize, pbSize);
                cs = _packedColSums.AsSpan(bOff[bi] * n, n);
            }
            else
            {
                FastIntGemm.PackB(b.Slice(bOff[bi] * k * n, k * n), k, n, n, bSigned, bPackedRun, colSums);
                bPacked = bPackedRun;
                cs = colSums;
            }
            Span<int> c = _qlinear ? acc : yt.Span<int>().Slice(bi * mn, mn);
            FastIntGemm.Multiply(m, n, k, aPacked, rowSums, aZero, aUnsigned, bPacked, cs, bZero, work, c, n, prepacked && _packedPairsFit);
            if (!_qlinear) continue;
            var aS = ctx.Input(_aScale).ReadOnlySpan<float>();
            var bS = ctx.Input(_bScale).ReadOnlySpan<float>();
            if (aPLen > 1) aS = aS.Slice(aParamOffset, m);
            if (bPLen > 1) bS = bS.Slice(bParamOffset, n);
            float yS = ctx.Input(6).ReadOnlySpan<float>()[0];
            int yZero = QuantMath.ReadInt(ctx.Input(7), 0);
            for (int i = 0; i < m; i++)
            {
                float asv = aS[aS.Length == 1 ? 0 : i];
                var ar = acc.Slice(i * n, n);
                int o = bi * mn + i * n;
                if (bS.Length == 1)
                {
                    float mult = asv * bS[0] / yS;
                    if (yt.Type == DataType.UInt8) IntRequantize.Row(ar, 0, mult, yZero, yt.Span<byte>().Slice(o, n));
                    else IntRequantize.Row(ar, 0, mult, yZero, yt.Span<sbyte>().Slice(o, n));
                }
                else
                {
                    for (int j = 0; j < n; j++) colMult[j] = asv * bS[j] / yS;
                    if (yt.Type == DataType.UInt8) IntRequantize.Row<byte>(ar, colMult, yZero, yt.Span<byte>().Slice(o, n));
                    else IntRequantize.Row<sbyte>(ar, colMult, yZero, yt.Span<sbyte>().Slice(o, n));
                }
            }
        }
    }

    /// <summary>
    /// QLinearMatMul with per-tensor parameters through <see cref="WideIntGemm"/>: a (the rows, packed per run) is the
    /// broadcast operand, b (packed in 24-column panels, once at planning when constant) the vector operand; the
    /// zero-point terms are −zb·Σa per row (the accumulators' start) and −za·(Σb − K·zb) per column.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    private void RunWide(RunContext ctx, Tensor at, Tensor bt, int m, int k, int n, int batches, Span<int> aOff, Span<int> bOff,
        Tensor? azt, Tensor? bzt, bool flip, bool aUnsigned, int shift, bool prepacked, float mult)
    {
        bool aSigned = at.Type == DataType.Int8, bSigned = bt.Type == DataType.Int8;
        int za = (azt is null ? 0 : QuantMath.ReadInt(azt, 0)) + shift, zb = bzt is null ? 0 : QuantMath.ReadInt(bzt, 0);
        var yt = ctx.Output(0);
        // one row of A against B of the other signedness (a vector times a weight matrix): A is read as it is, unpacked
        bool rawRow = m == 1 && !flip && (k & 3) == 0;
        int paSize = rawRow ? 0 : FastIntGemm.PackedASize(m, k), pbSize = WideIntGemm.PackedBSize(k, n);
        var bytes = ctx.Scratch<byte>(paSize + (prepacked ? 0 : pbSize), 7);
        var aPacked = bytes.Slice(0, paSize);
        var bPackedRun = bytes.Slice(paSize);
        // ints: [row sums | row constants | row za | column sums | column adjustments]
        var ints = ctx.Scratch<int>(3 * m + 2 * n, 1);
        var rowSums = ints.Slice(0, m);
        var rowInit = ints.Slice(m, m);
        var rowZa = ints.Slice(2 * m, m);
        var colSums = ints.Slice(3 * m, n);
        var colAdj = ints.Slice(3 * m + n, n);
        var rowMult = ctx.Scratch<float>(m, 2);
        rowMult.Fill(mult);
        rowZa.Fill(za);
        var a = at.Buffer.AsSpan(at.ByteOffset, at.Length);
        var b = bt.Buffer.AsSpan(bt.ByteOffset, bt.Length);
        var y = yt.Buffer.AsSpan(yt.ByteOffset, yt.Length);
        int yZero = QuantMath.ReadInt(ctx.Input(7), 0);
        for (int bi = 0; bi < batches; bi++)
        {
            var aMat = a.Slice(aOff[bi] * m * k, m * k);
            if (!rawRow) FastIntGemm.PackA(aMat, m, k, k, flip, aSigned ^ flip, aPacked, rowSums);
            else if (zb != 0) rowSums[0] = aSigned ? SumSigned(aMat) : SumUnsigned(aMat);
            else rowSums[0] = 0;
            ReadOnlySpan<byte> bPacked;
            ReadOnlySpan<int> cs;
            if (prepacked)
            {
                bPacked = _packedB.AsSpan(bOff[bi] * pbSize, pbSize);
                cs = _packedColSums.AsSpan(bOff[bi] * n, n);
            }
            else
            {
                WideIntGemm.PackB(b.Slice(bOff[bi] * k * n, k * n), k, n, n, bSigned, bPackedRun, colSums);
                bPacked = bPackedRun;
                cs = colSums;
            }
            for (int i = 0; i < m; i++) rowInit[i] = -zb * rowSums[i];
            for (int j = 0; j < n; j++) colAdj[j] = cs[j] - k * zb;
            var e = new WideIntGemm.Epilogue(rowInit, rowMult, za == 0 ? default : rowZa, colAdj, yZero, yt.Type == DataType.Int8, y.Slice(bi * m * n, m * n), n);
            if (rawRow) WideIntGemm.MultiplyRowRequantize(n, k, aMat, aUnsigned, bPacked, e);
            else WideIntGemm.MultiplyRequantize(m, n, k, aPacked, aUnsigned, bPacked, e);
        }
    }

    private static int SumUnsigned(ReadOnlySpan<byte> v)
    {
        int s = 0;
        foreach (byte b in v) s += b;
        return s;
    }

    private static int SumSigned(ReadOnlySpan<byte> v)
    {
        int s = 0;
        foreach (byte b in v) s += (sbyte)b;
        return s;
    }

    private static void Requantize<TY>(ReadOnlySpan<int> acc, Span<TY> y, int m, int n, ReadOnlySpan<float> aS, ReadOnlySpan<float> bS, float yS, int yZero)
        where TY : unmanaged, INumberBase<TY>
    {
        var (min, max) = QuantMath.Range<TY>();
        for (int i = 0; i < m; i++)
        {
            float asv = aS[aS.Length == 1 ? 0 : i];
            var ar = acc.Slice(i * n, n);
            var yr = y.Slice(i * n, n);
            if (bS.Length == 1)
            {
                float mult = asv * bS[0] / yS;
                for (int j = 0; j < n; j++) yr[j] = QuantMath.FromInt<TY>(QuantMath.Requantize(ar[j], mult, yZero, min, max));
            }
            else
            {
                for (int j = 0; j < n; j++) yr[j] = QuantMath.FromInt<TY>(QuantMath.Requantize(ar[j], asv * bS[j] / yS, yZero, min, max));
            }
        }
    }
}
