using TinyOps.Engine.Ir;

namespace TinyOps.Optimize.Passes;

/// <summary>
/// Dead-node removal: drops every node none of whose outputs reaches a graph output (directly or through other
/// nodes, subgraphs included), then every initializer nothing reads. Graph inputs stay, so the model's interface
/// does not change; outputs are bit-identical (the removed nodes computed nothing anyone reads).
/// </summary>
public sealed class DeadNodeRemoval : IModelPass
{
    public string Name => "remove-dead-nodes";

    public PassOutcome Run(Model model, PassContext context)
    {
        var edit = new GraphEdit(model);
        var g = edit.Graph;
        var live = new HashSet<string>(edit.GraphOutputs, StringComparer.Ordinal);
        var keep = new HashSet<Node>();
        for (int k = g.Nodes.Count - 1; k >= 0; k--) // topological order: consumers come after producers
        {
            var n = g.Nodes[k];
            if (!n.Outputs.Any(live.Contains)) continue;
            keep.Add(n);
            foreach (var i in n.Inputs) if (i.Length > 0) live.Add(i);
            foreach (var s in GraphEdit.SubgraphReads(n)) live.Add(s);
        }
        var removed = g.Nodes.Where(n => !keep.Contains(n)).Select(n => n.DisplayName).ToList();
        g.Nodes.RemoveAll(n => !keep.Contains(n));
        int dropped = edit.RemoveUnusedInitializers();
        return edit.Finish(Name, removed.Count + dropped, $"{removed.Count} dead nodes and {dropped} unused initializers removed", removed);
    }
}
