using TinyOps.Engine.Ir;
using TinyOps.Engine.Runtime;
using TinyOps.Engine.Tensors;
using Xunit;

namespace TinyOps.Engine.Tests.Kernels;

public class ElementwiseTests
{
    private static Tensor[] RunNode(string op, int opset, Tensor[] inputs, int outputs = 1, params AttributeValue[] attrs)
    {
        var node = new Node { OpType = op, Inputs = inputs.Select((_, i) => $"x{i}").ToList(), Outputs = Enumerable.Range(0, outputs).Select(i => $"y{i}").ToList() };
        foreach (var a in attrs) node.Attributes[a.Name] = a;
        var graph = new Graph
        {
            Name = "g",
            Nodes = [node],
            Inputs = inputs.Select((t, i) => new ValueInfo($"x{i}", t.Type, t.Shape.Select(d => Dim.Of(d)).ToArray())).ToList(),
            Outputs = Enumerable.Range(0, outputs).Select(i => new ValueInfo($"y{i}", DataType.Undefined, null)).ToList(),
        };
        var model = new Model { Graph = graph, Opsets = { [""] = opset } };
        var session = new InferenceSession(model);
        var feeds = new Dictionary<string, Tensor>();
        for (int i = 0; i < inputs.Length; i++) feeds[$"x{i}"] = inputs[i];
        var result = session.Run(feeds);
        return Enumerable.Range(0, outputs).Select(i => result[$"y{i}"]).ToArray();
    }

    private static float[] Seq(int n, float start = 0f) => Enumerable.Range(0, n).Select(i => start + i).ToArray();

    [Fact]
    public void LegacyBroadcastWithAxis()
    {
        var a = Tensor.FromArray(Seq(120), 2, 3, 4, 5);
        var b = Tensor.FromArray(Seq(12, 1000), 3, 4);
        var y = RunNode("Add", 6, [a, b], 1, AttributeValue.Of("broadcast", 1L), AttributeValue.Of("axis", 1L))[0];
        Assert.Equal([2, 3, 4, 5], y.Shape);
        var v = y.ToArray<float>();
        for (int n = 0; n < 2; n++)
            for (int c = 0; c < 3; c++)
                for (int h = 0; h < 4; h++)
                    for (int w = 0; w < 5; w++)
                    {
                        int i = ((n * 3 + c) * 4 + h) * 5 + w;
                        Assert.Equal(i + 1000 + c * 4 + h, v[i]);
                    }
    }

    [Fact]
    public void LegacyBroadcastSuffix()
    {
        var a = Tensor.FromArray(Seq(6), 2, 3);
        var b = Tensor.FromArray(new[] { 10f, 20f, 30f }, 3);
        var y = RunNode("Mul", 1, [a, b], 1, AttributeValue.Of("broadcast", 1L))[0];
        Assert.Equal(new[] { 0f, 20f, 60f, 30f, 80f, 150f }, y.ToArray<float>());
    }

