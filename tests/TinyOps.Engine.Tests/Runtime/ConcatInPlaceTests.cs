using TinyOps.Engine.Ir;
using TinyOps.Engine.Runtime;
using TinyOps.Engine.Tensors;
using Xunit;

namespace TinyOps.Engine.Tests.Runtime;

/// <summary>Concat inputs planned as views of the Concat's output (SessionOptions.ConcatInPlace).</summary>
public sealed class ConcatInPlaceTests
{
    private static AttributeValue Ints(string name, params long[] v) => AttributeValue.Of(name, v);

    /// <summary>
    /// Fire-module-like graph: two convolutions of one input joined on channels, that result joined again with a
    /// third branch (a nested Concat, whose inner result is also a graph output), a branch that also feeds another
    /// node, a Concat on axis 2 (not contiguous blocks, same input twice) and one whose input is a graph input.
    /// </summary>
    private static Model Graph(int batch)
    {
        var rng = new Random(5);
        Tensor W(int m, int c, int k) => Tensor.FromArray(Enumerable.Range(0, m * c * k * k).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray(), m, c, k, k);
        Node Conv(string x, string w, string y, int k) => new()
        {
            OpType = "Conv", Inputs = [x, w], Outputs = [y],
            Attributes = { ["kernel_shape"] = Ints("kernel_shape", k, k), ["pads"] = Ints("pads", k / 2, k / 2, k / 2, k / 2) },
        };
        var g = new Graph
        {
            Nodes =
            [
                Conv("x", "w1", "a", 1), new Node { OpType = "Relu", Inputs = ["a"], Outputs = ["ar"] },
                Conv("x", "w3", "b", 3), new Node { OpType = "Relu", Inputs = ["b"], Outputs = ["br"] },
                new Node { OpType = "Concat", Inputs = ["ar", "br"], Outputs = ["ab"], Attributes = { ["axis"] = AttributeValue.Of("axis", 1L) } },
                Conv("x", "w2", "c", 1),
                new Node { OpType = "Concat", Inputs = ["ab", "c"], Outputs = ["abc"], Attributes = { ["axis"] = AttributeValue.Of("axis", 1L) } },
                Conv("x", "w2", "d", 1),
                new Node { OpType = "Sigmoid", Inputs = ["d"], Outputs = ["ds"] },
                new Node { OpType = "Concat", Inputs = ["d", "ds"], Outputs = ["dd"], Attributes = { ["axis"] = AttributeValue.Of("axis", 1L) } },
                new Node { OpType = "Concat", Inputs = ["abc", "abc"], Outputs = ["h"], Attributes = { ["axis"] = AttributeValue.Of("axis", 2L) } },
                new Node { OpType = "Concat", Inputs = ["x", "c"], Outputs = ["xc"], Attributes = { ["axis"] = AttributeValue.Of("axis", 1L) } },
            ],
            Inputs = [new ValueInfo("x", DataType.Float32, [Dim.Of(batch), Dim.Of(4), Dim.Of(9), Dim.Of(7)])],
            Outputs = [new ValueInfo("h", DataType.Float32, null), new ValueInfo("xc", DataType.Float32, null), new ValueInfo("ab", DataType.Float32, null), new ValueInfo("dd", DataType.Float32, null)],
            Initializers = { ["w1"] = W(5, 4, 1), ["w3"] = W(6, 4, 3), ["w2"] = W(3, 4, 1) },
        };
        return new Model { Graph = g, Opsets = { [""] = 13 } };
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void OutputsMatchTheCopyingConcat(int batch)
    {
        var x = Tensor.FromArray(Enumerable.Range(0, batch * 4 * 9 * 7).Select(i => (float)Math.Sin(i)).ToArray(), batch, 4, 9, 7);
        var copying = new InferenceSession(Graph(batch), new SessionOptions { ConcatInPlace = false });
        var inPlace = new InferenceSession(Graph(batch), new SessionOptions { ConcatInPlace = true });
        var want = new Tensor[4];
        var got = new Tensor[4];
        copying.Run([x], want);
        for (int run = 0; run < 3; run++)
        {
            inPlace.Run([x], got);
            for (int o = 0; o < 4; o++)
            {
                Assert.Equal(want[o].Shape, got[o].Shape);
                Assert.Equal(want[o].ReadOnlySpan<float>().ToArray(), got[o].ReadOnlySpan<float>().ToArray());
            }
        }
    }

    /// <summary>Two convolutions joined on channels: in place, the arena holds the joined tensor only (copying holds both halves too).</summary>
    [Fact]
    public void ConvolutionsWriteIntoTheJoinedBuffer()
    {
        var rng = new Random(8);
        Tensor W(int m) => Tensor.FromArray(Enumerable.Range(0, m * 4).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray(), m, 4, 1, 1);
        Tensor wa = W(8), wb = W(8);
        Model M() => new()
        {
            Graph = new Graph
            {
                Nodes =
                [
                    new Node { OpType = "Conv", Inputs = ["x", "wa"], Outputs = ["a"] },
                    new Node { OpType = "Conv", Inputs = ["x", "wb"], Outputs = ["b"] },
                    new Node { OpType = "Concat", Inputs = ["a", "b"], Outputs = ["y"], Attributes = { ["axis"] = AttributeValue.Of("axis", 1L) } },
                    new Node { OpType = "GlobalAveragePool", Inputs = ["y"], Outputs = ["z"] },
                ],
                Inputs = [new ValueInfo("x", DataType.Float32, [Dim.Of(1), Dim.Of(4), Dim.Of(32), Dim.Of(32)])],
                Outputs = [new ValueInfo("z", DataType.Float32, null)],
                Initializers = { ["wa"] = wa, ["wb"] = wb },
            },
            Opsets = { [""] = 13 },
        };
        var x = Tensor.FromArray(Enumerable.Range(0, 4 * 32 * 32).Select(i => (float)Math.Cos(i)).ToArray(), 1, 4, 32, 32);
        var copying = new InferenceSession(M(), new SessionOptions { ConcatInPlace = false });
        var inPlace = new InferenceSession(M(), new SessionOptions { ConcatInPlace = true });
        var want = new Tensor[1];
        var got = new Tensor[1];
        copying.Run([x], want);
        inPlace.Run([x], got);
        Assert.Equal(want[0].ReadOnlySpan<float>().ToArray(), got[0].ReadOnlySpan<float>().ToArray());
        long joined = 16 * 32 * 32 * sizeof(float);
        Assert.True(copying.PlannedArenaBytes >= 2 * joined, $"copying plans {copying.PlannedArenaBytes} B");
        Assert.True(inPlace.PlannedArenaBytes < 2 * joined, $"in place plans {inPlace.PlannedArenaBytes} B");
    }
}
