using TinyOps.Engine.Ir;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Tests;

/// <summary>Small models built in code for tests.</summary>
internal static class TestModels
{
    public static Model Create(Graph g, int opset = 13) => new() { Graph = g, Opsets = { [""] = opset } };

    public static ValueInfo Float(string name, params long[] dims) => new(name, DataType.Float32, dims.Select(d => d < 0 ? Dim.Sym("N") : Dim.Of(d)).ToArray());

    public static Node Node(string op, string[] inputs, string[] outputs, string name = "", params AttributeValue[] attrs)
    {
        var n = new Node { OpType = op, Name = name };
        n.Inputs.AddRange(inputs);
        n.Outputs.AddRange(outputs);
        foreach (var a in attrs) n.Attributes[a.Name] = a;
        return n;
    }

    /// <summary>y = Relu(x + b), x: float [N,4].</summary>
    public static Model AddRelu()
    {
        var g = new Graph { Name = "add_relu" };
        g.Inputs.Add(Float("x", -1, 4));
        g.Outputs.Add(Float("y", -1, 4));
        g.Initializers["b"] = Tensor.FromArray([1f, -2f, 3f, -4f], 4);
        g.Nodes.Add(Node("Add", ["x", "b"], ["s"], "add"));
        g.Nodes.Add(Node("Relu", ["s"], ["y"], "relu"));
        return Create(g);
    }
}
