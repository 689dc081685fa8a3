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
}
