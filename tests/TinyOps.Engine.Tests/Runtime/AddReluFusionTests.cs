using TinyOps.Engine.Ir;
using TinyOps.Engine.Kernels;
using TinyOps.Engine.Runtime;
using TinyOps.Engine.Runtime.Fusion;
using TinyOps.Engine.Tensors;
using Xunit;

namespace TinyOps.Engine.Tests.Runtime;

/// <summary>Add → Relu (a residual block's end) fused into the Add by ActivationFusion: same bits, fewer nodes.</summary>
public sealed class AddReluFusionTests
{
    private static Model Residual(int[] aShape, int[] bShape, bool extraReader, int opset = 13)
    {
        var g = new Graph
        {
            Nodes =
            [
                new Node { Name = "add", OpType = "Add", Inputs = ["a", "b"], Outputs = ["s"] },
                new Node { Name = "relu", OpType = "Relu", Inputs = ["s"], Outputs = ["y"] },
            ],
            Inputs =
            [
                new ValueInfo("a", DataType.Float32, aShape.Select(d => Dim.Of(d)).ToArray()),
                new ValueInfo("b", DataType.Float32, bShape.Select(d => Dim.Of(d)).ToArray()),
            ],
            Outputs = [new ValueInfo("y", DataType.Float32, null)],
        };
        if (extraReader)
        {
            g.Nodes.Add(new Node { Name = "neg", OpType = "Neg", Inputs = ["s"], Outputs = ["z"] });
            g.Outputs.Add(new ValueInfo("z", DataType.Float32, null));
        }
        return new Model { Graph = g, Opsets = { [""] = opset } };
    }

    private static Tensor Random(int seed, int[] shape)
    {
        var r = new Random(seed);
        int n = shape.Aggregate(1, (x, y) => x * y);
        // include exact zeros, negative zeros and NaN: Relu's edge cases
        return Tensor.FromArray(Enumerable.Range(0, n).Select(i => i % 17 == 0 ? -0f : i % 31 == 0 ? float.NaN : (float)(r.NextDouble() * 4 - 2)).ToArray(), shape);
    }

    [Theory]
    [InlineData(new[] { 1, 64, 14, 14 }, new[] { 1, 64, 14, 14 })]
    [InlineData(new[] { 2, 3, 5, 7 }, new[] { 3, 1, 7 })]
    [InlineData(new[] { 1, 100 }, new int[0])]
    public void FusedAddReluIsBitIdentical(int[] aShape, int[] bShape)
    {
        var m = Residual(aShape, bShape, extraReader: false);
        var fused = ActivationFusion.Apply(m.Graph, m, KernelRegistry.Default);
        Assert.Single(fused.Nodes);
        var inputs = new Dictionary<string, Tensor> { ["a"] = Random(1, aShape), ["b"] = Random(2, bShape) };
        var want = new InferenceSession(m, new SessionOptions { FuseActivations = false }).Run(inputs)["y"];
        var got = new InferenceSession(m).Run(inputs)["y"];
        Assert.Equal(want.Shape, got.Shape);
        Assert.Equal(want.Bytes.ToArray(), got.Bytes.ToArray());
    }

    [Fact]
    public void SumWithAnotherReaderIsNotFused()
    {
        var m = Residual([1, 8], [1, 8], extraReader: true);
        Assert.Same(m.Graph, ActivationFusion.Apply(m.Graph, m, KernelRegistry.Default));
    }
}
