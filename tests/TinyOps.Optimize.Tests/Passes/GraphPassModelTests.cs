using TinyOps.Engine.Ir;
using TinyOps.Engine.Onnx;
using TinyOps.Engine.Tensors;
using TinyOps.Optimize.Passes;
using Xunit;
using Xunit.Abstractions;

namespace TinyOps.Optimize.Tests.Passes;

/// <summary>
/// The graph passes on the reference models (fmnist_cnn, fmnist_mlp) and the torchvision exports (MobileNetV2,
/// ResNet-18, SqueezeNet 1.1): constant folding, dead-node removal and activation fusion keep every output bit for
/// bit; BatchNormalization folding (on the models with a BatchNormalization inserted after every Conv and Gemm) stays
/// within 1e-5 of the output's largest magnitude (measured: at most 4.8e-7; float32 rounding is 6e-8 per operation).
/// </summary>
public sealed class GraphPassModelTests(ITestOutputHelper output)
{
    public static TheoryData<string> Models() => ["fmnist_cnn", "fmnist_mlp", "mobilenet_v2", "resnet18", "squeezenet1_1"];

    private static Model Load(string name) => OnnxLoader.LoadFile(name.StartsWith("fmnist", StringComparison.Ordinal)
        ? Path.Combine(TestPaths.Shared, "models", name + ".onnx")
        : Path.Combine(TestPaths.RepoRoot, "tests", "models", name, "model.onnx"));

    private static Tensor Input(string name, Model m) => name.StartsWith("fmnist", StringComparison.Ordinal) ? TestModels.FashionBatch(64) : TestModels.RandomInput(m, 1);

    [Theory]
    [MemberData(nameof(Models))]
    public void ExactPassesKeepEveryOutputBit(string name)
    {
        var model = Load(name);
        var x = Input(name, model);
        var before = TestModels.Run(model, x);
        var chain = model;
        foreach (IModelPass pass in new IModelPass[] { new ConstantFolding(), new DeadNodeRemoval(), new ActivationFusion() })
        {
            var one = TestModels.ApplyAndReload(pass, model);
            Assert.Equal(before, TestModels.Run(one, x));
            chain = TestModels.ApplyAndReload(pass, chain);
        }
        Assert.Equal(before, TestModels.Run(chain, x));
        // with the engine's own load-time fusion off, the com.microsoft nodes still compute the same
        Assert.Equal(TestModels.Run(model, x, fuse: false), TestModels.Run(chain, x, fuse: false));
    }

    [Fact]
    public void MobileNetConstantsAndIdentitiesAreFoldedAndClipsFused()
    {
        var model = Load("mobilenet_v2");
        Assert.Equal(70, model.Graph.Nodes.Count(n => n.OpType == "Constant"));
        var folded = TestModels.ApplyAndReload(new ConstantFolding(), model);
        Assert.DoesNotContain(folded.Graph.Nodes, n => n.OpType is "Constant" or "Identity");
        var fused = TestModels.ApplyAndReload(new ActivationFusion(), folded);
        Assert.Equal(35, fused.Graph.Nodes.Count(n => n.OpType == "FusedConv" && n.Domain == ActivationFusion.MicrosoftDomain && n.GetString("activation", "") == "Clip"));
        Assert.DoesNotContain(fused.Graph.Nodes, n => n.OpType == "Clip");
        Assert.Equal(1, fused.OpsetFor(ActivationFusion.MicrosoftDomain));
    }

