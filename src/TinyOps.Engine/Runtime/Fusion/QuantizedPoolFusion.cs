using TinyOps.Engine.Ir;
using TinyOps.Engine.Kernels;
using TinyOps.Engine.Kernels.Quantized;

namespace TinyOps.Engine.Runtime.Fusion;

/// <summary>
/// A load-time graph rewrite for quantized CNNs: a QLinearConv whose output feeds only a 2 × 2, stride 2 MaxPool
/// (no padding, no dilation, floor mode, no Indices output) becomes one QLinearConv that pools before it requantizes,
/// where its route allows (see <see cref="IntDirectConv.RunPooled"/>), so three quarters of the outputs are never
/// requantized nor written; other routes pool the bytes they wrote. The results are the MaxPool's, bit for bit. The
/// convolution's output must not be a graph output. The caller's graph is never changed: a rewritten copy is
/// returned (or the same graph when nothing fuses).
/// </summary>
internal static class QuantizedPoolFusion
{
    public static Graph Apply(Graph graph, Model model, KernelRegistry registry)
    {
        if (!ReferenceEquals(registry, KernelRegistry.Default) || model.DefaultOpset < 10) return graph;
        if (GraphRewrite.Index(graph) is not { } index) return graph;
        var producers = index.Producers;

        Dictionary<Node, Node>? replaced = null;
        HashSet<Node>? removed = null;
        foreach (var pool in graph.Nodes)
        {
            if (!pool.IsDefaultDomain || pool.OpType != "MaxPool" || pool.Inputs.Count != 1 || !IsPlain2x2(pool)) continue;
            if (pool.Outputs.Count != 1 || pool.Outputs[0].Length == 0) continue;
            string mid = pool.Inputs[0];
            if (!index.ReadOnlyOnce(mid)) continue;
            if (!producers.TryGetValue(mid, out var conv) || !conv.IsDefaultDomain || conv.OpType != "QLinearConv" || conv.Outputs.Count != 1) continue;
            if (conv.HasAttribute(IntConvKernel.PoolAttribute) || !Is2d(conv)) continue;
            var fused = GraphRewrite.Copy(conv, [.. conv.Inputs], pool.Outputs[0], conv.Index, AttributeValue.Of(IntConvKernel.PoolAttribute, 1L));
            (replaced ??= [])[conv] = fused;
            (removed ??= []).Add(pool);
        }
        return GraphRewrite.Apply(graph, replaced, removed);
    }

    /// <summary>kernel_shape [2, 2], strides [2, 2], no padding, dilation 1, floor mode.</summary>
    private static bool IsPlain2x2(Node pool)
    {
        foreach (var (name, a) in pool.Attributes)
        {
            bool ok = name switch
            {
                "kernel_shape" => a.Ints is [2, 2],
                "strides" => a.Ints is [2, 2],
                "pads" => a.Ints.Length == 4 && a.Ints.All(p => p == 0),
                "dilations" => a.Ints.All(d => d == 1),
                "ceil_mode" => a.Int == 0,
                "auto_pad" => a.Kind == AttributeKind.String && a.String is "NOTSET" or "VALID",
                "storage_order" => true, // only shapes the Indices output, which a fusable pool does not have
                _ => false,
            };
            if (!ok) return false;
        }
        return pool.Attributes.TryGetValue("kernel_shape", out var k) && k.Ints is [2, 2]
            && pool.Attributes.TryGetValue("strides", out var s) && s.Ints is [2, 2];
    }

    /// <summary>A 2-D convolution (kernel_shape given, two dimensions), as the fused pool needs.</summary>
    private static bool Is2d(Node conv) =>
        conv.Attributes.TryGetValue("kernel_shape", out var k) && k.Ints.Length == 2;
}
