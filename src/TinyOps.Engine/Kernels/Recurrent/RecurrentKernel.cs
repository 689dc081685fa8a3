using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using TinyOps.Engine.Ir;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Kernels.Recurrent;

/// <summary>
/// Shared attribute handling, shape inference and helpers of LSTM and GRU. Inputs: X, W, R, B, sequence_lens,
/// initial_h (and for LSTM initial_c, P); outputs: Y, Y_h (and for LSTM Y_c).
/// </summary>
internal abstract class RecurrentKernel : Kernel
{
    protected const int InX = 0, InW = 1, InR = 2, InB = 3, InSeqLens = 4, InInitialH = 5;

    protected RecurrentKernel(Node node, int opset, int gates, string[] defaultActivations) : base(node, opset)
    {
        Gates = gates;
        string direction = node.GetString("direction", "forward");
        (Directions, Reverse) = direction switch
        {
            "forward" => (1, false),
            "reverse" => (1, true),
            "bidirectional" => (2, false),
            _ => throw Error($"'direction' must be forward, reverse or bidirectional, got '{direction}'"),
        };
        long hs = node.GetInt("hidden_size", -1);
        if (node.HasAttribute("hidden_size") && hs <= 0) throw Error($"'hidden_size' must be positive, got {hs}");
        HiddenSizeAttr = (int)Math.Min(hs, int.MaxValue);
        long layout = opset >= 14 ? node.GetInt("layout", 0) : 0;
        if (layout is not (0 or 1)) throw Error($"'layout' must be 0 or 1, got {layout}");
        BatchFirst = layout == 1;
        Clip = node.GetFloat("clip", 0f);
        if (node.HasAttribute("clip") && !(Clip > 0f)) throw Error($"'clip' must be positive, got {Clip}");
        Activations = RnnActivation.Parse(node, defaultActivations, Directions);
    }

    /// <summary>Number of gates (4 for LSTM, 3 for GRU).</summary>
    protected int Gates { get; }
    protected int Directions { get; }
    /// <summary>True when the only direction is reverse.</summary>
    protected bool Reverse { get; }
    protected int HiddenSizeAttr { get; }
    protected bool BatchFirst { get; }
    /// <summary>Clip threshold, or 0 for none.</summary>
    protected float Clip { get; }
    /// <summary>Activation functions, <c>Activations.Length / Directions</c> per direction.</summary>
    protected RnnActivation[] Activations { get; }

    /// <summary>Optional inputs with a [num_directions, batch, hidden] (or batch-first) state shape, after initial_h.</summary>
    protected virtual int StateInputCount => 1;

    /// <summary>Checks types and shapes of the operator-specific extra inputs (LSTM's P).</summary>
    protected virtual void InferExtra(InferContext ctx, int directions, int hidden) { }

