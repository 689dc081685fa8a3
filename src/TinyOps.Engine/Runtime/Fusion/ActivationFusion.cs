using TinyOps.Engine.Ir;
using TinyOps.Engine.Kernels;
using TinyOps.Engine.Kernels.Nn;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Runtime.Fusion;

/// <summary>
/// A load-time graph rewrite: a Conv or Gemm whose output feeds only an element-wise activation (Relu, Clip with
/// constant bounds, LeakyRelu, HardSigmoid, HardSwish, Sigmoid) becomes one node that applies the activation in its
/// epilogue, so the intermediate tensor is never written or read. An Add followed only by a Relu (a residual
/// block's end) becomes an Add that applies the Relu to its result while it is still in cache. The intermediate must have that single consumer
/// and not be a graph output. The caller's graph is never changed: a rewritten copy is returned (or the same graph
/// when nothing fuses). Only for the built-in registry, whose Conv and Gemm kernels read the fused attributes.
/// </summary>
internal static class ActivationFusion
{
    public static Graph Apply(Graph graph, Model model, KernelRegistry registry)
    {
        if (!ReferenceEquals(registry, KernelRegistry.Default)) return graph;
        int opset = model.DefaultOpset;
        if (GraphRewrite.Index(graph) is not { } index) return graph;
        var producers = index.Producers;

        Dictionary<Node, Node>? replaced = null;
        HashSet<Node>? removed = null;
        foreach (var act in graph.Nodes)
        {
            if (!act.IsDefaultDomain || act.Inputs.Count == 0 || act.Outputs.Count != 1 || act.Outputs[0].Length == 0) continue;
            string mid = act.Inputs[0];
            if (!index.ReadOnlyOnce(mid)) continue;
            if (!producers.TryGetValue(mid, out var op) || !op.IsDefaultDomain || op.Outputs.Count != 1) continue;
            if (op.OpType is not ("Conv" or "Gemm" or "Add") || op.HasAttribute(FusedActivation.KindAttribute)) continue;
            if (removed is not null && removed.Contains(op)) continue;
            var spec = Describe(act, opset, graph, producers);
            if (spec is null) continue;
            // Add (numpy broadcasting, opset 7+) takes only Relu, applied to the sum as the Relu kernel would
            if (op.OpType == "Add" && (spec.Value.Kind != "Relu" || opset < 7 || op.Attributes.Count != 0 || ReadsDequantized(op, producers))) continue;
            var fused = GraphRewrite.Copy(op, [.. op.Inputs], act.Outputs[0], op.Index,
                AttributeValue.Of(FusedActivation.KindAttribute, spec.Value.Kind),
                AttributeValue.Of(FusedActivation.ParamsAttribute, spec.Value.Params));
            (replaced ??= [])[op] = fused;
            (removed ??= []).Add(act);
        }
        return GraphRewrite.Apply(graph, replaced, removed);
    }

    /// <summary>An Add of a DequantizeLinear output: left whole for DequantizeChainFusion, which takes the Relu too.</summary>
    private static bool ReadsDequantized(Node add, Dictionary<string, Node> producers)
    {
        foreach (var i in add.Inputs)
            if (producers.TryGetValue(i, out var p) && p.IsDefaultDomain && p.OpType == "DequantizeLinear") return true;
        return false;
    }

    /// <summary>The fused form of an activation node, or null when it is not fusable.</summary>
    private static (string Kind, float[] Params)? Describe(Node act, int opset, Graph graph, Dictionary<string, Node> producers)
    {
        switch (act.OpType)
        {
            case "Relu" when act.Inputs.Count == 1:
                return ("Relu", []);
            case "Sigmoid" when act.Inputs.Count == 1:
                return ("Sigmoid", []);
            case "HardSwish" when act.Inputs.Count == 1:
                return ("HardSwish", []);
            case "LeakyRelu" when act.Inputs.Count == 1:
                return ("LeakyRelu", [act.GetFloat("alpha", 0.01f)]);
            case "HardSigmoid" when act.Inputs.Count == 1:
                return ("HardSigmoid", [act.GetFloat("alpha", 0.2f), act.GetFloat("beta", 0.5f)]);
            case "Clip":
            {
                float lo, hi;
                if (opset < 11)
                {
                    if (act.Inputs.Count != 1) return null;
                    float defLo = opset >= 6 ? float.MinValue : float.NegativeInfinity;
                    float defHi = opset >= 6 ? float.MaxValue : float.PositiveInfinity;
                    lo = act.HasAttribute("min") ? act.GetFloat("min", 0f) : defLo;
                    hi = act.HasAttribute("max") ? act.GetFloat("max", 0f) : defHi;
                }
                else
                {
                    float? l = act.HasInput(1) ? Scalar(act.Inputs[1], graph, producers) : float.NegativeInfinity;
                    float? h = act.HasInput(2) ? Scalar(act.Inputs[2], graph, producers) : float.PositiveInfinity;
                    if (l is null || h is null) return null;
                    lo = l.Value;
                    hi = h.Value;
                }
                if (float.IsNaN(lo) || float.IsNaN(hi) || lo > hi) return null;
                return ("Clip", [lo, hi]);
            }
            default:
                return null;
        }
    }

    /// <summary>The value of a float32 scalar that is an initializer or a Constant node's output, else null.</summary>
    private static float? Scalar(string name, Graph graph, Dictionary<string, Node> producers)
    {
        Tensor? t = null;
        if (graph.Initializers.TryGetValue(name, out var init)) t = init;
        else if (producers.TryGetValue(name, out var p) && p.OpType == "Constant" && p.IsDefaultDomain)
        {
            if (p.Attributes.TryGetValue("value", out var v) && v.Kind == AttributeKind.Tensor) t = v.Tensor;
            else if (p.Attributes.TryGetValue("value_float", out var f) && f.Kind == AttributeKind.Float) return f.Float;
        }
        if (t is null || t.Type != DataType.Float32 || t.Length != 1) return null;
        return t.ReadOnlySpan<float>()[0];
    }
}
