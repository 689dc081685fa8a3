namespace TinyOps.Optimize.Quantization;

/// <summary>What the quantizer did: which nodes became integer operators and which stayed in float.</summary>
public sealed class QuantizationReport
{
    public List<string> QuantizedNodes { get; } = [];
    public List<string> FoldedActivations { get; } = [];
    public List<string> QuantizedPassThrough { get; } = [];
    public List<string> FloatNodes { get; } = [];
    public int QuantizeNodes { get; set; }
    public int DequantizeNodes { get; set; }
    public List<string> Warnings { get; } = [];
    public string Calibration { get; set; } = "";

    public override string ToString() =>
        $"{QuantizedNodes.Count} nodes quantized ({FoldedActivations.Count} activations folded), {QuantizedPassThrough.Count} run on uint8 unchanged, "
        + $"{FloatNodes.Count} stay float; {QuantizeNodes} QuantizeLinear and {DequantizeNodes} DequantizeLinear at float boundaries";
}
