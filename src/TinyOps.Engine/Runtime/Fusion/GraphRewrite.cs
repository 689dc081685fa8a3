using TinyOps.Engine.Ir;

namespace TinyOps.Engine.Runtime.Fusion;

/// <summary>The step every load-time fusion ends with: a copy of the graph with nodes replaced or removed.</summary>
internal static class GraphRewrite
{
    /// <summary>
    /// The graph with each node in <paramref name="replaced"/> swapped for its fused node (at its position) and the
    /// nodes in <paramref name="removed"/> dropped; everything else is shared with the original, which is unchanged.
    /// Returns the graph itself when nothing was replaced.
    /// </summary>
    public static Graph Apply(Graph graph, Dictionary<Node, Node>? replaced, HashSet<Node>? removed)
    {
        if (replaced is null) return graph;
        var nodes = new List<Node>(graph.Nodes.Count);
        foreach (var node in graph.Nodes)
        {
            if (removed is not null && removed.Contains(node)) continue;
            nodes.Add(replaced.TryGetValue(node, out var f) ? f : node);
        }
        return new Graph
        {
            Name = graph.Name,
            Nodes = nodes,
            Inputs = graph.Inputs,
            Outputs = graph.Outputs,
            ValueInfos = graph.ValueInfos,
            Initializers = graph.Initializers,
            DocString = graph.DocString,
        };
    }

    /// <summary>
    /// The fused node of a rewrite: a copy of <paramref name="node"/> (name, op type, domain, attributes, doc string)
    /// that reads <paramref name="inputs"/>, writes the single value <paramref name="output"/>, runs at
    /// <paramref name="index"/> and carries the <paramref name="extra"/> attributes besides its own (each under its
    /// name, after them). The original node is unchanged.
    /// </summary>
    public static Node Copy(Node node, List<string> inputs, string output, int index, params ReadOnlySpan<AttributeValue> extra)
    {
        var fused = new Node
        {
            Name = node.Name,
            OpType = node.OpType,
            Domain = node.Domain,
            Inputs = inputs,
            Outputs = [output],
            Attributes = new Dictionary<string, AttributeValue>(node.Attributes, StringComparer.Ordinal),
            DocString = node.DocString,
            Index = index,
        };
        foreach (var a in extra) fused.Attributes[a.Name] = a;
        return fused;
    }

    /// <summary>
    /// Who reads and who writes each value of a graph, for the fusions: consumer counts (a value read inside a
    /// subgraph counts two more, so it is never fused away), producers, and the graph's outputs. Null when a node
    /// carries a list of graphs (no rewrite around those).
    /// </summary>
    public static ValueIndex? Index(Graph graph)
    {
        var consumers = new Dictionary<string, int>(StringComparer.Ordinal);
        var producers = new Dictionary<string, Node>(StringComparer.Ordinal);
        foreach (var node in graph.Nodes)
        {
            foreach (var i in node.Inputs)
                if (i.Length > 0) consumers[i] = consumers.GetValueOrDefault(i) + 1;
            foreach (var a in node.Attributes.Values)
            {
                if (a.Kind == AttributeKind.Graph && a.Graph is not null)
                    foreach (var f in CompiledGraph.FreeVariables(a.Graph)) consumers[f] = consumers.GetValueOrDefault(f) + 2;
                if (a.Kind == AttributeKind.Graphs) return null;
            }
            foreach (var o in node.Outputs) if (o.Length > 0) producers[o] = node;
        }
        var outputs = new HashSet<string>(StringComparer.Ordinal);
        foreach (var o in graph.Outputs) outputs.Add(o.Name);
        return new ValueIndex(consumers, producers, outputs);
    }

    /// <summary>See <see cref="Index"/>.</summary>
    public sealed record ValueIndex(Dictionary<string, int> Consumers, Dictionary<string, Node> Producers, HashSet<string> Outputs)
    {
        /// <summary>The value is read by exactly one node and is not a graph output: fusing its producer away loses nothing.</summary>
        public bool ReadOnlyOnce(string value) => value.Length > 0 && !Outputs.Contains(value) && Consumers.GetValueOrDefault(value) == 1;
    }
}