    [Fact]
    public void FmnistFusionWritesFusedConvAndFusedGemm()
    {
        var fused = TestModels.ApplyAndReload(new ActivationFusion(), Load("fmnist_cnn"));
        Assert.Equal(2, fused.Graph.Nodes.Count(n => n.OpType == "FusedConv"));
        Assert.Equal(1, fused.Graph.Nodes.Count(n => n.OpType == "FusedGemm"));
        Assert.DoesNotContain(fused.Graph.Nodes, n => n.OpType == "Relu");
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void BatchNormFoldingStaysWithinRoundingOfTheUnfoldedModel(string name)
    {
        // torchvision's exports read some weights through Identity nodes: fold them first, as a recipe would
        var withBn = TestModels.WithBatchNorms(new ConstantFolding().Run(Load(name), PassContext.Default).Model);
        int bns = withBn.Graph.Nodes.Count(n => n.OpType == "BatchNormalization");
        Assert.True(bns > 0);
        var x = Input(name, withBn);
        var before = TestModels.Run(withBn, x);
        var outcome = new BatchNormFolding().Run(withBn, PassContext.Default);
        Assert.Equal(bns, outcome.Details.Count);
        var folded = OnnxLoader.Load(OnnxWriter.Write(outcome.Model), "folded");
        Assert.DoesNotContain(folded.Graph.Nodes, n => n.OpType == "BatchNormalization");
        double rel = TestModels.RelativeMaxDiff(before, TestModels.Run(folded, x));
        output.WriteLine($"{name}: {bns} BatchNormalization folded, largest difference {rel:E2} of the largest output");
        Assert.True(rel <= 1e-5, $"{name}: folded outputs differ by {rel:E2} of the largest output (bound 1e-5)");
    }

    [Fact]
    public void TheEngineRefusesFusedActivationsItDoesNotHave()
    {
        var fused = new ActivationFusion().Run(Load("fmnist_cnn"), PassContext.Default).Model;
        var conv = fused.Graph.Nodes.First(n => n.OpType == "FusedConv");
        conv.Attributes["activation"] = AttributeValue.Of("activation", "Tanh");
        var e = Assert.Throws<TinyOps.Engine.UnsupportedOperatorException>(() => new TinyOps.Engine.Runtime.InferenceSession(fused));
        Assert.Contains("activation 'Tanh'", e.Message);
        conv.Attributes["activation"] = AttributeValue.Of("activation", "LeakyRelu");
        conv.Attributes["activation_params"] = AttributeValue.Of("activation_params", new float[] { 0.1f });
        Assert.Equal(160, TestModels.Run(fused, TestModels.FashionBatch(16)).Length);
    }

    [Fact]
    public void DeadBranchesAndTheirWeightsAreRemoved()
    {
        var g = new Graph { Name = "dead" };
        g.Inputs.Add(new ValueInfo("x", DataType.Float32, [Dim.Of(1), Dim.Of(4)]));
        g.Outputs.Add(new ValueInfo("y", DataType.Float32, [Dim.Of(1), Dim.Of(4)]));
        g.Initializers["w"] = Tensor.FromArray(new float[] { 1, 2, 3, 4 }, 1, 4);
        g.Initializers["unused"] = Tensor.FromArray(new float[] { 5 }, 1);
        g.Nodes.Add(new Node { Name = "live", OpType = "Relu", Inputs = ["x"], Outputs = ["y"] });
        g.Nodes.Add(new Node { Name = "dead1", OpType = "Mul", Inputs = ["x", "w"], Outputs = ["d1"] });
        g.Nodes.Add(new Node { Name = "dead2", OpType = "Sigmoid", Inputs = ["d1"], Outputs = ["d2"] });
        var model = new Model { Graph = g, Opsets = { [""] = 13 } };
        var outcome = new DeadNodeRemoval().Run(model, PassContext.Default);
        Assert.Equal(["live"], outcome.Model.Graph.Nodes.Select(n => n.Name));
        Assert.Empty(outcome.Model.Graph.Initializers);
        Assert.Equal(3, model.Graph.Nodes.Count); // the input model is not changed
        Assert.Contains("2 dead nodes", outcome.Summary);
    }

    [Fact]
    public void ConstantFoldingLeavesQuantizationAndLargeExpansionsAlone()
    {
        var g = new Graph { Name = "keep" };
        g.Inputs.Add(new ValueInfo("x", DataType.Float32, [Dim.Of(1)]));
        g.Outputs.Add(new ValueInfo("y", DataType.Float32, [Dim.Of(1)]));
        g.Initializers["q"] = Tensor.FromArray(new sbyte[] { 10 }, 1);
        g.Initializers["s"] = Tensor.Scalar(0.5f);
        g.Initializers["shape"] = Tensor.FromArray(new long[] { 1000, 1000 }, 2);
        g.Nodes.Add(new Node { Name = "dq", OpType = "DequantizeLinear", Inputs = ["q", "s"], Outputs = ["w"] });
        g.Nodes.Add(new Node { Name = "big", OpType = "ConstantOfShape", Inputs = ["shape"], Outputs = ["zeros"] });
        g.Nodes.Add(new Node { Name = "sum", OpType = "ReduceSum", Inputs = ["zeros"], Outputs = ["z"], Attributes = { ["keepdims"] = AttributeValue.Of("keepdims", 0L) } });
        g.Nodes.Add(new Node { Name = "add", OpType = "Add", Inputs = ["x", "w"], Outputs = ["y0"] });
        g.Nodes.Add(new Node { Name = "add2", OpType = "Add", Inputs = ["y0", "z"], Outputs = ["y"] });
        var outcome = new ConstantFolding().Run(new Model { Graph = g, Opsets = { [""] = 13 } }, PassContext.Default);
        var ops = outcome.Model.Graph.Nodes.Select(n => n.Name).ToList();
        Assert.Contains("dq", ops);  // would undo int8 weight storage
        Assert.Contains("big", ops); // 4 MB of zeros from 16 bytes
    }
}