    [Fact]
    public void GeneralBroadcastMatchesNaive()
    {
        var a = Tensor.FromArray(Seq(6), 2, 1, 3);
        var b = Tensor.FromArray(Seq(4, 100), 4, 1);
        var y = RunNode("Sub", 13, [a, b])[0];
        Assert.Equal([2, 4, 3], y.Shape);
        var v = y.ToArray<float>();
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 4; j++)
                for (int k = 0; k < 3; k++)
                    Assert.Equal((i * 3 + k) - (100 + j), v[(i * 4 + j) * 3 + k]);
    }

    [Fact]
    public void IntegerDivTruncatesAndNeverTraps()
    {
        var a = Tensor.FromArray(new[] { 7, -7, 7, int.MinValue, 5 }, 5);
        var b = Tensor.FromArray(new[] { 2, 2, -2, -1, 0 }, 5);
        var y = RunNode("Div", 14, [a, b])[0];
        Assert.Equal(new[] { 3, -3, -3, int.MinValue, 0 }, y.ToArray<int>());
    }

    [Fact]
    public void Int8ArithmeticWraps()
    {
        var a = Tensor.FromArray(new sbyte[] { 127, -128 }, 2);
        var b = Tensor.FromArray(new sbyte[] { 1, -1 }, 2);
        Assert.Equal(new sbyte[] { -128, 127 }, RunNode("Add", 14, [a, b])[0].ToArray<sbyte>());
        Assert.Equal(new sbyte[] { -128, -128 }, RunNode("Abs", 13, [Tensor.FromArray(new sbyte[] { -128, -128 }, 2)])[0].ToArray<sbyte>());
    }

    [Fact]
    public void CastTruncatesAndTestsNonZero()
    {
        var x = Tensor.FromArray(new[] { -1.7f, 2.9f, 0f, float.NaN }, 4);
        Assert.Equal(new[] { -1, 2, 0 }, RunNode("Cast", 13, [Tensor.FromArray(new[] { -1.7f, 2.9f, 0f }, 3)], 1, AttributeValue.Of("to", 6L))[0].ToArray<int>());
        Assert.Equal(new[] { true, true, false, true }, RunNode("Cast", 13, [x], 1, AttributeValue.Of("to", 9L))[0].ToArray<bool>());
        Assert.Equal(new long[] { -1, 2, 0 }, RunNode("Cast", 1, [Tensor.FromArray(new[] { -1.7f, 2.9f, 0f }, 3)], 1, AttributeValue.Of("to", "INT64"))[0].ToArray<long>());
        Assert.Equal(new[] { 1f, 0f }, RunNode("Cast", 13, [Tensor.FromArray(new[] { true, false }, 2)], 1, AttributeValue.Of("to", 1L))[0].ToArray<float>());
    }

    [Fact]
    public void ClipOpset6Attributes()
    {
        var x = Tensor.FromArray(new[] { -5f, 0.5f, 5f }, 3);
        var y = RunNode("Clip", 6, [x], 1, AttributeValue.Of("min", -1f), AttributeValue.Of("max", 1f))[0];
        Assert.Equal(new[] { -1f, 0.5f, 1f }, y.ToArray<float>());
    }

    [Fact]
    public void IntegerPowIsExact()
    {
        var a = Tensor.FromArray(new[] { 3, 2, -1, 5 }, 4);
        var b = Tensor.FromArray(new[] { 5, -1, -3, 0 }, 4);
        Assert.Equal(new[] { 243, 0, -1, 1 }, RunNode("Pow", 15, [a, b])[0].ToArray<int>());
        var e = Tensor.FromArray(new[] { 5f, 2f }, 2);
        Assert.Equal(new[] { 243, 9 }, RunNode("Pow", 15, [Tensor.FromArray(new[] { 3, 3 }, 2), e])[0].ToArray<int>());
    }

    [Fact]
    public void VariadicBroadcastsAllInputs()
    {
        var a = Tensor.FromArray(new[] { 1f, 2f, 3f }, 3);
        var b = Tensor.FromArray(new[] { 10f }, 1);
        var c = Tensor.FromArray(new[] { 100f, 200f }, 2, 1);
        var y = RunNode("Sum", 13, [a, b, c])[0];
        Assert.Equal([2, 3], y.Shape);
        Assert.Equal(new[] { 111f, 112f, 113f, 211f, 212f, 213f }, y.ToArray<float>());
        var m = RunNode("Mean", 13, [a, b, c])[0];
        Assert.Equal(111f / 3f, m.ToArray<float>()[0], 5);
        var mx = RunNode("Max", 13, [c, a])[0];
        Assert.Equal(new[] { 100f, 100f, 100f, 200f, 200f, 200f }, mx.ToArray<float>());
    }

    [Fact]
    public void WhereBroadcasts()
    {
        var cond = Tensor.FromArray(new[] { true, false }, 2, 1);
        var x = Tensor.FromArray(new long[] { 1, 2, 3 }, 3);
        var y = Tensor.FromArray(new long[] { -1 }, 1);
        var r = RunNode("Where", 16, [cond, x, y])[0];
        Assert.Equal(new long[] { 1, 2, 3, -1, -1, -1 }, r.ToArray<long>());
    }

    [Fact]
    public void DropoutOpset7MaskIsFloatOnes()
    {
        var x = Tensor.FromArray(Seq(4), 4);
        var r = RunNode("Dropout", 7, [x], 2, AttributeValue.Of("ratio", 0.3f));
        Assert.Equal(Seq(4), r[0].ToArray<float>());
        Assert.Equal(DataType.Float32, r[1].Type);
        Assert.Equal(new[] { 1f, 1f, 1f, 1f }, r[1].ToArray<float>());
    }

    [Fact]
    public void EqualLegacyAndBool()
    {
        var a = Tensor.FromArray(new[] { 1, 2, 3, 4 }, 2, 2);
        var b = Tensor.FromArray(new[] { 1, 4 }, 2);
        Assert.Equal(new[] { true, false, false, true }, RunNode("Equal", 1, [a, b], 1, AttributeValue.Of("broadcast", 1L))[0].ToArray<bool>());
        var p = Tensor.FromArray(new[] { true, false }, 2);
        var q = Tensor.FromArray(new[] { true, true }, 2);
        Assert.Equal(new[] { true, false }, RunNode("Equal", 11, [p, q])[0].ToArray<bool>());
    }

    [Fact]
    public void ErfIsAccurate()
    {
        var x = Tensor.FromArray(new[] { 0f, 0.1f, 0.5f, 1f, 2f, -3f }, 6);
        var expected = new[] { 0.0, 0.1124629160182849, 0.5204998778130465, 0.8427007929497149, 0.9953222650189527, -0.9999779095030014 };
        var y = RunNode("Erf", 13, [x])[0].ToArray<float>();
        for (int i = 0; i < y.Length; i++) Assert.True(Math.Abs(y[i] - expected[i]) < 1e-6, $"erf({x.ToArray<float>()[i]}) = {y[i]}");
    }
}

