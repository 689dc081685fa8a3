using TinyOps.Engine.Ir;
using TinyOps.Engine.Runtime;
using TinyOps.Engine.Tensors;
using Xunit;

namespace TinyOps.Engine.Tests.Kernels;

public class ShapeOpsTests
{
    /// <summary>Runs one node whose inputs are all runtime inputs (so shape values are only known at run time).</summary>
    private static Tensor[] RunNode(string op, int opset, Tensor[] inputs, int outputs = 1, Dictionary<string, AttributeValue>? attrs = null, Dictionary<string, Tensor>? initializers = null)
    {
        var g = new Graph { Name = "g" };
        var names = new List<string>();
        for (int i = 0; i < inputs.Length; i++)
        {
            string n = "in" + i;
            names.Add(n);
            g.Inputs.Add(new ValueInfo(n, inputs[i].Type, inputs[i].Shape.Select(d => Dim.Of(d)).ToArray()));
        }
        if (initializers is not null)
            foreach (var (k, v) in initializers) { names.Add(k); g.Initializers[k] = v; }
        var node = new Node { OpType = op, Inputs = names, Attributes = attrs ?? new(StringComparer.Ordinal) };
        for (int o = 0; o < outputs; o++)
        {
            node.Outputs.Add("out" + o);
            g.Outputs.Add(new ValueInfo("out" + o, DataType.Undefined, null));
        }
        g.Nodes.Add(node);
        var model = new Model { Graph = g, Opsets = new(StringComparer.Ordinal) { [""] = opset } };
        var session = new InferenceSession(model);
        var result = new Tensor[outputs];
        var dict = new Dictionary<string, Tensor>();
        for (int i = 0; i < inputs.Length; i++) dict["in" + i] = inputs[i];
        var outs = session.Run(dict);
        for (int o = 0; o < outputs; o++) result[o] = outs["out" + o];
        // a second run reuses the plan
        outs = session.Run(dict);
        for (int o = 0; o < outputs; o++) Assert.Equal(result[o].Bytes.ToArray(), outs["out" + o].Bytes.ToArray());
        return result;
    }

    private static Dictionary<string, AttributeValue> Attrs(params AttributeValue[] a) => a.ToDictionary(x => x.Name, StringComparer.Ordinal);

    [Fact]
    public void ReshapeWithRuntimeShape()
    {
        var x = Tensor.FromArray(Enumerable.Range(0, 6).Select(i => (long)i).ToArray(), 2, 3);
        var y = RunNode("Reshape", 14, [x, Tensor.FromArray(new long[] { 3, -1 }, 2)])[0];
        Assert.Equal([3, 2], y.Shape);
        Assert.Equal([0L, 1, 2, 3, 4, 5], y.ToArray<long>());
    }

    [Fact]
    public void ReshapeOpset1Attribute()
    {
        var x = Tensor.FromArray(new sbyte[] { 1, 2, 3, 4 }, 4);
        var y = RunNode("Reshape", 1, [x], attrs: Attrs(AttributeValue.Of("shape", new long[] { 0, -1 })))[0];
        Assert.Equal([4, 1], y.Shape);
    }

    [Fact]
    public void PadEdgeAndReflectOnInt32WithCropping()
    {
        var x = Tensor.FromArray(new[] { 1, 2, 3, 4 }, 4);
        var edge = RunNode("Pad", 13, [x, Tensor.FromArray(new long[] { 2, -1 }, 2)], attrs: Attrs(AttributeValue.Of("mode", "edge")))[0];
        Assert.Equal([1, 1, 1, 2, 3], edge.ToArray<int>());
        var reflect = RunNode("Pad", 13, [x, Tensor.FromArray(new long[] { 3, 2 }, 2)], attrs: Attrs(AttributeValue.Of("mode", "reflect")))[0];
        Assert.Equal([4, 3, 2, 1, 2, 3, 4, 3, 2], reflect.ToArray<int>());
        var wrap = RunNode("Pad", 19, [x, Tensor.FromArray(new long[] { 5, 1 }, 2)], attrs: Attrs(AttributeValue.Of("mode", "wrap")))[0];
        Assert.Equal([4, 1, 2, 3, 4, 1, 2, 3, 4, 1], wrap.ToArray<int>());
        var constant = RunNode("Pad", 13, [x, Tensor.FromArray(new long[] { 1, 1 }, 2), Tensor.Scalar(9)])[0];
        Assert.Equal([9, 1, 2, 3, 4, 9], constant.ToArray<int>());
    }

    [Fact]
    public void PadOpset2Attributes()
    {
        var x = Tensor.FromArray(new[] { 1f, 2f }, 1, 2);
        var y = RunNode("Pad", 2, [x], attrs: Attrs(AttributeValue.Of("pads", new long[] { 0, 1, 0, 0 }), AttributeValue.Of("value", 5f)))[0];
        Assert.Equal([1, 3], y.Shape);
        Assert.Equal([5f, 1f, 2f], y.ToArray<float>());
    }

