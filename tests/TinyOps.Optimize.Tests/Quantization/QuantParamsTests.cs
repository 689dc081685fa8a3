using TinyOps.Optimize.Quantization;
using Xunit;

namespace TinyOps.Optimize.Tests.Quantization;

public sealed class QuantParamsTests
{
    [Fact]
    public void UInt8RangeIncludesZeroExactly()
    {
        var p = QuantParams.ForUInt8(new TensorRange(-1f, 3f));
        Assert.Equal(4f / 255f, p.Scale, 6);
        Assert.Equal(64, p.ZeroPoint); // round(1 / (4/255)) = round(63.75)
        Assert.Equal(0, QuantParams.ForUInt8(new TensorRange(0.5f, 6f)).ZeroPoint); // [0, 6] after extension
        Assert.Equal(255, QuantParams.ForUInt8(new TensorRange(-5f, -1f)).ZeroPoint);
        Assert.Equal(new QuantParams(1f, 0), QuantParams.ForUInt8(new TensorRange(0f, 0f)));
    }

    [Fact]
    public void QuantizeRoundsHalfToEvenAndSaturates()
    {
        Assert.Equal(2, QuantParams.Quantize(2.5f, 1f, 0, -64, 64));
        Assert.Equal(4, QuantParams.Quantize(3.5f, 1f, 0, -64, 64));
        Assert.Equal(64, QuantParams.Quantize(1000f, 1f, 0, -64, 64));
        Assert.Equal(-64, QuantParams.Quantize(-1000f, 1f, 0, -64, 64));
    }

    [Fact]
    public void MinMaxCalibratorTracksTheRangeAndRejectsNaN()
    {
        var c = new MinMaxCalibrator();
        c.Observe("a", [1f, -2f, 3f]);
        c.Observe("a", [5f]);
        Assert.Equal(new TensorRange(-2f, 5f), c.Range("a"));
        Assert.True(c.Range("b").IsEmpty);
        Assert.Contains("'n'", Assert.Throws<QuantizationException>(() => c.Observe("n", [float.NaN])).Message);
    }

    /// <summary>The same values bench/int8-agreement.mjs computes (checked with node when the formula was written).</summary>
    [Fact]
    public void PseudoRandomInputsMatchTheJavaScriptFormula()
    {
        Assert.Equal(0f, PseudoRandomInputs.Value(0));
        Assert.Equal(0.5733975768089294f, PseudoRandomInputs.Value(1));
        Assert.Equal(0.237653911113739f, PseudoRandomInputs.Value(2));
        Assert.Equal(0.8108636736869812f, PseudoRandomInputs.Value(12345));
        Assert.Equal(0.9658060669898987f, PseudoRandomInputs.Value(150528 * 999 + 5));
        Assert.Equal(0.21386104822158813f, PseudoRandomInputs.Value(uint.MaxValue));
    }
}
