using TinyOps.Engine.Ir;
using TinyOps.Engine.Kernels;
using TinyOps.Engine.Kernels.Nn;
using TinyOps.Engine.Onnx;
using TinyOps.Engine.Runtime;
using TinyOps.Engine.Runtime.Fusion;
using TinyOps.Engine.Tensors;
using Xunit;

namespace TinyOps.Engine.Tests.Runtime;

/// <summary>Conv → Add [→ Relu] fused into one Conv by ResidualFusion: the same bits as the nodes run one by one.</summary>
public sealed class ResidualFusionTests
{
    /// <summary>y = [Relu](Conv(x, W, B) + r), with the Conv's other readers or activation as asked.</summary>
    private static Model Block(int c, int m, int k, int stride, int group, int h, int w, int[] rShape, bool bias, bool relu,
        bool extraReader = false, bool convRelu = false, int seed = 1)
    {
        var rng = new Random(seed);
        int pad = k / 2;
        var conv = new Node { Name = "conv", OpType = "Conv", Inputs = bias ? ["x", "W", "B"] : ["x", "W"], Outputs = ["c"] };
        conv.Attributes["kernel_shape"] = AttributeValue.Of("kernel_shape", new long[] { k, k });
        conv.Attributes["strides"] = AttributeValue.Of("strides", new long[] { stride, stride });
        conv.Attributes["pads"] = AttributeValue.Of("pads", new long[] { pad, pad, pad, pad });
        conv.Attributes["group"] = AttributeValue.Of("group", (long)group);
        var nodes = new List<Node> { conv };
        string convOut = "c";
        if (convRelu)
        {
            nodes.Add(new Node { Name = "crelu", OpType = "Relu", Inputs = ["c"], Outputs = ["cr"] });
            convOut = "cr";
        }
        nodes.Add(new Node { Name = "add", OpType = "Add", Inputs = [convOut, "r"], Outputs = relu ? ["s"] : ["y"] });
        if (relu) nodes.Add(new Node { Name = "relu", OpType = "Relu", Inputs = ["s"], Outputs = ["y"] });
        var wts = Enumerable.Range(0, m * (c / group) * k * k).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
        var g = new Graph
        {
            Nodes = nodes,
            Inputs =
            [
                new ValueInfo("x", DataType.Float32, [Dim.Of(1), Dim.Of(c), Dim.Of(h), Dim.Of(w)]),
                new ValueInfo("r", DataType.Float32, rShape.Select(d => Dim.Of(d)).ToArray()),
            ],
            Outputs = [new ValueInfo("y", DataType.Float32, null)],
            Initializers = { ["W"] = Tensor.FromArray(wts, m, c / group, k, k) },
        };
        if (bias) g.Initializers["B"] = Tensor.FromArray(Enumerable.Range(0, m).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray(), m);
        if (extraReader)
        {
            g.Nodes.Add(new Node { Name = "neg", OpType = "Neg", Inputs = ["c"], Outputs = ["z"] });
            g.Outputs.Add(new ValueInfo("z", DataType.Float32, null));
        }
        return new Model { Graph = g, Opsets = { [""] = 13 } };
    }

    private static Tensor Random(int seed, int[] shape)
    {
        var r = new Random(seed);
        int n = shape.Aggregate(1, (x, y) => x * y);
        return Tensor.FromArray(Enumerable.Range(0, n).Select(i => i % 37 == 0 ? -0f : (float)(r.NextDouble() * 4 - 2)).ToArray(), shape);
    }

    private static void AssertSameAsUnfused(Model m, int[] rShape, int threads = 1)
    {
        var xs = m.Graph.Inputs[0].Shape!.Select(d => (int)d.Value).ToArray();
        var inputs = new Dictionary<string, Tensor> { ["x"] = Random(3, xs), ["r"] = Random(4, rShape) };
        var want = new InferenceSession(m, new SessionOptions { FuseResiduals = false, Threads = threads }).Run(inputs)["y"];
        var session = new InferenceSession(m, new SessionOptions { Threads = threads });
        session.Run(inputs);
        var got = session.Run(inputs)["y"];
        Assert.Equal(want.Shape, got.Shape);
        Assert.Equal(want.Bytes.ToArray(), got.Bytes.ToArray());
    }

