namespace TinyOps.Optimize.Quantization;

/// <summary>Scale and zero point of one quantized tensor (or channel): real = (q − ZeroPoint) · Scale.</summary>
public readonly record struct QuantParams(float Scale, int ZeroPoint)
{
    /// <summary>
    /// Asymmetric uint8 parameters for a float range (extended to include 0, so 0 is exact):
    /// scale = (max − min) / 255, zero point = round_half_even(−min / scale) in [0, 255]. A range of one point gets scale 1.
    /// </summary>
    public static QuantParams ForUInt8(TensorRange r)
    {
        float min = MathF.Min(r.IsEmpty ? 0 : r.Min, 0f), max = MathF.Max(r.IsEmpty ? 0 : r.Max, 0f);
        if (!float.IsFinite(min) || !float.IsFinite(max))
            throw new QuantizationException($"the calibrated range {r} is not finite");
        float scale = (float)(((double)max - min) / 255.0);
        if (!(scale > 0) || !float.IsNormal(scale)) return new QuantParams(1f, 0);
        int zp = (int)Math.Clamp(Math.Round(-min / (double)scale, MidpointRounding.ToEven), 0, 255);
        return new QuantParams(scale, zp);
    }

    /// <summary>Symmetric int8 parameters for values of largest magnitude <paramref name="maxAbs"/>: zero point 0, scale maxAbs / qmax.</summary>
    public static QuantParams SymmetricInt8(float maxAbs, int qmax)
    {
        float scale = maxAbs / qmax;
        if (!(scale > 0) || !float.IsNormal(scale)) return new QuantParams(1f, 0);
        return new QuantParams(scale, 0);
    }

    /// <summary>round_half_even(v / scale) + zero point, saturated to [qmin, qmax].</summary>
    public static int Quantize(float v, float scale, int zeroPoint, int qmin, int qmax)
    {
        double q = Math.Round(v / (double)scale, MidpointRounding.ToEven) + zeroPoint;
        return (int)Math.Clamp(q, qmin, qmax);
    }
}
