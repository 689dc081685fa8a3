namespace TinyOps.Optimize.Quantization;

/// <summary>Symmetric int8 weight quantization shared by the QOperator, QDQ and dynamic quantizers.</summary>
internal static class WeightQuantization
{
    /// <summary>
    /// int8 weights in [−qmax, qmax] with zero point 0: one scale per slice along <paramref name="axis"/> when
    /// <paramref name="perChannel"/>, else one for the whole tensor (scale = max |w| / qmax).
    /// </summary>
    public static (Engine.Tensors.Tensor Quantized, float[] Scales) Symmetric(Engine.Tensors.Tensor w, int axis, bool perChannel, int qmax)
    {
        var wf = w.ReadOnlySpan<float>();
        int channels = w.Shape[axis], inner = 1;
        for (int d = axis + 1; d < w.Rank; d++) inner *= w.Shape[d];
        var maxAbs = new float[perChannel ? channels : 1];
        for (int i = 0; i < wf.Length; i++)
        {
            int c = perChannel ? i / inner % channels : 0;
            maxAbs[c] = MathF.Max(maxAbs[c], MathF.Abs(wf[i]));
        }
        var scales = new float[maxAbs.Length];
        for (int c = 0; c < scales.Length; c++) scales[c] = QuantParams.SymmetricInt8(maxAbs[c], qmax).Scale;
        var q = new sbyte[wf.Length];
        for (int i = 0; i < wf.Length; i++)
            q[i] = (sbyte)QuantParams.Quantize(wf[i], scales[perChannel ? i / inner % channels : 0], 0, -qmax, qmax);
        return (Engine.Tensors.Tensor.FromArray(q, (int[])w.Shape.Clone()), scales);
    }
}