public class ElementwiseAllocationTests
{
    [Theory]
    [InlineData("Add")]
    [InlineData("Pow")]
    [InlineData("Max")]
    [InlineData("Equal")]
    [InlineData("Where")]
    [InlineData("Erf")]
    [InlineData("Cast")]
    [InlineData("Clip")]
    public void RunDoesNotAllocate(string op)
    {
        var f = Tensor.FromArray(Enumerable.Range(0, 24).Select(i => i * 0.1f).ToArray(), 2, 3, 4);
        var g = Tensor.FromArray(new[] { 1f, 2f, 3f }, 3, 1);
        var c = Tensor.FromArray(new[] { true, false, true, false }, 4);
        var ints = Tensor.FromArray(new[] { 1, 2, 3 }, 3, 1);
        (Tensor[] inputs, AttributeValue[] attrs) = op switch
        {
            "Where" => (new[] { c, f, g }, Array.Empty<AttributeValue>()),
            "Erf" => (new[] { f }, Array.Empty<AttributeValue>()),
            "Cast" => (new[] { f }, new[] { AttributeValue.Of("to", 7L) }),
            "Clip" => (new[] { f, Tensor.Scalar(0.5f), Tensor.Scalar(1.5f) }, Array.Empty<AttributeValue>()),
            "Pow" => (new[] { f, ints }, Array.Empty<AttributeValue>()),
            _ => (new[] { f, g }, Array.Empty<AttributeValue>()),
        };
        var node = new Node { OpType = op, Inputs = inputs.Select((_, i) => $"x{i}").ToList(), Outputs = ["y"] };
        foreach (var a in attrs) node.Attributes[a.Name] = a;
        var graph = new Graph
        {
            Name = "g",
            Nodes = [node],
            Inputs = inputs.Select((t, i) => new ValueInfo($"x{i}", t.Type, t.Shape.Select(d => Dim.Of(d)).ToArray())).ToList(),
            Outputs = [new ValueInfo("y", DataType.Undefined, null)],
        };
        var session = new InferenceSession(new Model { Graph = graph, Opsets = { [""] = 16 } });
        var outs = new Tensor[1];
        session.Run(inputs, outs);
        session.Run(inputs, outs);
        long before = GC.GetAllocatedBytesForCurrentThread();
        session.Run(inputs, outs);
        long after = GC.GetAllocatedBytesForCurrentThread();
        Assert.Equal(0, after - before);
    }
}
