using TinyOps.Engine.Ir;
using TinyOps.Engine.Runtime;
using TinyOps.Engine.Tensors;
using Xunit;

namespace TinyOps.Engine.Tests.Kernels;

public class PoolingTests
{
    private static Dictionary<string, Tensor> RunOne(string op, int opset, (string Name, Tensor Value)[] inputs, string[] outputs, params AttributeValue[] attrs)
    {
        var node = new Node { OpType = op, Inputs = inputs.Select(i => i.Name).ToList(), Outputs = outputs.ToList() };
        foreach (var a in attrs) node.Attributes[a.Name] = a;
        var graph = new Graph
        {
            Nodes = [node],
            Inputs = inputs.Select(i => new ValueInfo(i.Name, i.Value.Type, i.Value.Shape.Select(d => Dim.Of(d)).ToArray())).ToList(),
            Outputs = outputs.Where(o => o.Length > 0).Select(o => new ValueInfo(o, DataType.Undefined, null)).ToList(),
        };
        var model = new Model { Graph = graph, Opsets = { [""] = opset } };
        var session = new InferenceSession(model);
        return session.Run(inputs.ToDictionary(i => i.Name, i => i.Value));
    }

    private static void Near(float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++) Assert.True(MathF.Abs(expected[i] - actual[i]) <= 1e-5f + 1e-4f * MathF.Abs(expected[i]), $"element {i}: expected {expected[i]}, got {actual[i]}");
    }

    [Fact]
    public void SoftmaxBeforeOpset13CoercesTo2D()
    {
        var data = Enumerable.Range(0, 24).Select(i => i * 0.1f).ToArray();
        var y = RunOne("Softmax", 11, [("x", Tensor.FromArray(data, 2, 3, 4))], ["y"], AttributeValue.Of("axis", 1L))["y"].ToArray<float>();
        var expected = new float[24];
        for (int b = 0; b < 2; b++)
        {
            var row = data.AsSpan(b * 12, 12);
            float max = row.ToArray().Max();
            float sum = 0;
            foreach (var v in row) sum += MathF.Exp(v - max);
            for (int i = 0; i < 12; i++) expected[b * 12 + i] = MathF.Exp(row[i] - max) / sum;
        }
        Near(expected, y);
    }

    [Fact]
    public void LogSoftmaxOpset13UsesOneAxis()
    {
        var data = Enumerable.Range(0, 24).Select(i => (i % 5) * 0.3f).ToArray();
        var y = RunOne("LogSoftmax", 13, [("x", Tensor.FromArray(data, 2, 3, 4))], ["y"], AttributeValue.Of("axis", 1L))["y"].ToArray<float>();
        var expected = new float[24];
        for (int b = 0; b < 2; b++)
            for (int k = 0; k < 4; k++)
            {
                float max = float.NegativeInfinity, sum = 0;
                for (int c = 0; c < 3; c++) max = MathF.Max(max, data[b * 12 + c * 4 + k]);
                for (int c = 0; c < 3; c++) sum += MathF.Exp(data[b * 12 + c * 4 + k] - max);
                for (int c = 0; c < 3; c++) expected[b * 12 + c * 4 + k] = data[b * 12 + c * 4 + k] - max - MathF.Log(sum);
            }
        Near(expected, y);
    }

    [Fact]
    public void ReduceSumWithRuntimeAxes()
    {
        var x = Tensor.FromArray(Enumerable.Range(1, 12).Select(i => (float)i).ToArray(), 2, 3, 2);
        var y = RunOne("ReduceSum", 13, [("x", x), ("axes", Tensor.FromArray(new long[] { -1, 0 }, 2))], ["y"], AttributeValue.Of("keepdims", 0L))["y"];
        Assert.Equal([3], y.Shape);
        Assert.Equal([1 + 2 + 7 + 8, 3 + 4 + 9 + 10, 5 + 6 + 11 + 12], y.ToArray<float>());
    }

    [Fact]
    public void ReduceSumNoopWithEmptyAxes()
    {
        var x = Tensor.FromArray(new[] { 1f, 2f, 3f }, 3);
        var y = RunOne("ReduceSum", 13, [("x", x), ("axes", Tensor.FromArray(Array.Empty<long>(), 0))], ["y"], AttributeValue.Of("noop_with_empty_axes", 1L))["y"];
        Assert.Equal([1f, 2f, 3f], y.ToArray<float>());
    }

    [Fact]
    public void ReduceMeanInt32TruncatesAndReduceMaxInt8()
    {
        var x = Tensor.FromArray(new[] { 1, 2, 4, -1, -2, -4 }, 2, 3);
        var mean = RunOne("ReduceMean", 13, [("x", x)], ["y"], AttributeValue.Of("axes", new long[] { 1 }))["y"];
        Assert.Equal([2, 1], mean.Shape);
        Assert.Equal([2, -2], mean.ToArray<int>());
        var xi = Tensor.FromArray(new sbyte[] { -5, -3, -9, 7 }, 2, 2);
        var max = RunOne("ReduceMax", 18, [("x", xi)], ["y"], AttributeValue.Of("keepdims", 0L))["y"];
        Assert.Empty(max.Shape);
        Assert.Equal([(sbyte)7], max.ToArray<sbyte>());
    }

    [Fact]
    public void MaxPoolColumnMajorIndices()
    {
        // 1x1x2x3 input, 2x2 kernel, stride 1 -> 1x1x1x2 output
        var x = Tensor.FromArray(new[] { 1f, 9f, 2f, 3f, 4f, 8f }, 1, 1, 2, 3);
        var r = RunOne("MaxPool", 12, [("x", x)], ["y", "i"], AttributeValue.Of("kernel_shape", new long[] { 2, 2 }), AttributeValue.Of("storage_order", 1L));
        Assert.Equal([9f, 9f], r["y"].ToArray<float>());
        // element (h=0, w=1): column-major index h + w * H = 0 + 1 * 2 = 2
        Assert.Equal([2L, 2L], r["i"].ToArray<long>());
    }

    [Fact]
    public void AveragePoolCeilModeCountIncludePad()
    {
        // 1-D input of 4, kernel 3, stride 2, pads 1/1, ceil -> 3 windows starting at -1, 1 and 3; the last one
        // reaches past the end padding, so with count_include_pad it counts only taps inside [-1, 5)
        var x = Tensor.FromArray(new[] { 1f, 2f, 3f, 4f }, 1, 1, 4);
        var attrs = new[] { AttributeValue.Of("kernel_shape", new long[] { 3 }), AttributeValue.Of("strides", new long[] { 2 }), AttributeValue.Of("pads", new long[] { 1, 1 }), AttributeValue.Of("ceil_mode", 1L) };
        var ex = RunOne("AveragePool", 19, [("x", x)], ["y"], attrs)["y"];
        Assert.Equal([1, 1, 3], ex.Shape);
        Near([1.5f, 3f, 4f], ex.ToArray<float>());
        var inc = RunOne("AveragePool", 19, [("x", x)], ["y"], [.. attrs, AttributeValue.Of("count_include_pad", 1L)])["y"];
        Near([1f, 3f, 2f], inc.ToArray<float>());
    }

    [Theory]
    [InlineData("MaxPool")]
    [InlineData("AveragePool")]
    [InlineData("GlobalAveragePool")]
    [InlineData("GlobalMaxPool")]
    [InlineData("LRN")]
    [InlineData("Softmax")]
    [InlineData("ReduceSum")]
    [InlineData("ReduceMax")]
    public void RunDoesNotAllocate(string op)
    {
        var node = new Node { OpType = op, Inputs = ["x"], Outputs = ["y"] };
        var x = Tensor.FromArray(Enumerable.Range(0, 2 * 3 * 4 * 5).Select(i => (float)Math.Sin(i)).ToArray(), 2, 3, 4, 5);
        var inputs = new List<ValueInfo> { new("x", DataType.Float32, [Dim.Of(2), Dim.Of(3), Dim.Of(4), Dim.Of(5)]) };
        var feeds = new List<Tensor> { x };
        switch (op)
        {
            case "MaxPool":
                node.Outputs.Add("i");
                node.Attributes["kernel_shape"] = AttributeValue.Of("kernel_shape", new long[] { 2, 3 });
                node.Attributes["pads"] = AttributeValue.Of("pads", new long[] { 1, 1, 1, 1 });
                break;
            case "AveragePool":
                node.Attributes["kernel_shape"] = AttributeValue.Of("kernel_shape", new long[] { 3, 3 });
                node.Attributes["auto_pad"] = AttributeValue.Of("auto_pad", "SAME_UPPER");
                break;
            case "LRN": node.Attributes["size"] = AttributeValue.Of("size", 3L); break;
            case "Softmax": node.Attributes["axis"] = AttributeValue.Of("axis", 1L); break;
            case "ReduceSum":
                node.Inputs.Add("axes"); // an initializer: a run-time axes input makes the node dynamically planned
                break;
            case "ReduceMax": node.Attributes["keepdims"] = AttributeValue.Of("keepdims", 0L); break;
        }
        var graph = new Graph { Nodes = [node], Inputs = inputs, Outputs = node.Outputs.Select(o => new ValueInfo(o, DataType.Undefined, null)).ToList() };
        if (op == "ReduceSum") graph.Initializers["axes"] = Tensor.FromArray(new long[] { 1, 3 }, 2);
        var session = new InferenceSession(new Model { Graph = graph, Opsets = { [""] = 18 } });
        var ins = feeds.ToArray();
        var outs = new Tensor[node.Outputs.Count];
        session.Run(ins, outs);
        session.Run(ins, outs);
        long before = GC.GetAllocatedBytesForCurrentThread();
        session.Run(ins, outs);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
