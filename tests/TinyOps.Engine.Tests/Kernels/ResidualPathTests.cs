using TinyOps.Engine.Ir;
using TinyOps.Engine.Kernels.Nn;
using TinyOps.Engine.Runtime;
using TinyOps.Engine.Tensors;
using Xunit;

namespace TinyOps.Engine.Tests.Kernels;

/// <summary>
/// A residual fused into a Conv (see Runtime.Fusion.ResidualFusion) on every kernel route and instruction-set path the
/// tests can force: the fused node gives the same bits as Conv, Add and Relu run one by one on the same path.
/// </summary>
[Collection("SGemmScalarSwitch")]
public class ResidualPathTests
{
    public enum Forced { None, Avx2Tiles, Panels32, GemmAvx2, GemmScalar, NoImplicitGemm }

    private static void With(Forced f, Action a)
    {
        switch (f)
        {
            case Forced.Avx2Tiles: ImplicitGemmConv.Force512 = false; break;
            case Forced.Panels32: ImplicitGemmConv.Use64 = false; break;
            case Forced.GemmAvx2: PackedGemm.ForcePath = PackedGemm.Path.Avx2; break;
            case Forced.GemmScalar: SGemm.ForceScalar = true; break;
            case Forced.NoImplicitGemm: ConvKernel.UseImplicitGemm = false; break;
        }
        try { a(); }
        finally
        {
            ImplicitGemmConv.Force512 = null;
            ImplicitGemmConv.Use64 = true;
            PackedGemm.ForcePath = null;
            SGemm.ForceScalar = false;
            ConvKernel.UseImplicitGemm = true;
        }
    }

    private static Model Block(int c, int m, int k, int stride, int h, int w, int seed)
    {
        var rng = new Random(seed);
        var conv = new Node { Name = "conv", OpType = "Conv", Inputs = ["x", "W", "B"], Outputs = ["c"] };
        conv.Attributes["kernel_shape"] = AttributeValue.Of("kernel_shape", new long[] { k, k });
        conv.Attributes["strides"] = AttributeValue.Of("strides", new long[] { stride, stride });
        conv.Attributes["pads"] = AttributeValue.Of("pads", new long[] { k / 2, k / 2, k / 2, k / 2 });
        var g = new Graph
        {
            Nodes =
            [
                conv,
                new Node { Name = "add", OpType = "Add", Inputs = ["r", "c"], Outputs = ["s"] },
                new Node { Name = "relu", OpType = "Relu", Inputs = ["s"], Outputs = ["y"] },
            ],
            Inputs = [new ValueInfo("x", DataType.Float32, [Dim.Of(1), Dim.Of(c), Dim.Of(h), Dim.Of(w)])],
            Outputs = [new ValueInfo("y", DataType.Float32, null)],
            Initializers =
            {
                ["W"] = Tensor.FromArray(Enumerable.Range(0, m * c * k * k).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray(), m, c, k, k),
                ["B"] = Tensor.FromArray(Enumerable.Range(0, m).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray(), m),
            },
        };
        int oh = (h + 2 * (k / 2) - k) / stride + 1, ow = (w + 2 * (k / 2) - k) / stride + 1;
        g.Inputs.Add(new ValueInfo("r", DataType.Float32, [Dim.Of(1), Dim.Of(m), Dim.Of(oh), Dim.Of(ow)]));
        return new Model { Graph = g, Opsets = { [""] = 13 } };
    }

    [Theory]
    [InlineData(Forced.None)]
    [InlineData(Forced.Avx2Tiles)]
    [InlineData(Forced.Panels32)]
    [InlineData(Forced.GemmAvx2)]
    [InlineData(Forced.GemmScalar)]
    [InlineData(Forced.NoImplicitGemm)]
    public void FusedResidualMatchesTheUnfusedNodes(Forced forced)
    {
        (int C, int M, int K, int S, int H, int W)[] shapes =
            [(16, 64, 3, 1, 9, 10), (24, 40, 3, 1, 7, 9), (8, 16, 3, 2, 11, 11), (40, 24, 1, 1, 9, 13), (20, 3, 1, 1, 6, 6), (12, 30, 1, 2, 9, 9)];
        With(forced, () =>
        {
            int seed = 0;
            foreach (var (c, m, k, st, h, w) in shapes)
            {
                var model = Block(c, m, k, st, h, w, ++seed);
                var feed = model.Graph.Inputs.ToDictionary(i => i.Name, i =>
                {
                    var shape = i.Shape!.Select(d => (int)d.Value).ToArray();
                    var r = new Random(seed * 7 + i.Name.Length);
                    return Tensor.FromArray(Enumerable.Range(0, shape.Aggregate(1, (a, b) => a * b)).Select(_ => (float)(r.NextDouble() * 2 - 1)).ToArray(), shape);
                });
                var want = new InferenceSession(model, new SessionOptions { FuseResiduals = false }).Run(feed)["y"];
                var got = new InferenceSession(model).Run(feed)["y"];
                Assert.True(want.Bytes.SequenceEqual(got.Bytes), $"{forced}: conv {c}->{m} k{k} s{st} {h}x{w}");
            }
        });
    }
}
