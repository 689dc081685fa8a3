using TinyOps.Optimize.Evaluation;
using Xunit;

namespace TinyOps.Optimize.Tests.Evaluation;

/// <summary>The evaluation helper on fmnist_cnn: the figures the engine and the reference data give.</summary>
public sealed class ModelEvaluatorTests
{
    [Fact]
    public void FmnistCnnEvaluation()
    {
        var e = ModelEvaluator.Evaluate(TestPaths.FmnistCnn, new EvaluationOptions { LatencyRuns = 21, WarmupRuns = 5, WarmupMilliseconds = 50 });
        Assert.Equal(0.8733, e.Accuracy!.Value, 4); // models.json's recorded accuracy
        Assert.Equal(10_000, e.EvaluatedImages);
        Assert.Equal(new FileInfo(TestPaths.FmnistCnn).Length, e.FileBytes);
        Assert.Equal(52_138, e.Parameters);
        Assert.Equal(333_056, e.Macs);
        Assert.Equal(31_360, e.PlannedPeakBytes); // as `tinyops model inspect` reports
        Assert.Equal(2, e.Operators.Single(o => o.Key == "Conv").Value);
        Assert.Equal(3, e.Operators.Single(o => o.Key == "Relu").Value);
        Assert.True(e.LatencyMedianMicros > 0);
        Assert.Equal(0, e.WeightSparsity);
    }

    [Fact]
    public void WithoutADataSetThereIsNoAccuracy()
    {
        var e = ModelEvaluator.Evaluate(TestPaths.FmnistMlp, new EvaluationOptions { DataSet = null, LatencyRuns = 0 });
        Assert.Null(e.Accuracy);
        Assert.Null(e.LatencyMedianMicros);
        Assert.Equal(3_648, e.PlannedPeakBytes);
        Assert.Throws<ArgumentException>(() => ModelEvaluator.Evaluate(TestPaths.FmnistMlp, new EvaluationOptions { DataSet = "random", LatencyRuns = 0 }));
    }

    [Fact]
    public void ModelsAreTimedSideBySideAndOnesThatCannotBeTimedAreNull()
    {
        var cnn = TinyOps.Engine.Onnx.OnnxLoader.LoadFile(TestPaths.FmnistCnn);
        var mlp = TinyOps.Engine.Onnx.OnnxLoader.LoadFile(TestPaths.FmnistMlp);
        var add = Pruning.PruningTests.ConformanceModel("node/test_add"); // two inputs: not timed
        var l = ModelEvaluator.InterleavedMedianLatencies([cnn, add, mlp], runs: 11, rounds: 3, warmup: 3, warmupMilliseconds: 20);
        Assert.Equal(3, l.Length);
        Assert.True(l[0] > 0);
        Assert.Null(l[1]);
        Assert.True(l[2] > 0);
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Assert.Throws<OperationCanceledException>(() => ModelEvaluator.InterleavedMedianLatencies([cnn], 5, cancellation: cts.Token));
    }
}
