using TinyOps.Engine.Onnx;
using TinyOps.Optimize.Quantization;
using Xunit;

namespace TinyOps.Optimize.Tests.Quantization;

/// <summary>Percentile and Entropy thresholds on distributions whose answer is known, and their ranges on fmnist_cnn.</summary>
public sealed class CalibratorTests
{
    private static long[] Histogram(IEnumerable<double> values, double top, int bins)
    {
        var h = new long[bins];
        foreach (var v in values) h[(int)Math.Min(Math.Abs(v) / top * bins, bins - 1)]++;
        return h;
    }

    private static IEnumerable<double> Gaussian(int n, int seed)
    {
        var rng = new Random(seed);
        for (int i = 0; i < n; i++) yield return Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
    }

    [Fact]
    public void PercentileOfAUniformDistributionIsThatFraction()
    {
        var h = Histogram(Enumerable.Range(0, 100_000).Select(i => i / 100_000.0), 1, 2048);
        Assert.Equal(0.99, HistogramCalibrator.PercentileThreshold(h, 1, 99), 2);
        Assert.Equal(0.5, HistogramCalibrator.PercentileThreshold(h, 1, 50), 2);
        Assert.Equal(1, HistogramCalibrator.PercentileThreshold(h, 1, 100), 6);
    }

    [Fact]
    public void EntropyKeepsAUniformDistributionWhole()
    {
        var h = Histogram(Enumerable.Range(0, 200_000).Select(i => i / 200_000.0), 1, 2048);
        Assert.True(HistogramCalibrator.EntropyThreshold(h, 1, 128) > 0.95);
    }

    [Fact]
    public void EntropyClipsTheTailOfAGaussianWithOutliers()
    {
        // |N(0,1)| plus a few far outliers at 20: MinMax would spend the range on the outliers
        var values = Gaussian(200_000, 7).Concat(Enumerable.Repeat(20.0, 5)).ToList();
        var h = Histogram(values, 20, 2048);
        double t = HistogramCalibrator.EntropyThreshold(h, 20, 128);
        Assert.InRange(t, 2.5, 8);
        double p = HistogramCalibrator.PercentileThreshold(h, 20, 99.99);
        Assert.InRange(p, 3.3, 4.5);
    }

    [Fact]
    public void HistogramCalibratorClipsToTheThresholdAndIgnoresZeros()
    {
        var first = new Dictionary<string, TensorRange> { ["relu"] = new(0, 10), ["signed"] = new(-4, 10) };
        var cal = new HistogramCalibrator(first, (h, top) => HistogramCalibrator.PercentileThreshold(h, top, 50), 100);
        var relu = new float[1000];
        for (int i = 0; i < 500; i++) relu[i] = 0;
        for (int i = 500; i < 1000; i++) relu[i] = (i - 500) / 50f; // 0..10 uniformly
        cal.Observe("relu", relu);
        cal.Observe("signed", relu);
        var r = cal.Range("relu");
        Assert.Equal(0, r.Min);
        Assert.InRange(r.Max, 4.8, 5.2); // the median of the non-zero values, not of all (which would be ~0)
        Assert.Equal(-4, cal.Range("signed").Min); // clipped at -t only when t < 4
        Assert.True(cal.Range("never").IsEmpty);
        Assert.Throws<QuantizationException>(() => cal.Observe("relu", [float.NaN]));
    }

    [Theory]
    [InlineData(CalibrationMethod.Percentile)]
    [InlineData(CalibrationMethod.Entropy)]
    public void HistogramMethodsKeepFmnistCnnWithinOnePoint(CalibrationMethod method)
    {
        var model = OnnxLoader.LoadFile(TestPaths.FmnistCnn);
        var q = StaticQuantizer.Quantize(model, TestModels.Calibration(), new QuantizationOptions { Calibration = method });
        Assert.Contains(method.ToString(), q.Report.Calibration);
        var minmax = StaticQuantizer.Calibrate(GraphPreparation.Prepare(model), TestModels.Calibration(), new QuantizationOptions());
        // every range lies within the MinMax range
        foreach (var n in minmax.Calibrator.Names)
        {
            var a = q.Calibration.Range(n);
            var b = minmax.Range(n);
            Assert.True(a.Min >= b.Min && a.Max <= b.Max, $"{n}: {method} {a} outside MinMax {b}");
        }
        double acc = TestModels.Accuracy(OnnxLoader.Load(OnnxWriter.Write(q.Model)));
        Assert.True(acc >= 0.8733 - 0.01, $"{method}: accuracy {acc:P2}");
    }
}