    [Fact]
    public void SplitUnevenOpset18AndAttributeOpset2()
    {
        var x = Tensor.FromArray(new long[] { 1, 2, 3, 4, 5 }, 5);
        var parts = RunNode("Split", 18, [x], outputs: 2, attrs: Attrs(AttributeValue.Of("num_outputs", 2L)));
        Assert.Equal([1L, 2, 3], parts[0].ToArray<long>());
        Assert.Equal([4L, 5], parts[1].ToArray<long>());
        parts = RunNode("Split", 2, [x], outputs: 2, attrs: Attrs(AttributeValue.Of("split", new long[] { 1, 4 })));
        Assert.Equal([1L], parts[0].ToArray<long>());
        Assert.Equal([2L, 3, 4, 5], parts[1].ToArray<long>());
    }

    [Fact]
    public void SliceNegativeStepsWithInt32Indices()
    {
        var x = Tensor.FromArray(Enumerable.Range(0, 10).Select(i => (byte)i).ToArray(), 10);
        var y = RunNode("Slice", 13, [x, Tensor.FromArray(new[] { -1 }, 1), Tensor.FromArray(new[] { int.MinValue }, 1), Tensor.FromArray(new[] { 0 }, 1), Tensor.FromArray(new[] { -3 }, 1)])[0];
        Assert.Equal(new byte[] { 9, 6, 3, 0 }, y.ToArray<byte>());
        var old = RunNode("Slice", 1, [x], attrs: Attrs(AttributeValue.Of("starts", new long[] { 2 }), AttributeValue.Of("ends", new long[] { 100 })))[0];
        Assert.Equal(new byte[] { 2, 3, 4, 5, 6, 7, 8, 9 }, old.ToArray<byte>());
    }

    [Fact]
    public void GatherBoolWithInt32Indices()
    {
        var x = Tensor.FromArray(new[] { true, false, true, true, false, false }, 2, 3);
        var y = RunNode("Gather", 13, [x, Tensor.FromArray(new[] { -1, 0 }, 2)], attrs: Attrs(AttributeValue.Of("axis", 1L)))[0];
        Assert.Equal([2, 2], y.Shape);
        Assert.Equal([true, true, false, true], y.ToArray<bool>());
    }

    [Fact]
    public void TileExpandTransposeOnInt64()
    {
        var x = Tensor.FromArray(new long[] { 1, 2 }, 2, 1);
        var tiled = RunNode("Tile", 13, [x, Tensor.FromArray(new long[] { 1, 3 }, 2)])[0];
        Assert.Equal([1L, 1, 1, 2, 2, 2], tiled.ToArray<long>());
        var expanded = RunNode("Expand", 13, [x, Tensor.FromArray(new long[] { 2, 1, 2 }, 3)])[0];
        Assert.Equal([2, 2, 2], expanded.Shape);
        Assert.Equal([1L, 1, 2, 2, 1, 1, 2, 2], expanded.ToArray<long>());
        var t = RunNode("Transpose", 13, [Tensor.FromArray(new long[] { 1, 2, 3, 4, 5, 6 }, 2, 3)])[0];
        Assert.Equal([3, 2], t.Shape);
        Assert.Equal([1L, 4, 2, 5, 3, 6], t.ToArray<long>());
    }

    [Fact]
    public void SqueezeUnsqueezeAcrossOpsets()
    {
        var x = Tensor.FromArray(new[] { 1f, 2f }, 1, 2, 1);
        Assert.Equal([2], RunNode("Squeeze", 11, [x])[0].Shape);
        Assert.Equal([2, 1], RunNode("Squeeze", 13, [x, Tensor.FromArray(new long[] { 0 }, 1)])[0].Shape);
        Assert.Equal([1, 1, 2, 1], RunNode("Unsqueeze", 11, [x], attrs: Attrs(AttributeValue.Of("axes", new long[] { 0 })))[0].Shape);
        Assert.Equal([1, 2, 1, 1], RunNode("Unsqueeze", 13, [x, Tensor.FromArray(new long[] { -1 }, 1)])[0].Shape);
    }

    [Fact]
    public void ConstantOfShapeAndShape()
    {
        var y = RunNode("ConstantOfShape", 20, [Tensor.FromArray(new long[] { 2, 2 }, 2)], attrs: Attrs(AttributeValue.Of("value", Tensor.FromArray(new[] { 7 }, 1))))[0];
        Assert.Equal([7, 7, 7, 7], y.ToArray<int>());
        var s = RunNode("Shape", 15, [Tensor.Zeros(DataType.UInt8, 2, 3, 4)], attrs: Attrs(AttributeValue.Of("start", -2L)))[0];
        Assert.Equal([3L, 4], s.ToArray<long>());
    }

