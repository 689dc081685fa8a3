using System.Numerics.Tensors;

namespace TinyOps.Optimize.Quantization;

/// <summary>Range = [smallest value seen, largest value seen] over all calibration runs.</summary>
public sealed class MinMaxCalibrator : ICalibrator
{
    private readonly Dictionary<string, TensorRange> _ranges = new(StringComparer.Ordinal);

    public void Observe(string name, ReadOnlySpan<float> values)
    {
        if (values.IsEmpty) return;
        var r = new TensorRange(TensorPrimitives.Min(values), TensorPrimitives.Max(values));
        if (float.IsNaN(r.Min) || float.IsNaN(r.Max))
            throw new QuantizationException($"activation '{name}' contains NaN during calibration; check the model and the calibration inputs");
        _ranges[name] = _ranges.TryGetValue(name, out var old) ? old.Union(r) : r;
    }

    public TensorRange Range(string name) => _ranges.TryGetValue(name, out var r) ? r : TensorRange.Empty;

    public IEnumerable<string> Names => _ranges.Keys;
}
