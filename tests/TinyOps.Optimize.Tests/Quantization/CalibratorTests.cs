using TinyOps.Engine.Data;
using TinyOps.Engine.Onnx;
using TinyOps.Optimize.Quantization;
using Xunit;
using Xunit.Abstractions;

namespace TinyOps.Optimize.Tests.Quantization;

/// <summary>Percentile and Entropy thresholds on distributions whose answer is known, and their ranges on fmnist_cnn.</summary>
public sealed class CalibratorTests(ITestOutputHelper output)
{
    [Fact]
    public void DiagnoseRanges()
    {
        var model = GraphPreparation.Prepare(OnnxLoader.LoadFile(TestPaths.FmnistCnn));
        var set = CalibrationSet.FromImages(FashionMnist.LoadTrain(), 500, "train");
        var mm = StaticQuantizer.Calibrate(model, set, new QuantizationOptions());
        var en = StaticQuantizer.Calibrate(model, set, new QuantizationOptions { Calibration = CalibrationMethod.Entropy });
        var pc = StaticQuantizer.Calibrate(model, set, new QuantizationOptions { Calibration = CalibrationMethod.Percentile });
        foreach (var n in mm.Calibrator.Names) output.WriteLine($"{n}: minmax {mm.Range(n)} entropy {en.Range(n)} percentile {pc.Range(n)}");
    }
}
