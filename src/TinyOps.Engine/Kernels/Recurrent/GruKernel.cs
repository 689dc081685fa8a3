using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using TinyOps.Engine.Ir;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Kernels.Recurrent;

/// <summary>
/// GRU (opsets 1, 3, 7, 14, 22): gates z, r, h; optional B, sequence_lens, initial_h; activations f, g per
/// direction; clip; linear_before_reset (3+); layout (14+). fp32.
/// </summary>
internal sealed class GruKernel : RecurrentKernel
{
    private readonly bool _linearBeforeReset;

    public GruKernel(Node node, int opset) : base(node, opset, 3, ["Sigmoid", "Tanh"])
    {
        long lbr = node.GetInt("linear_before_reset", 0);
        _linearBeforeReset = lbr != 0;
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

        int seq = BatchFirst ? xT.Shape[1] : xT.Shape[0];
        int batch = BatchFirst ? xT.Shape[0] : xT.Shape[1];
        int input = xT.Shape[2];
        int hidden = rT.Shape[2];
        int g3 = 3 * hidden;
        int rows = seq * batch;

        bool wantY = ctx.OutputCount > 0 && Node.Outputs[0].Length > 0;
        bool wantYh = ctx.OutputCount > 1 && Node.Outputs[1].Length > 0;
        Span<float> y = wantY ? ctx.Output(0).Span<float>() : default;
        Span<float> yh = wantYh ? ctx.Output(1).Span<float>() : default;

        Span<float> xw = ctx.Scratch<float>(rows * g3, 0);
        Span<float> work = ctx.Scratch<float>(2 * g3 + 3 * hidden, 1);
        Span<float> bias = work.Slice(0, g3);
        Span<float> gates = work.Slice(g3, g3);
        Span<float> h = work.Slice(2 * g3, hidden);
        Span<float> tmp = work.Slice(2 * g3 + hidden, hidden);
        Span<float> rbh = work.Slice(2 * g3 + 2 * hidden, hidden);
        Span<float> gzr = gates.Slice(0, 2 * hidden);
        Span<float> gz = gates.Slice(0, hidden);
        Span<float> gr = gates.Slice(hidden, hidden);
        Span<float> gh = gates.Slice(2 * hidden, hidden);

        for (int dir = 0; dir < Directions; dir++)
        {
            bool reverse = IsReverse(dir);
            var wd = w.Slice(dir * g3 * input, g3 * input);
            var rd = r.Slice(dir * g3 * hidden, g3 * hidden);
            var rzr = rd.Slice(0, 2 * hidden * hidden);
            var rh = rd.Slice(2 * hidden * hidden, hidden * hidden);
            if (bT is not null)
            {
                var bd = bT.ReadOnlySpan<float>().Slice(dir * 2 * g3, 2 * g3);
                // Wb for every gate; Rb folded in too except Rbh with linear_before_reset (it sits inside r * (...)).
                TensorPrimitives.Add(bd.Slice(0, g3), bd.Slice(g3, g3), bias);
                bd.Slice(g3 + 2 * hidden, hidden).CopyTo(rbh);
                if (_linearBeforeReset) bd.Slice(2 * hidden, hidden).CopyTo(bias.Slice(2 * hidden, hidden));
            }
            else
            {
                bias.Clear();
                rbh.Clear();
            }
            MatMulTransB(x, rows, input, wd, g3, bias, xw);

            var fAct = Activations[dir * 2];
            var gAct = Activations[dir * 2 + 1];

            for (int b = 0; b < batch; b++)
            {
                int len = SequenceLength(seqLens, b, seq);
                int stateOff = StateRow(dir, b, batch) * hidden;
                if (h0T is not null) h0T.ReadOnlySpan<float>().Slice(stateOff, hidden).CopyTo(h);
                else h.Clear();

                for (int s = 0; s < len; s++)
                {
                    int t = reverse ? len - 1 - s : s;
                    xw.Slice(XRow(t, b, seq, batch) * g3, g3).CopyTo(gates);
                    AddMatVec(h, rzr, gzr);
                    fAct.Apply(gz, Clip);
                    fAct.Apply(gr, Clip);
                    if (_linearBeforeReset)
                    {
                        // h~ = g(Xt Wh^T + r * (Ht-1 Rh^T + Rbh) + Wbh)
                        rbh.CopyTo(tmp);
                        AddMatVec(h, rh, tmp);
                        TensorPrimitives.MultiplyAdd(gr, tmp, gh, gh);
                    }
                    else
                    {
                        // h~ = g(Xt Wh^T + (r * Ht-1) Rh^T + Rbh + Wbh)
                        TensorPrimitives.Multiply(gr, h, tmp);
                        AddMatVec(tmp, rh, gh);
                    }
                    gAct.Apply(gh, Clip);
                    // H = (1 - z) * h~ + z * Ht-1 = h~ + z * (Ht-1 - h~)
                    TensorPrimitives.Subtract(h, gh, tmp);
                    TensorPrimitives.MultiplyAdd(gz, tmp, gh, h);

                    if (wantY) h.CopyTo(y.Slice(YRow(t, dir, b, seq, batch) * hidden, hidden));
                }
                if (wantY)
                    for (int t = len; t < seq; t++) y.Slice(YRow(t, dir, b, seq, batch) * hidden, hidden).Clear();
                if (wantYh) h.CopyTo(yh.Slice(stateOff, hidden));
            }
        }
    }
}
