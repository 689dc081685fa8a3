using TinyOps.Engine.Ir;
using TinyOps.Engine.Kernels;
using TinyOps.Engine.Kernels.Nn;

namespace TinyOps.Engine.Runtime.Fusion;

/// <summary>
/// A load-time graph rewrite for residual blocks: an Add (opset 7+, float) of a Conv's output and another tensor,
/// optionally with the Relu <see cref="ActivationFusion"/> gave it, becomes one Conv node that adds the other tensor
/// (its input 3) to the convolution plus bias and then applies the activation, while each finished tile is still in
/// cache: the convolution's output is never written out and read back. The fused node runs at the Add's place, where
/// both operands exist. The Conv must have no activation of its own, its output a single consumer and not be a graph
/// output. The sums are the same as the Add's, bit for bit: (conv + bias) + residual. The caller's graph is never
/// changed: a rewritten copy is returned (or the same graph when nothing fuses).
/// </summary>
internal static class ResidualFusion
{
    public static Graph Apply(Graph graph, Model model, KernelRegistry registry)
    {
        if (!ReferenceEquals(registry, KernelRegistry.Default) || model.DefaultOpset < 7) return graph;
        if (GraphRewrite.Index(graph) is not { } index) return graph;
        var producers = index.Producers;

        Dictionary<Node, Node>? replaced = null;
        HashSet<Node>? removed = null;
        foreach (var add in graph.Nodes)
        {
            if (!add.IsDefaultDomain || add.OpType != "Add" || add.Inputs.Count != 2 || add.Outputs.Count != 1 || add.Outputs[0].Length == 0) continue;
            // the Add may carry only the Relu that ActivationFusion fused into it
            string activation = add.GetString(FusedActivation.KindAttribute, "");
            if (add.Attributes.Count != (activation.Length == 0 ? 0 : 2) || (activation.Length > 0 && activation != "Relu")) continue;
            for (int side = 0; side < 2; side++)
            {
                string mid = add.Inputs[side], other = add.Inputs[1 - side];
                if (other.Length == 0 || mid == other || !index.ReadOnlyOnce(mid)) continue;
                if (!producers.TryGetValue(mid, out var conv) || !conv.IsDefaultDomain || conv.OpType != "Conv" || conv.Outputs.Count != 1) continue;
                if (conv.Inputs.Count is < 2 or > 3 || conv.HasAttribute(FusedActivation.KindAttribute) || conv.HasAttribute(FusedActivation.ResidualAttribute)) continue;
                if ((removed is not null && removed.Contains(conv)) || (replaced is not null && replaced.ContainsKey(conv))) continue;
                // the fused node runs at the Add's place, where both operands exist
                var fused = GraphRewrite.Copy(conv, [conv.Inputs[0], conv.Inputs[1], conv.Inputs.Count > 2 ? conv.Inputs[2] : "", other], add.Outputs[0], add.Index,
                    AttributeValue.Of(FusedActivation.ResidualAttribute, 1L));
                if (activation.Length > 0)
                {
                    fused.Attributes[FusedActivation.KindAttribute] = add.Attributes[FusedActivation.KindAttribute];
                    fused.Attributes[FusedActivation.ParamsAttribute] = add.Attributes[FusedActivation.ParamsAttribute];
                }
                (replaced ??= [])[add] = fused;
                (removed ??= []).Add(conv);
                break;
            }
        }
        return GraphRewrite.Apply(graph, replaced, removed);
    }
}
