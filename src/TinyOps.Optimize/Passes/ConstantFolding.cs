using TinyOps.Engine;
using TinyOps.Engine.Ir;
using TinyOps.Engine.Runtime;
using TinyOps.Engine.Tensors;

namespace TinyOps.Optimize.Passes;

/// <summary>
/// Constant folding: every node whose inputs are all constants (initializers that are not graph inputs, or outputs
/// of nodes folded before it) is run once in the engine and replaced by initializers holding its outputs. Constant
/// nodes become initializers, an Identity of a constant is replaced by the constant itself (its readers read the
/// original initializer, so weights torch exports through Identity stay shared). The engine computes each folded value with
/// the kernel that would have computed it at run time, so the model's outputs do not change by a single bit.
/// <para>
/// Not folded: nodes with subgraphs, random operators, QuantizeLinear / DequantizeLinear / DynamicQuantizeLinear
/// (folding them would undo quantization), nodes whose outputs are graph outputs, and nodes whose outputs would take
/// more than <see cref="MaxGrowthBytes"/> bytes beyond their inputs (Expand, Tile, ConstantOfShape: the file would grow),
/// nor a Cast of float16 weights (<see cref="Float16Weights"/>). Unused initializers are dropped afterwards.
/// </para>
/// </summary>
public sealed class ConstantFolding : IModelPass
{
    private static readonly HashSet<string> NeverFold = new(StringComparer.Ordinal)
    {
        "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "RandomNormal", "RandomUniform",
        "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli",
    };

    public string Name => "fold-constants";

    /// <summary>A folded node's outputs may exceed its inputs by this many bytes (default 64 KiB).</summary>
    public long MaxGrowthBytes { get; init; } = 64 * 1024;

    public PassOutcome Run(Model model, PassContext context)
    {
        var edit = new GraphEdit(model);
        var g = edit.Graph;
        var folded = new List<string>();
        var kept = new List<Node>(g.Nodes.Count);
        var alias = new Dictionary<string, string>(StringComparer.Ordinal); // Identity outputs -> the constant they copy
        var subgraphReads = new HashSet<string>(g.Nodes.SelectMany(GraphEdit.SubgraphReads), StringComparer.Ordinal);
        foreach (var n in g.Nodes)
        {
            context.Cancellation.ThrowIfCancellationRequested();
            for (int i = 0; i < n.Inputs.Count; i++)
                if (alias.TryGetValue(n.Inputs[i], out var a)) n.Inputs[i] = a;
            if (n.OpType == "Identity" && n.IsDefaultDomain && IsCandidate(n, edit) && !subgraphReads.Contains(n.Outputs[0]))
            {
                alias[n.Outputs[0]] = n.Inputs[0]; // a shared weight stays one initializer, not a copy per reader
                folded.Add(n.DisplayName);
                continue;
            }
            if (!IsCandidate(n, edit) || Evaluate(n, edit, model) is not { } values)
            {
                kept.Add(n);
                continue;
            }
            for (int i = 0; i < n.Outputs.Count; i++)
                if (n.Outputs[i].Length > 0) g.Initializers[n.Outputs[i]] = values[i];
            folded.Add(n.DisplayName);
        }
        g.Nodes.Clear();
        g.Nodes.AddRange(kept);
        int dropped = edit.RemoveUnusedInitializers();
        return edit.Finish(Name, folded.Count, $"{folded.Count} nodes folded into constants, {dropped} unused initializers dropped", folded);
    }

    private static bool IsCandidate(Node n, GraphEdit edit)
    {
        if (!n.IsDefaultDomain || NeverFold.Contains(n.OpType) || GraphEdit.HasSubgraph(n) || n.Outputs.Count == 0) return false;
        foreach (var o in n.Outputs) if (edit.GraphOutputs.Contains(o)) return false;
        foreach (var i in n.Inputs) if (i.Length > 0 && !edit.TryConstant(i, out _)) return false;
        // a Cast of float16 weights is how float16 storage is read; folding it would store them as float32 again
        if (n.OpType == "Cast" && edit.TryConstant(n.Inputs[0], out var src) && src.Type == DataType.Float16) return false;
        return true;
    }

    /// <summary>Runs one node on its constant inputs; null when the engine cannot run it or the result is too large.</summary>
    private Tensor[]? Evaluate(Node n, GraphEdit edit, Model source)
    {
        var g = new Graph { Name = "fold" };
        long inputBytes = 0;
        foreach (var i in n.Inputs)
        {
            if (i.Length == 0 || g.Initializers.ContainsKey(i)) continue;
            edit.TryConstant(i, out var t);
            g.Initializers[i] = t;
            inputBytes += t.Type.IsSupported() ? t.ByteLength : 0;
        }
        var copy = Quantization.GraphPreparation.Copy(n);
        g.Nodes.Add(copy);
        foreach (var o in n.Outputs) if (o.Length > 0) g.Outputs.Add(new ValueInfo(o, DataType.Undefined, null));
        var m = new Model { IrVersion = source.IrVersion, Graph = g };
        foreach (var (k, v) in source.Opsets) m.Opsets[k] = v;
        try
        {
            var session = new InferenceSession(m, new SessionOptions { FuseActivations = false, FuseDequantizeChains = false });
            var outs = new Tensor[g.Outputs.Count];
            session.Run([], outs);
            long outBytes = 0;
            foreach (var t in outs) outBytes += t.ByteLength;
            if (outBytes > inputBytes + MaxGrowthBytes) return null;
            var values = new Tensor[n.Outputs.Count];
            for (int i = 0, k = 0; i < n.Outputs.Count; i++)
                values[i] = n.Outputs[i].Length > 0 ? outs[k++].Clone() : null!;
            return values;
        }
        catch (EngineException)
        {
            return null; // the engine cannot run it here (unsupported type or operator): leave it to the runtime
        }
    }
}
