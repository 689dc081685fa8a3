using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using TinyOps.Engine.Ir;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Kernels.Recurrent;

/// <summary>
/// LSTM (opsets 1, 7, 14, 22): gates i, o, f, c; optional B, sequence_lens, initial_h, initial_c, P (peepholes
/// i, o, f); activations f, g, h per direction; clip; input_forget; layout (14+). fp32.
/// </summary>
internal sealed class LstmKernel : RecurrentKernel
{
    private const int InInitialC = 6, InP = 7;
    private readonly bool _inputForget;

    public LstmKernel(Node node, int opset) : base(node, opset, 4, ["Sigmoid", "Tanh", "Tanh"])
    {
        long inputForget = node.GetInt("input_forget", 0);
        if (inputForget is not (0 or 1)) throw Error($"'input_forget' must be 0 or 1, got {inputForget}");
        _inputForget = inputForget == 1;
    }

    protected override int StateInputCount => 2;

    protected override void InferExtra(InferContext ctx, int directions, int hidden)
    {
        if (!ctx.HasInput(InP)) return;
        ctx.ExpectType(InP, DataType.Float32);
        var p = ctx.InputShape(InP);
        if (p.Length != 2 || p[0] != directions || p[1] != 3 * hidden)
            throw ctx.Error($"P has shape {ShapeUtil.Format(p)}, expected [{directions}, {3 * hidden}]");
    }

    public override void Run(RunContext ctx)
    {
        var xT = ctx.Input(InX);
        var rT = ctx.Input(InR);
        var x = xT.ReadOnlySpan<float>();
        var w = ctx.Input(InW).ReadOnlySpan<float>();
        var r = rT.ReadOnlySpan<float>();
        var bT = ctx.OptionalInput(InB);
        var seqLens = ctx.OptionalInput(InSeqLens);
        var h0T = ctx.OptionalInput(InInitialH);
        var c0T = ctx.OptionalInput(InInitialC);
        var pT = ctx.OptionalInput(InP);

        int seq = BatchFirst ? xT.Shape[1] : xT.Shape[0];
        int batch = BatchFirst ? xT.Shape[0] : xT.Shape[1];
        int input = xT.Shape[2];
        int hidden = rT.Shape[2];
        int g4 = 4 * hidden;
        int rows = seq * batch;

        bool wantY = ctx.OutputCount > 0 && Node.Outputs[0].Length > 0;
        bool wantYh = ctx.OutputCount > 1 && Node.Outputs[1].Length > 0;
        bool wantYc = ctx.OutputCount > 2 && Node.Outputs[2].Length > 0;
        Span<float> y = wantY ? ctx.Output(0).Span<float>() : default;
        Span<float> yh = wantYh ? ctx.Output(1).Span<float>() : default;
        Span<float> yc = wantYc ? ctx.Output(2).Span<float>() : default;

        Span<float> xw = ctx.Scratch<float>(rows * g4, 0);
        Span<float> work = ctx.Scratch<float>(2 * g4 + 3 * hidden, 1);
        Span<float> bias = work.Slice(0, g4);
        Span<float> gates = work.Slice(g4, g4);
        Span<float> h = work.Slice(2 * g4, hidden);
        Span<float> c = work.Slice(2 * g4 + hidden, hidden);
        Span<float> tmp = work.Slice(2 * g4 + 2 * hidden, hidden);
        Span<float> gi = gates.Slice(0, hidden);
        Span<float> go = gates.Slice(hidden, hidden);
        Span<float> gf = gates.Slice(2 * hidden, hidden);
        Span<float> gc = gates.Slice(3 * hidden, hidden);

        for (int dir = 0; dir < Directions; dir++)
        {
            bool reverse = IsReverse(dir);
            var wd = w.Slice(dir * g4 * input, g4 * input);
            var rd = r.Slice(dir * g4 * hidden, g4 * hidden);
            if (bT is not null)
            {
                var bd = bT.ReadOnlySpan<float>().Slice(dir * 2 * g4, 2 * g4);
                TensorPrimitives.Add(bd.Slice(0, g4), bd.Slice(g4, g4), bias);
            }
            else
            {
                bias.Clear();
            }
            MatMulTransB(x, rows, input, wd, g4, bias, xw);

            var fAct = Activations[dir * 3];
            var gAct = Activations[dir * 3 + 1];
            var hAct = Activations[dir * 3 + 2];
            ReadOnlySpan<float> pi = default, po = default, pf = default;
            if (pT is not null)
            {
                var pd = pT.ReadOnlySpan<float>().Slice(dir * 3 * hidden, 3 * hidden);
                pi = pd.Slice(0, hidden);
                po = pd.Slice(hidden, hidden);
                pf = pd.Slice(2 * hidden, hidden);
            }

            for (int b = 0; b < batch; b++)
            {
                int len = SequenceLength(seqLens, b, seq);
                int stateOff = StateRow(dir, b, batch) * hidden;
                if (h0T is not null) h0T.ReadOnlySpan<float>().Slice(stateOff, hidden).CopyTo(h);
                else h.Clear();
                if (c0T is not null) c0T.ReadOnlySpan<float>().Slice(stateOff, hidden).CopyTo(c);
                else c.Clear();

                for (int s = 0; s < len; s++)
                {
                    int t = reverse ? len - 1 - s : s;
                    xw.Slice(XRow(t, b, seq, batch) * g4, g4).CopyTo(gates);
                    AddMatVec(h, rd, gates);

                    if (!pi.IsEmpty) TensorPrimitives.MultiplyAdd(pi, c, gi, gi);
                    fAct.Apply(gi, Clip);
                    if (_inputForget)
                    {
                        TensorPrimitives.Subtract(1f, gi, gf);
                    }
                    else
                    {
                        if (!pf.IsEmpty) TensorPrimitives.MultiplyAdd(pf, c, gf, gf);
                        fAct.Apply(gf, Clip);
                    }
                    gAct.Apply(gc, Clip);
                    // C = f * C + i * c~
                    TensorPrimitives.Multiply(gf, c, c);
                    TensorPrimitives.MultiplyAdd(gi, gc, c, c);
                    if (!po.IsEmpty) TensorPrimitives.MultiplyAdd(po, c, go, go);
                    fAct.Apply(go, Clip);
                    c.CopyTo(tmp);
                    hAct.Apply(tmp, Clip);
                    TensorPrimitives.Multiply(go, tmp, h);

                    if (wantY) h.CopyTo(y.Slice(YRow(t, dir, b, seq, batch) * hidden, hidden));
                }
                if (wantY)
                    for (int t = len; t < seq; t++) y.Slice(YRow(t, dir, b, seq, batch) * hidden, hidden).Clear();
                if (wantYh) h.CopyTo(yh.Slice(stateOff, hidden));
                if (wantYc) c.CopyTo(yc.Slice(stateOff, hidden));
            }
        }
    }
}
