namespace TinyOps.Optimize.Quantization;

/// <summary>How quantized operators are written to ONNX.</summary>
public enum QuantizationFormat
{
    /// <summary>QLinearConv / QLinearMatMul with QuantizeLinear / DequantizeLinear only at float boundaries.</summary>
    QOperator,
    /// <summary>Float operators reading QuantizeLinear → DequantizeLinear pairs and int8 weights through DequantizeLinear (see <see cref="QdqBuilder"/>).</summary>
    Qdq,
}

/// <summary>How activation ranges are chosen from the calibration data.</summary>
public enum CalibrationMethod
{
    /// <summary>The smallest and largest value seen (extended to include 0).</summary>
    MinMax,
    /// <summary>Clips |x| at a percentile of its calibration distribution (<see cref="QuantizationOptions.Percentile"/>).</summary>
    Percentile,
    /// <summary>Clips |x| where the KL divergence between the clipped and the quantized histogram is smallest.</summary>
    Entropy,
}

/// <summary>Settings of <see cref="StaticQuantizer"/>. The defaults are what `tinyops optimize --quantize static-int8` uses.</summary>
public sealed record QuantizationOptions
{
    public QuantizationFormat Format { get; init; } = QuantizationFormat.QOperator;

    public CalibrationMethod Calibration { get; init; } = CalibrationMethod.MinMax;

    /// <summary>Conv weights get one scale per output channel (QLinearConv allows it); MatMul weights are always per tensor.</summary>
    public bool PerChannel { get; init; } = true;

    /// <summary>
    /// Weights use 7 bits ([-64, 64]) instead of 8 ([-127, 127]). On x86 without VNNI the u8·s8 pair instruction
    /// (vpmaddubsw) saturates at int16 when two adjacent products are large; with 7-bit weights it cannot, so ONNX
    /// Runtime's AVX2 kernels and the engine's compute exact int32 sums and agree. Costs a little accuracy.
    /// </summary>
    public bool ReduceRange { get; init; } = true;

    /// <summary>Fold a following Relu or Clip(0, max) into the quantized operator's output range.</summary>
    public bool FoldActivations { get; init; } = true;

    /// <summary>
    /// Run MaxPool on the uint8 tensor (exact: max commutes with the monotonic dequantization, so the values are
    /// those of DequantizeLinear → MaxPool → QuantizeLinear with the same scale and zero point). On by default: the
    /// engine's MaxPool has a vectorized byte path, and the pool's output stays quantized for what follows
    /// (a Flatten runs on uint8 too). Needs opset 12 (MaxPool on uint8); below it MaxPool stays float.
    /// </summary>
    public bool QuantizedMaxPool { get; init; } = true;

    /// <summary>Percentile of |x| kept by <see cref="CalibrationMethod.Percentile"/> (default 99.99).</summary>
    public double Percentile { get; init; } = 99.99;

    /// <summary>Histogram bins of the Percentile and Entropy methods.</summary>
    public int HistogramBins { get; init; } = 2048;

    /// <summary>Quantization levels the Entropy method compares against (128, as TensorRT's calibrator).</summary>
    public int EntropyLevels { get; init; } = 128;

    /// <summary>Calibration images per engine run.</summary>
    public int CalibrationBatch { get; init; } = 16;

    /// <summary>Nodes (by name) to leave in float.</summary>
    public IReadOnlySet<string> ExcludeNodes { get; init; } = new HashSet<string>(StringComparer.Ordinal);
}
