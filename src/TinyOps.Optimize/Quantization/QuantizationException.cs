namespace TinyOps.Optimize.Quantization;

/// <summary>A model or calibration set cannot be quantized; the message says what, where and what to do.</summary>
public sealed class QuantizationException : Exception
{
    public QuantizationException(string message) : base(message) { }
    public QuantizationException(string message, Exception inner) : base(message, inner) { }
}
