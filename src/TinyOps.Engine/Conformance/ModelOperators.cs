using TinyOps.Engine.Onnx.Schema;

namespace TinyOps.Engine.Conformance;

/// <summary>Lists the operator types a model file uses (subgraphs included) without converting its tensors.</summary>
public static class ModelOperators
{
    public static SortedSet<string> Read(string modelPath)
    {
        var proto = ModelProto.Parser.ParseFrom(File.ReadAllBytes(modelPath));
        var ops = new SortedSet<string>(StringComparer.Ordinal);
        if (proto.Graph is not null) Collect(proto.Graph, ops);
        return ops;
    }

    private static void Collect(GraphProto g, SortedSet<string> ops)
    {
        foreach (var n in g.Node)
        {
            ops.Add(n.Domain is "" or "ai.onnx" ? n.OpType : n.Domain + ":" + n.OpType);
            foreach (var a in n.Attribute)
            {
                if (a.G is not null) Collect(a.G, ops);
                foreach (var sg in a.Graphs) Collect(sg, ops);
            }
        }
    }
}