    [Fact]
    public void ResizeNearestUInt8AndLinearInt32()
    {
        var x = Tensor.FromArray(new byte[] { 10, 20 }, 1, 2);
        var y = RunNode("Resize", 13, [x], attrs: Attrs(AttributeValue.Of("mode", "nearest")),
            initializers: new() { ["roi"] = Tensor.FromArray(Array.Empty<float>(), 0), ["scales"] = Tensor.FromArray(new[] { 1f, 2f }, 2) })[0];
        Assert.Equal(new byte[] { 10, 10, 20, 20 }, y.ToArray<byte>());
        var xi = Tensor.FromArray(new[] { 0, 100 }, 2);
        var yi = RunNode("Resize", 19, [xi], attrs: Attrs(AttributeValue.Of("mode", "linear"), AttributeValue.Of("coordinate_transformation_mode", "align_corners")),
            initializers: new() { ["roi"] = Tensor.FromArray(Array.Empty<float>(), 0), ["scales"] = Tensor.FromArray(new[] { 2.5f }, 1) })[0];
        Assert.Equal([0, 25, 50, 75, 100], yi.ToArray<int>());
    }

    [Fact]
    public void ResizeOpset10ScalesNearest()
    {
        var x = Tensor.FromArray(new[] { 1f, 2f }, 2);
        var y = RunNode("Resize", 10, [x], initializers: new() { ["scales"] = Tensor.FromArray(new[] { 2f }, 1) })[0];
        Assert.Equal([1f, 1f, 2f, 2f], y.ToArray<float>());
    }

    [Theory]
    [InlineData("Pad")]
    [InlineData("Slice")]
    [InlineData("Resize")]
    [InlineData("Transpose")]
    [InlineData("Gather")]
    [InlineData("Tile")]
    [InlineData("Concat")]
    public void RunDoesNotAllocate(string op)
    {
        var g = new Graph { Name = "g" };
        g.Inputs.Add(new ValueInfo("x", DataType.Float32, [Dim.Of(1), Dim.Of(2), Dim.Of(4), Dim.Of(4)]));
        var node = new Node { OpType = op, Inputs = ["x"], Outputs = ["y"] };
        switch (op)
        {
            case "Pad":
                g.Initializers["p"] = Tensor.FromArray(new long[] { 0, 0, 1, 2, 0, 0, 2, 1 }, 8);
                node.Inputs.Add("p");
                node.Attributes["mode"] = AttributeValue.Of("mode", "reflect");
                break;
            case "Slice":
                g.Initializers["s"] = Tensor.FromArray(new long[] { 3, 1 }, 2);
                g.Initializers["e"] = Tensor.FromArray(new long[] { 0, 4 }, 2);
                g.Initializers["a"] = Tensor.FromArray(new long[] { 2, 3 }, 2);
                g.Initializers["st"] = Tensor.FromArray(new long[] { -1, 2 }, 2);
                node.Inputs.AddRange(["s", "e", "a", "st"]);
                break;
            case "Resize":
                g.Initializers["roi"] = Tensor.FromArray(Array.Empty<float>(), 0);
                g.Initializers["sc"] = Tensor.FromArray(new[] { 1f, 1f, 1.5f, 0.5f }, 4);
                node.Inputs.AddRange(["roi", "sc"]);
                node.Attributes["mode"] = AttributeValue.Of("mode", "cubic");
                break;
            case "Transpose":
                node.Attributes["perm"] = AttributeValue.Of("perm", new long[] { 0, 3, 1, 2 });
                break;
            case "Gather":
                g.Initializers["i"] = Tensor.FromArray(new long[] { 3, -1, 0 }, 3);
                node.Inputs.Add("i");
                node.Attributes["axis"] = AttributeValue.Of("axis", 2L);
                break;
            case "Tile":
                g.Initializers["r"] = Tensor.FromArray(new long[] { 1, 2, 1, 3 }, 4);
                node.Inputs.Add("r");
                break;
            case "Concat":
                node.Inputs.Add("x");
                node.Attributes["axis"] = AttributeValue.Of("axis", -1L);
                break;
        }
        g.Nodes.Add(node);
        g.Outputs.Add(new ValueInfo("y", DataType.Float32, null));
        var session = new InferenceSession(new Model { Graph = g, Opsets = new(StringComparer.Ordinal) { [""] = 19 } });
        var x = Tensor.FromArray(Enumerable.Range(0, 32).Select(i => (float)i).ToArray(), 1, 2, 4, 4);
        var inputs = new[] { x };
        var outputs = new Tensor[1];
        session.Run(inputs, outputs);
        session.Run(inputs, outputs);
        long before = GC.GetAllocatedBytesForCurrentThread();
        session.Run(inputs, outputs);
        long after = GC.GetAllocatedBytesForCurrentThread();
        Assert.Equal(0, after - before);
    }
}
