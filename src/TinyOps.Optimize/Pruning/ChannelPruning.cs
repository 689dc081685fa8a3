using TinyOps.Engine.Ir;
using TinyOps.Engine.Tensors;
using TinyOps.Optimize.Passes;

namespace TinyOps.Optimize.Pruning;

/// <summary>
/// Structured channel pruning: removes the output channels with the smallest L1 norm (a fraction
/// <see cref="Ratio"/> of them, at least one kept) from every Conv (group 1) or Gemm whose output reaches exactly one
/// consumer layer through channel-wise operators (Relu, LeakyRelu, Clip, Sigmoid, HardSigmoid, HardSwish, MaxPool,
/// AveragePool, BatchNormalization with constant parameters, Identity, Dropout), the consumer being a Conv (group 1),
/// a Gemm, or a Flatten followed by a Gemm / MatMul. The producer loses weight rows and bias entries, the
/// BatchNormalization its parameters, the consumer the matching input channels (for a Flatten, the matching blocks of
/// columns). The model gets smaller and cheaper; what it computes changes (no fine-tuning here), except that channels
/// whose weights and bias are all zero are removed without changing any output.
/// </summary>
public sealed class ChannelPruning : IModelPass
{
    private static readonly HashSet<string> ChannelWise = new(StringComparer.Ordinal)
        { "Relu", "LeakyRelu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "MaxPool", "AveragePool", "BatchNormalization", "Identity", "Dropout" };

    public ChannelPruning(double ratio)
    {
        if (!(ratio >= 0 && ratio < 1))
            throw new ArgumentOutOfRangeException(nameof(ratio), ratio, "the channel ratio is the fraction of each layer's output channels removed, from 0 up to (not including) 1");
        Ratio = ratio;
    }

    public double Ratio { get; }
    public string Name => "prune-channels";

    public PassOutcome Run(Model model, PassContext context)
    {
        var edit = new GraphEdit(model);
        var consumers = edit.Consumers();
        var details = new List<string>();
        int layers = 0, removedTotal = 0;
        foreach (var producer in edit.Graph.Nodes.ToList())
        {
            if (!TryFindChain(producer, edit, consumers, out var chain, out var consumer, out var flatten)) continue;
            var w = edit.Graph.Initializers[producer.Inputs[1]];
            int m = OutputChannels(producer, w);
            int remove = Math.Min((int)Math.Floor(Ratio * m), m - 1);
            var norms = ChannelNorms(producer, w, edit, m);
            var keep = Enumerable.Range(0, m).OrderByDescending(c => norms[c]).ThenBy(c => c).Take(m - remove).Order().ToArray();
            if (keep.Length == m) continue;
            if (!ApplyToConsumer(consumer, flatten, keep, m, edit)) continue;
            ApplyToProducer(producer, keep, edit);
            foreach (var bn in chain.Where(n => n.OpType == "BatchNormalization"))
                for (int i = 1; i < 5; i++) bn.Inputs[i] = Select(edit, bn.Inputs[i], keep, 0);
            layers++;
            removedTotal += m - keep.Length;
            details.Add($"{producer.DisplayName}: {m} -> {keep.Length} channels (consumer {consumer.DisplayName})");
        }
        if (layers > 0) edit.Graph.ValueInfos.Clear(); // declared shapes of the pruned values no longer hold
        return edit.Finish(FormattableString.Invariant($"{Name} ratio {Ratio:0.###}"), layers, $"{removedTotal} channels removed from {layers} layers", details);
    }

    private static int OutputChannels(Node producer, Tensor w) =>
        producer.OpType == "Conv" ? w.Shape[0] : producer.GetInt("transB", 0) != 0 ? w.Shape[0] : w.Shape[1];

    private static bool TryFindChain(Node producer, GraphEdit edit, Dictionary<string, List<Node>> consumers, out List<Node> chain, out Node consumer, out Node? flatten)
    {
        chain = [];
        consumer = null!;
        flatten = null;
        if (!IsPrunableLayer(producer, edit, asProducer: true)) return false;
        string value = producer.Outputs[0];
        while (true)
        {
            if (edit.GraphOutputs.Contains(value) || !consumers.TryGetValue(value, out var cs) || cs.Count != 1) return false;
            var next = cs[0];
            if (!next.IsDefaultDomain || next.Inputs.Count == 0 || next.Inputs[0] != value || next.Outputs.Count < 1) return false;
            for (int i = 1; i < next.Inputs.Count; i++)
                if (next.Inputs[i] == value) return false;
            if (ChannelWise.Contains(next.OpType))
            {
                if (next.OpType == "BatchNormalization" && (next.Inputs.Count < 5 || Enumerable.Range(1, 4).Any(i => !edit.TryFloatConstant(next.Inputs[i], out _)) || next.GetInt("training_mode", 0) != 0)) return false;
                if (next.OpType == "Clip" && Enumerable.Range(1, next.Inputs.Count - 1).Any(i => next.Inputs[i].Length > 0 && !edit.TryConstant(next.Inputs[i], out _))) return false;
                if (next.Outputs.Skip(1).Any(o => o.Length > 0)) return false;
                chain.Add(next);
                value = next.Outputs[0];
                continue;
            }
            if (next.OpType == "Flatten" && flatten is null && producer.OpType == "Conv" && next.GetInt("axis", 1) == 1)
            {
                flatten = next;
                value = next.Outputs[0];
                continue;
            }
            if (IsPrunableLayer(next, edit, asProducer: false) && (flatten is not null ? next.OpType is "Gemm" or "MatMul" : next.OpType == producer.OpType || producer.OpType == "Gemm" && next.OpType == "MatMul"))
            {
                consumer = next;
                return true;
            }
            return false;
        }
    }

    private static bool IsPrunableLayer(Node n, GraphEdit edit, bool asProducer)
    {
        if (!n.IsDefaultDomain || n.Outputs.Count != 1 || n.Inputs.Count < 2 || !edit.TryFloatConstant(n.Inputs[1], out var w)) return false;
        if (asProducer && n.HasInput(2) && !edit.TryFloatConstant(n.Inputs[2], out _)) return false;
        return n.OpType switch
        {
            "Conv" => n.GetInt("group", 1) == 1 && w.Rank >= 3,
            "Gemm" => w.Rank == 2 && n.GetInt("transA", 0) == 0 && (!asProducer || !n.HasInput(2) || edit.Graph.Initializers[n.Inputs[2]].Length == OutputChannels(n, w)),
            "MatMul" => !asProducer && w.Rank == 2,
            _ => false,
        };
    }

    private static double[] ChannelNorms(Node producer, Tensor w, GraphEdit edit, int m)
    {
        var norms = new double[m];
        var ws = w.ReadOnlySpan<float>();
        bool rows = producer.OpType == "Conv" || producer.GetInt("transB", 0) != 0;
        int per = w.Length / m;
        for (int c = 0; c < m; c++)
            for (int i = 0; i < per; i++) norms[c] += Math.Abs(rows ? ws[c * per + i] : ws[i * m + c]);
        if (producer.HasInput(2))
        {
            var b = edit.Graph.Initializers[producer.Inputs[2]].ReadOnlySpan<float>();
            for (int c = 0; c < m && b.Length == m; c++) norms[c] += Math.Abs(b[c]);
        }
        return norms;
    }

    private static void ApplyToProducer(Node p, int[] keep, GraphEdit edit)
    {
        bool rows = p.OpType == "Conv" || p.GetInt("transB", 0) != 0;
        p.Inputs[1] = Select(edit, p.Inputs[1], keep, rows ? 0 : 1);
        if (p.HasInput(2)) p.Inputs[2] = Select(edit, p.Inputs[2], keep, edit.Graph.Initializers[p.Inputs[2]].Rank - 1);
    }

    private static bool ApplyToConsumer(Node c, Node? flatten, int[] keep, int m, GraphEdit edit)
    {
        var w = edit.Graph.Initializers[c.Inputs[1]];
        if (c.OpType == "Conv")
        {
            if (w.Shape[1] != m) return false;
            c.Inputs[1] = Select(edit, c.Inputs[1], keep, 1);
            return true;
        }
        bool transB = c.OpType == "Gemm" && c.GetInt("transB", 0) != 0;
        int k = transB ? w.Shape[1] : w.Shape[0];
        if (k % m != 0 || flatten is null && k != m) return false;
        int block = k / m;
        var rowsKept = keep.SelectMany(ch => Enumerable.Range(ch * block, block)).ToArray();
        c.Inputs[1] = Select(edit, c.Inputs[1], rowsKept, transB ? 1 : 0);
        return true;
    }

    /// <summary>A new initializer holding the slices <paramref name="keep"/> of <paramref name="name"/> along <paramref name="axis"/>.</summary>
    private static string Select(GraphEdit edit, string name, int[] keep, int axis)
    {
        var t = edit.Graph.Initializers[name];
        var src = t.ReadOnlySpan<float>();
        int outer = 1, inner = 1, dim = t.Shape[axis];
        for (int i = 0; i < axis; i++) outer *= t.Shape[i];
        for (int i = axis + 1; i < t.Rank; i++) inner *= t.Shape[i];
        var dst = new float[outer * keep.Length * inner];
        for (int o = 0; o < outer; o++)
            for (int j = 0; j < keep.Length; j++)
                src.Slice((o * dim + keep[j]) * inner, inner).CopyTo(dst.AsSpan((o * keep.Length + j) * inner, inner));
        var shape = (int[])t.Shape.Clone();
        shape[axis] = keep.Length;
        return edit.AddInitializer(name + "_pruned", Tensor.FromArray(dst, shape));
    }
}