    public override void Infer(InferContext ctx)
    {
        ctx.ExpectType(InX, DataType.Float32);
        ctx.ExpectType(InW, DataType.Float32);
        ctx.ExpectType(InR, DataType.Float32);
        var x = ctx.InputShape(InX);
        var w = ctx.InputShape(InW);
        var r = ctx.InputShape(InR);
        if (x.Length != 3) throw ctx.Error($"X must have rank 3, it has shape {ShapeUtil.Format(x)}");
        if (w.Length != 3) throw ctx.Error($"W must have rank 3, it has shape {ShapeUtil.Format(w)}");
        if (r.Length != 3) throw ctx.Error($"R must have rank 3, it has shape {ShapeUtil.Format(r)}");
        int seq = BatchFirst ? x[1] : x[0];
        int batch = BatchFirst ? x[0] : x[1];
        int input = x[2];
        int hidden = HiddenSizeAttr > 0 ? HiddenSizeAttr : r[2];
        int d = Directions;
        if (w[0] != d || w[1] != Gates * hidden || w[2] != input)
            throw ctx.Error($"W has shape {ShapeUtil.Format(w)}, expected [{d}, {Gates * hidden}, {input}] (num_directions, {Gates}*hidden_size, input_size)");
        if (r[0] != d || r[1] != Gates * hidden || r[2] != hidden)
            throw ctx.Error($"R has shape {ShapeUtil.Format(r)}, expected [{d}, {Gates * hidden}, {hidden}] (num_directions, {Gates}*hidden_size, hidden_size)");
        if (ctx.HasInput(InB))
        {
            ctx.ExpectType(InB, DataType.Float32);
            var b = ctx.InputShape(InB);
            if (b.Length != 2 || b[0] != d || b[1] != 2 * Gates * hidden)
                throw ctx.Error($"B has shape {ShapeUtil.Format(b)}, expected [{d}, {2 * Gates * hidden}]");
        }
        if (ctx.HasInput(InSeqLens))
        {
            ctx.ExpectType(InSeqLens, DataType.Int32, DataType.Int64);
            var s = ctx.InputShape(InSeqLens);
            if (s.Length != 1 || s[0] != batch)
                throw ctx.Error($"sequence_lens has shape {ShapeUtil.Format(s)}, expected [{batch}]");
        }
        int[] stateShape = BatchFirst ? [batch, d, hidden] : [d, batch, hidden];
        for (int i = InInitialH; i < InInitialH + StateInputCount; i++)
        {
            if (!ctx.HasInput(i)) continue;
            ctx.ExpectType(i, DataType.Float32);
            var s = ctx.InputShape(i);
            if (!ShapeUtil.SameShape(s, stateShape))
                throw ctx.Error($"input {i} ('{Node.Inputs[i]}') has shape {ShapeUtil.Format(s)}, expected {ShapeUtil.Format(stateShape)}");
        }
        InferExtra(ctx, d, hidden);
        ctx.SetOutput(0, DataType.Float32, BatchFirst ? [batch, seq, d, hidden] : [seq, d, batch, hidden]);
        for (int i = 1; i < ctx.OutputCount; i++) ctx.SetOutput(i, DataType.Float32, stateShape);
    }

    /// <summary>Reads the sequence length of batch entry <paramref name="b"/>, validating it.</summary>
    protected int SequenceLength(Tensor? seqLens, int b, int seq)
    {
        if (seqLens is null) return seq;
        long len = seqLens.GetInt64(b);
        if (len < 0 || len > seq) throw Error($"sequence_lens[{b}] is {len}, outside [0, {seq}]");
        return (int)len;
    }

    /// <summary>
    /// dst[r, n] = bias[n] + sum_k a[r, k] * w[n, k] for rows × cols (w row-major [cols, k]). The innermost loop
    /// is a dot product over contiguous rows of both operands.
    /// </summary>
    protected static void MatMulTransB(ReadOnlySpan<float> a, int rows, int k, ReadOnlySpan<float> w, int cols, ReadOnlySpan<float> bias, Span<float> dst)
    {
        for (int r = 0; r < rows; r++)
        {
            var ar = a.Slice(r * k, k);
            var dr = dst.Slice(r * cols, cols);
            for (int n = 0; n < cols; n++)
                dr[n] = TensorPrimitives.Dot(ar, w.Slice(n * k, k));
            if (!bias.IsEmpty) TensorPrimitives.Add(dr, bias, dr);
        }
    }

    /// <summary>dst[n] += sum_k v[k] * w[n, k] for n in [0, cols).</summary>
    protected static void AddMatVec(ReadOnlySpan<float> v, ReadOnlySpan<float> w, Span<float> dst)
    {
        int k = v.Length;
        for (int n = 0; n < dst.Length; n++)
            dst[n] += TensorPrimitives.Dot(v, w.Slice(n * k, k));
    }

    /// <summary>Element offset of row (t, b) of X.</summary>
    protected int XRow(int t, int b, int seq, int batch) => BatchFirst ? b * seq + t : t * batch + b;

    /// <summary>Element offset of Y[t, dir, b, :] (or Y[b, t, dir, :] batch-first), in units of hidden.</summary>
    protected int YRow(int t, int dir, int b, int seq, int batch) =>
        BatchFirst ? (b * seq + t) * Directions + dir : (t * Directions + dir) * batch + b;

    /// <summary>Row of a state tensor (initial_h, Y_h, ...) for (dir, b), in units of hidden.</summary>
    protected int StateRow(int dir, int b, int batch) => BatchFirst ? b * Directions + dir : dir * batch + b;

    /// <summary>True when direction <paramref name="dir"/> runs backwards in time.</summary>
    protected bool IsReverse(int dir) => Reverse || dir == 1;
}
