using TinyOps.Engine.Ir;
using TinyOps.Engine.Kernels;
using TinyOps.Engine.Kernels.Pooling;
using TinyOps.Engine.Kernels.Quantized;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Runtime.Fusion;

/// <summary>
/// A load-time graph rewrite for the float steps a QOperator graph keeps between quantized operators, a Gemm's bias
/// after QLinearMatMul or a residual sum: DequantizeLinear → Add(constant or any float tensor) → [Relu] → [QuantizeLinear] becomes one node
/// (<see cref="DequantizeChainKernel"/>) that runs the same arithmetic in one pass over the values, so the
/// intermediate tensors are never planned and three or four per-node dispatches become one. The result is bit for
/// bit that of the separate nodes: the fused kernel uses the same vector routines and scalar formulas they do; except,
/// when asked (<c>ratios</c>), the sum of two quantized addends that is quantized again, which then runs by ratio
/// multipliers (<see cref="SessionOptions.ExactQuantizedAdds"/>).
/// <para>
/// Conditions: every intermediate value has exactly that one consumer and is not a graph output; the scales and
/// zero points are one-element initializers (per-tensor quantization); the Add's other input is a float32
/// initializer or a value computed in the graph (the fused node takes the Add's place in the order, after both
/// addends; of two DequantizeLinear addends the first leads the chain and the second is fused as well when the Add
/// is its only reader, so both addends are read as bytes); DequantizeLinear and QuantizeLinear carry no attribute but axis (meaningless per tensor), the Add
/// and Relu none, and the model's opset is at least 10 (numpy broadcasting for Add). The fused node keeps the op type
/// DequantizeLinear with the internal attribute <see cref="DequantizeChainKernel.StepsAttribute"/>, which the
/// registered DequantizeLinear factory sends to the fused kernel. A per-tensor DequantizeLinear whose only reader is a
/// GlobalAveragePool (a quantized classifier head) becomes that GlobalAveragePool reading the bytes, with
/// <see cref="GlobalPoolKernel.DequantizedAttribute"/> (bit for bit the same averages, no float tensor between). As with <see cref="ActivationFusion"/>, the
/// caller's graph is never changed, and only the built-in registry gets the rewrite.
/// </para>
/// </summary>
internal static class DequantizeChainFusion
{
    /// <param name="ratios">Sums of two quantized addends that are quantized again run by ratio multipliers (see <see cref="SessionOptions.ExactQuantizedAdds"/>).</param>
    public static Graph Apply(Graph graph, Model model, KernelRegistry registry, bool ratios = false)
    {
        if (!ReferenceEquals(registry, KernelRegistry.Default) || model.DefaultOpset < 10) return graph;
        if (GraphRewrite.Index(graph) is not { } index) return graph;
        var producers = index.Producers;
        // the node that reads each value as an input (the last one): asked only of values read once, where it is the one
        var reader = new Dictionary<string, Node>(StringComparer.Ordinal);
        foreach (var node in graph.Nodes)
            foreach (var i in node.Inputs)
                if (i.Length > 0) reader[i] = node;

        Node? SoleConsumer(string value) => index.ReadOnlyOnce(value) ? reader[value] : null;

        Dictionary<Node, Node>? replaced = null;
        HashSet<Node>? removed = null;
        foreach (var dq in graph.Nodes)
        {
            if (!dq.IsDefaultDomain || dq.OpType != "DequantizeLinear" || dq.HasAttribute(DequantizeChainKernel.StepsAttribute)) continue;
            if (dq.Inputs.Count is < 2 or > 3 || dq.Outputs.Count != 1 || !OnlyAxis(dq)) continue;
            if (!IsScalarConstant(graph, dq.Inputs[1], DataType.Float32) || (dq.HasInput(2) && !IsScalarConstant(graph, dq.Inputs[2], null))) continue;
            if ((removed?.Contains(dq) ?? false) || (replaced?.ContainsKey(dq) ?? false)) continue;

            var add = SoleConsumer(dq.Outputs[0]);
            if (add is { OpType: "GlobalAveragePool" } && add.IsDefaultDomain && add.Inputs.Count == 1 && add.Outputs.Count == 1 && add.Attributes.Count == 0
                && !(replaced?.ContainsKey(add) ?? false))
            {
                // a classifier head's average of quantized features: pooled straight from the bytes (GlobalPoolKernel)
                var pooled = new Node
                {
                    Name = (dq.Name.Length > 0 ? dq.Name : "DequantizeLinear") + "+GlobalAveragePool",
                    OpType = "GlobalAveragePool",
                    Domain = add.Domain,
                    Inputs = [dq.Inputs[0], dq.Inputs[1], dq.HasInput(2) ? dq.Inputs[2] : ""],
                    Outputs = [add.Outputs[0]],
                    DocString = add.DocString,
                    Index = add.Index,
                };
                pooled.Attributes[GlobalPoolKernel.DequantizedAttribute] = AttributeValue.Of(GlobalPoolKernel.DequantizedAttribute, 1L);
                (replaced ??= [])[add] = pooled;
                (removed ??= []).Add(dq);
                continue;
            }
            if (add is null || !add.IsDefaultDomain || add.OpType != "Add" || add.Inputs.Count != 2 || add.Outputs.Count != 1 || add.Attributes.Count != 0) continue;
            if ((removed?.Contains(add) ?? false) || (replaced?.ContainsKey(add) ?? false)) continue; // the Add's other input was fused first
            int biasAt = add.Inputs[0] == dq.Outputs[0] ? 1 : 0;
            if (add.Inputs[1 - biasAt] != dq.Outputs[0] || add.Inputs[biasAt] == dq.Outputs[0]) continue;
            // the other addend: a float initializer (a Gemm's bias) or any tensor made before the Add (a residual:
            // another DequantizeLinear's output or a previous sum); Add requires it to be float like the DQ output
            string bias = add.Inputs[biasAt];
            if (bias.Length == 0 || (graph.Initializers.TryGetValue(bias, out var b) && b.Type != DataType.Float32)) continue;

            var chain = new List<Node> { add };
            string last = add.Outputs[0];
            bool relu = false;
            var next = SoleConsumer(last);
            if (next is { OpType: "Relu" } && next.IsDefaultDomain && next.Inputs.Count == 1 && next.Outputs.Count == 1 && next.Attributes.Count == 0)
            {
                relu = true;
                chain.Add(next);
                last = next.Outputs[0];
                next = SoleConsumer(last);
            }
            Node? q = null;
            if (next is { OpType: "QuantizeLinear" } && next.IsDefaultDomain && next.Inputs.Count is 2 or 3 && next.Inputs[0] == last
                && next.Outputs.Count == 1 && OnlyAxis(next) && IsScalarConstant(graph, next.Inputs[1], DataType.Float32)
                && (!next.HasInput(2) || IsScalarConstant(graph, next.Inputs[2], null)))
            {
                q = next;
                chain.Add(q);
                last = q.Outputs[0];
            }

            // the other addend from a per-tensor DequantizeLinear read by this Add only (a residual of a quantized
            // graph): fused too, so both addends are read as bytes
            Node? bdq = null;
            if (producers.TryGetValue(bias, out var bp) && bp != dq && bp.IsDefaultDomain && bp.OpType == "DequantizeLinear"
                && !bp.HasAttribute(DequantizeChainKernel.StepsAttribute) && bp.Inputs.Count is 2 or 3 && bp.Outputs.Count == 1 && OnlyAxis(bp)
                && IsScalarConstant(graph, bp.Inputs[1], DataType.Float32) && (!bp.HasInput(2) || IsScalarConstant(graph, bp.Inputs[2], null))
                && SoleConsumer(bias) == add && !(removed?.Contains(bp) ?? false) && !(replaced?.ContainsKey(bp) ?? false))
                bdq = bp;

            string steps = (bdq is not null && q is not null && ratios ? "R" : "") + (bdq is not null ? "Q" : "") + (relu ? "AddRelu" : "Add") + (q is not null ? "Quantize" : "");
            var fused = new Node
            {
                Name = (dq.Name.Length > 0 ? dq.Name : "DequantizeLinear") + "+" + string.Join("+", chain.Select(n => n.OpType)),
                OpType = "DequantizeLinear",
                Domain = dq.Domain,
                Inputs = bdq is null
                    ? [dq.Inputs[0], dq.Inputs[1], dq.HasInput(2) ? dq.Inputs[2] : "", bias, q?.Inputs[1] ?? "", q is not null && q.HasInput(2) ? q.Inputs[2] : ""]
                    : [dq.Inputs[0], dq.Inputs[1], dq.HasInput(2) ? dq.Inputs[2] : "", bdq.Inputs[0], q?.Inputs[1] ?? "", q is not null && q.HasInput(2) ? q.Inputs[2] : "",
                       bdq.Inputs[1], bdq.HasInput(2) ? bdq.Inputs[2] : ""],
                Outputs = [last],
                DocString = dq.DocString,
                Index = dq.Index,
            };
            fused.Attributes[DequantizeChainKernel.StepsAttribute] = AttributeValue.Of(DequantizeChainKernel.StepsAttribute, steps);
            // the fused node runs where the Add ran: a residual addend may be computed after the DequantizeLinear
            (replaced ??= [])[add] = fused;
            removed ??= [];
            removed.Add(dq);
            if (bdq is not null) removed.Add(bdq);
            foreach (var n in chain) if (n != add) removed.Add(n);
        }
        return GraphRewrite.Apply(graph, replaced, removed);
    }

    private static bool OnlyAxis(Node n)
    {
        foreach (var k in n.Attributes.Keys) if (k != "axis") return false;
        return true;
    }

    private static bool IsScalarConstant(Graph graph, string name, DataType? type) =>
        graph.Initializers.TryGetValue(name, out var t) && t.Length == 1 && (type is null || t.Type == type);
}
