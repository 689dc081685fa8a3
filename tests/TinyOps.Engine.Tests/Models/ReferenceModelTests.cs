using System.Text.Json;
using TinyOps.Engine.Conformance;
using TinyOps.Engine.Data;
using TinyOps.Engine.Runtime;
using Xunit;

namespace TinyOps.Engine.Tests.Models;

/// <summary>The reference Fashion-MNIST models and the torchvision exports run and match their expected outputs.</summary>
public sealed class ReferenceModelTests
{
    [Theory]
    [InlineData("fmnist_mlp_test")]
    [InlineData("fmnist_cnn_test")]
    public void ReferenceTestSetsPass(string name)
    {
        var r = OnnxTestRunner.Run(Path.Combine(TestPaths.ReferenceModels, name));
        Assert.True(r.Status == ConformanceStatus.Passed, $"{name}: {r.Status} {r.Detail}");
    }

    /// <summary>Models nobody here made (torchvision, random weights), checked against ONNX Runtime's outputs.</summary>
    [Theory]
    [InlineData("mobilenet_v2")]
    [InlineData("resnet18")]
    [InlineData("squeezenet1_1")]
    public void TorchvisionModelsMatchOnnxRuntime(string name)
    {
        var r = OnnxTestRunner.Run(Path.Combine(TestPaths.TorchvisionModels, name), rtol: 1e-3, atol: 1e-4);
        Assert.True(r.Status == ConformanceStatus.Passed, $"{name}: {r.Status} {r.Detail}");
    }

    [Theory]
    [InlineData("fmnist_mlp")]
    [InlineData("fmnist_cnn")]
    public void AccuracyMatchesTheRecordedOne(string name)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(TestPaths.ReferenceModels, "models.json")));
        var entry = doc.RootElement.GetProperty(name);
        double recorded = entry.GetProperty("test_accuracy_fp32_torch").GetDouble();
        var data = FashionMnist.LoadTest();
        var session = InferenceSession.Load(Path.Combine(TestPaths.ReferenceModels, entry.GetProperty("file").GetString()!));
        var eval = Evaluator.Accuracy(session, data, data.Count, 100);
        Assert.Equal(10_000, eval.Count);
        Assert.True(Math.Abs(eval.Accuracy - recorded) <= 0.0005, $"{name}: accuracy {eval.Accuracy:F4}, recorded {recorded:F4}");
    }
}