    /// <summary>Every convolution route: implicit GEMM with 64-, 32- and 16-channel panels, 1x1 GEMM (packed and few-row), strided 1x1 through im2col, depthwise (flat and channels-last), stems, grouped.</summary>
    [Theory]
    [InlineData(64, 64, 3, 1, 1, 14, 14)]
    [InlineData(32, 96, 3, 1, 1, 9, 11)]
    [InlineData(16, 40, 3, 1, 1, 8, 8)]
    [InlineData(8, 16, 3, 1, 1, 7, 9)]
    [InlineData(24, 144, 1, 1, 1, 20, 20)]
    [InlineData(144, 24, 1, 1, 1, 28, 28)]
    [InlineData(16, 3, 1, 1, 1, 6, 6)]
    [InlineData(256, 96, 1, 1, 1, 7, 7)]
    [InlineData(300, 200, 1, 1, 1, 4, 4)]
    [InlineData(16, 32, 1, 2, 1, 10, 10)]
    [InlineData(32, 32, 3, 1, 32, 28, 28)]
    [InlineData(64, 64, 3, 1, 64, 7, 7)]
    [InlineData(3, 16, 3, 1, 1, 20, 20)]
    [InlineData(8, 8, 3, 1, 2, 6, 6)]
    public void FusedResidualIsBitIdentical(int c, int m, int k, int stride, int group, int h, int w)
    {
        int oh = (h + 2 * (k / 2) - k) / stride + 1, ow = (w + 2 * (k / 2) - k) / stride + 1;
        int[] rShape = [1, m, oh, ow];
        foreach (var (bias, relu) in new[] { (true, true), (false, true), (true, false) })
        {
            var model = Block(c, m, k, stride, group, h, w, rShape, bias, relu);
            var fused = ResidualFusion.Apply(ActivationFusion.Apply(model.Graph, model, KernelRegistry.Default), model, KernelRegistry.Default);
            var only = Assert.Single(fused.Nodes);
            Assert.Equal("Conv", only.OpType);
            AssertSameAsUnfused(model, rShape);
        }
    }

    [Fact]
    public void TwoThreadsGiveTheSameBits()
    {
        AssertSameAsUnfused(Block(64, 64, 3, 1, 1, 28, 28, [1, 64, 28, 28], true, true), [1, 64, 28, 28], threads: 2);
        AssertSameAsUnfused(Block(96, 32, 1, 1, 1, 28, 28, [1, 32, 28, 28], true, false), [1, 32, 28, 28], threads: 2);
        // a deep 1x1 over a small plane: the transposed route, its pixels split in bands, each adding its own residual
        AssertSameAsUnfused(Block(320, 96, 1, 1, 1, 14, 14, [1, 96, 14, 14], true, true), [1, 96, 14, 14], threads: 2);
    }

    [Theory]
    [InlineData(new[] { 1, 16, 1, 1 })]
    [InlineData(new[] { 16, 1, 1 })]
    [InlineData(new[] { 2, 16, 6, 6 })]
    [InlineData(new int[0])]
    public void BroadcastingResidualsAreAddedAsTheAddWould(int[] rShape)
    {
        var model = Block(8, 16, 3, 1, 1, 6, 6, rShape, bias: true, relu: true);
        AssertSameAsUnfused(model, rShape);
    }

    [Fact]
    public void ConvWithAnotherReaderOrItsOwnActivationIsNotFused()
    {
        var shared = Block(8, 8, 3, 1, 1, 6, 6, [1, 8, 6, 6], true, true, extraReader: true);
        var g = ActivationFusion.Apply(shared.Graph, shared, KernelRegistry.Default);
        Assert.Same(g, ResidualFusion.Apply(g, shared, KernelRegistry.Default));
        var activated = Block(8, 8, 3, 1, 1, 6, 6, [1, 8, 6, 6], true, false, convRelu: true);
        var g2 = ActivationFusion.Apply(activated.Graph, activated, KernelRegistry.Default);
        Assert.DoesNotContain(ResidualFusion.Apply(g2, activated, KernelRegistry.Default).Nodes, n => n.HasAttribute(FusedActivation.ResidualAttribute));
        AssertSameAsUnfused(activated, [1, 8, 6, 6]);
    }

    [Theory]
    [InlineData("resnet18")]
    [InlineData("mobilenet_v2")]
    public void ReferenceModelsGiveTheSameBits(string name)
    {
        string path = Path.Combine(TestPaths.RepoRoot, "tests", "models", name, "model.onnx");
        var model = OnnxLoader.LoadFile(path);
        var fused = ResidualFusion.Apply(ActivationFusion.Apply(model.Graph, model, KernelRegistry.Default), model, KernelRegistry.Default);
        Assert.Contains(fused.Nodes, n => n.HasAttribute(FusedActivation.ResidualAttribute));
        var input = Random(7, [1, 3, 224, 224]);
        var feed = new Dictionary<string, Tensor> { [model.Graph.RuntimeInputs.First().Name] = input };
        var want = new InferenceSession(model, new SessionOptions { FuseResiduals = false }).Run(feed);
        var got = new InferenceSession(model).Run(feed);
        foreach (var (k, v) in want) Assert.Equal(v.Bytes.ToArray(), got[k].Bytes.ToArray());
    }
}
