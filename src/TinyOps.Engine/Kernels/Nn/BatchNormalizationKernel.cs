using System.Numerics;
using TinyOps.Engine.Ir;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Kernels.Nn;

/// <summary>
/// BatchNormalization (opsets 1-15), float32. Inference: Y = (X - mean) / sqrt(var + epsilon) * scale + B per
/// channel (or per channel and position for the legacy spatial=0 form, whose parameters have C * D1 * ... Dn
/// elements). Training mode (training_mode=1 from opset 14; before it, a node that asks for the extra outputs)
/// normalizes with the batch statistics and outputs the updated running mean and variance (population variance);
/// for opsets before 14 the saved mean and variance outputs 3 and 4 are the batch statistics.
/// </summary>
internal sealed class BatchNormalizationKernel : Kernel
{
    private readonly float _epsilon;
    private readonly float _momentum;
    private readonly bool _spatial;
    private readonly bool _training;

    public BatchNormalizationKernel(Node node, int opset) : base(node, opset)
    {
        _epsilon = node.GetFloat("epsilon", 1e-5f);
        _momentum = node.GetFloat("momentum", 0.9f);
        _spatial = opset >= 9 || node.GetInt("spatial", 1) != 0;
        if (opset >= 14)
        {
            long mode = node.GetInt("training_mode", 0);
            if (mode is not (0 or 1)) throw Error($"training_mode must be 0 or 1, it is {mode}");
            _training = mode == 1;
            if (!_training && node.Outputs.Skip(1).Any(o => o.Length > 0))
                throw Error("outputs running_mean and running_var are only valid with training_mode=1");
        }
        else
        {
            // Before opset 14 the mode follows from the outputs: Y alone is inference (is_test=0 models that
            // only ask for Y are run in inference mode, as other runtimes do).
            _training = node.Outputs.Skip(1).Any(o => o.Length > 0);
        }
    }

    public override void Infer(InferContext ctx)
    {
        ctx.ExpectType(0, DataType.Float32);
        var x = ctx.InputShape(0);
        if (x.Length == 0) throw ctx.Error("input X must have rank 1 or more");
        int channels = x.Length >= 2 ? x[1] : 1;
        int inner = x.Length >= 2 ? ShapeUtil.SizeFrom(x, 2) : 1;
        string[] names = ["scale", "B", "input_mean", "input_var"];
        for (int i = 1; i <= 4; i++)
        {
            ctx.ExpectType(i, DataType.Float32);
            var p = ctx.InputShape(i);
            int size = ShapeUtil.Size(p);
            bool ok = size == channels || (!_spatial && size == channels * inner);
            if (!ok)
                throw ctx.Error($"{names[i - 1]} has shape {ShapeUtil.Format(p)}; expected [{channels}] for input of shape {ShapeUtil.Format(x)}");
        }
        if (_training && !_spatial && ShapeUtil.Size(ctx.InputShape(1)) != channels)
            throw ctx.Error("training mode with spatial=0 is not supported");
        ctx.SetOutput(0, DataType.Float32, x);
        for (int o = 1; o < 5; o++) ctx.SetOutput(o, DataType.Float32, ctx.InputShape(o <= 2 ? o + 2 : o));
    }

    public override void Run(RunContext ctx)
    {
        var xT = ctx.Input(0);
        var x = xT.ReadOnlySpan<float>();
        var scale = ctx.Input(1).ReadOnlySpan<float>();
        var bias = ctx.Input(2).ReadOnlySpan<float>();
        var mean = ctx.Input(3).ReadOnlySpan<float>();
        var variance = ctx.Input(4).ReadOnlySpan<float>();
        var y = ctx.Output(0).Span<float>();
        int batch = xT.Rank >= 2 ? xT.Shape[0] : xT.Length;
        int channels = xT.Rank >= 2 ? xT.Shape[1] : 1;
        int inner = xT.Rank >= 2 ? ShapeUtil.SizeFrom(xT.Shape, 2) : 1;
        int paramSize = scale.Length;
        bool perElement = paramSize != channels;

        if (!_training)
        {
            if (!perElement)
            {
                for (int n = 0; n < batch; n++)
                    for (int c = 0; c < channels; c++)
                    {
                        float a = scale[c] / MathF.Sqrt(variance[c] + _epsilon);
                        int off = (n * channels + c) * inner;
                        Normalize(x.Slice(off, inner), y.Slice(off, inner), mean[c], a, bias[c]);
                    }
            }
            else
            {
                int plane = channels * inner;
                for (int n = 0; n < batch; n++)
                    for (int i = 0; i < plane; i++)
                        y[n * plane + i] = (x[n * plane + i] - mean[i]) / MathF.Sqrt(variance[i] + _epsilon) * scale[i] + bias[i];
            }
            return;
        }

        // Training: per-channel batch mean and population variance (accumulated in double for accuracy).
        Span<float> stats = ctx.Scratch<float>(2 * channels);
        var curMean = stats.Slice(0, channels);
        var curVar = stats.Slice(channels, channels);
        long count = (long)batch * inner;
        for (int c = 0; c < channels; c++)
        {
            double sum = 0;
            for (int n = 0; n < batch; n++)
            {
                var seg = x.Slice((n * channels + c) * inner, inner);
                for (int i = 0; i < seg.Length; i++) sum += seg[i];
            }
            double mu = count > 0 ? sum / count : 0;
            double sq = 0;
            for (int n = 0; n < batch; n++)
            {
                var seg = x.Slice((n * channels + c) * inner, inner);
                for (int i = 0; i < seg.Length; i++) { double d = seg[i] - mu; sq += d * d; }
            }
            curMean[c] = (float)mu;
            curVar[c] = count > 0 ? (float)(sq / count) : 0f;
        }
        for (int n = 0; n < batch; n++)
            for (int c = 0; c < channels; c++)
            {
                float a = scale[c] / MathF.Sqrt(curVar[c] + _epsilon);
                int off = (n * channels + c) * inner;
                Normalize(x.Slice(off, inner), y.Slice(off, inner), curMean[c], a, bias[c]);
            }
        if (ctx.OutputCount > 1)
        {
            var rm = ctx.Output(1).Span<float>();
            for (int c = 0; c < channels; c++) rm[c] = mean[c] * _momentum + curMean[c] * (1 - _momentum);
        }
        if (ctx.OutputCount > 2)
        {
            var rv = ctx.Output(2).Span<float>();
            for (int c = 0; c < channels; c++) rv[c] = variance[c] * _momentum + curVar[c] * (1 - _momentum);
        }
        if (ctx.OutputCount > 3) curMean.CopyTo(ctx.Output(3).Span<float>());
        if (ctx.OutputCount > 4) curVar.CopyTo(ctx.Output(4).Span<float>());
    }

    /// <summary>y = (x - mean) * a + b.</summary>
    private static void Normalize(ReadOnlySpan<float> x, Span<float> y, float mean, float a, float b)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated && x.Length >= Vector<float>.Count)
        {
            var vm = new Vector<float>(mean);
            var va = new Vector<float>(a);
            var vb = new Vector<float>(b);
            for (; i + Vector<float>.Count <= x.Length; i += Vector<float>.Count)
                ((new Vector<float>(x.Slice(i)) - vm) * va + vb).CopyTo(y.Slice(i));
        }
        for (; i < x.Length; i++) y[i] = (x[i] - mean) * a + b;
    }
}
