namespace TinyOps.Optimize.Quantization;

/// <summary>
/// Collects statistics of named float activations over calibration batches and turns them into ranges.
/// MinMax is the first implementation; Percentile and Entropy (issue 5) fit the same shape.
/// </summary>
public interface ICalibrator
{
    /// <summary>Adds the values one activation took in one calibration run.</summary>
    void Observe(string name, ReadOnlySpan<float> values);

    /// <summary>The range chosen for an activation, or <see cref="TensorRange.Empty"/> when it was never observed.</summary>
    TensorRange Range(string name);

    /// <summary>Names of every observed activation.</summary>
    IEnumerable<string> Names { get; }
}
