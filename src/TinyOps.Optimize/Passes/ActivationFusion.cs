using TinyOps.Engine.Ir;
using TinyOps.Engine.Tensors;

namespace TinyOps.Optimize.Passes;

/// <summary>
/// Conv/Gemm + activation fusion: a Conv or Gemm whose output feeds only an activation (and is no graph output)
/// becomes one ONNX Runtime contrib node, com.microsoft FusedConv (Relu, Sigmoid, LeakyRelu, HardSigmoid, Clip with
/// constant bounds) or FusedGemm (Relu, Sigmoid, LeakyRelu, HardSigmoid). Both ONNX Runtime and the TinyOps engine
/// run them; the engine applies the activation to each output element as the unfused pair would, so outputs are
/// bit-identical. The file then needs a runtime that knows the com.microsoft domain (ONNX Runtime, TinyOps); keep
/// the pass out of a recipe whose devices run another runtime.
/// </summary>
public sealed class ActivationFusion : IModelPass
{
    public const string MicrosoftDomain = "com.microsoft";

    public string Name => "fuse-activations";

    public PassOutcome Run(Model model, PassContext context)
    {
        var edit = new GraphEdit(model);
        var g = edit.Graph;
        var consumers = edit.Consumers();
        var producers = edit.Producers();
        var removed = new HashSet<Node>();
        var fused = new List<string>();
        for (int k = 0; k < g.Nodes.Count; k++)
        {
            var act = g.Nodes[k];
            if (!act.IsDefaultDomain || act.Inputs.Count == 0 || act.Outputs.Count != 1) continue;
            string mid = act.Inputs[0];
            if (edit.GraphOutputs.Contains(mid) || !consumers.TryGetValue(mid, out var cs) || cs.Count != 1) continue;
            if (!producers.TryGetValue(mid, out var op) || !op.IsDefaultDomain || op.Outputs.Count != 1 || op.OpType is not ("Conv" or "Gemm")) continue;
            if (op.OpType == "Gemm" && edit.Opset < 11 && op.Inputs.Count < 3) continue;
            var spec = Describe(act, op.OpType == "Conv", edit);
            if (spec is null) continue;
            var f = new Node
            {
                Name = op.Name,
                OpType = op.OpType == "Conv" ? "FusedConv" : "FusedGemm",
                Domain = MicrosoftDomain,
                Inputs = [.. op.Inputs],
                Outputs = [act.Outputs[0]],
                DocString = op.DocString,
            };
            foreach (var (name, a) in op.Attributes)
                if (!(op.OpType == "Gemm" && name == "broadcast")) f.Attributes[name] = a;
            f.Attributes["activation"] = AttributeValue.Of("activation", spec.Value.Kind);
            if (op.OpType == "Conv")
            {
                if (spec.Value.Params.Length > 0) f.Attributes["activation_params"] = AttributeValue.Of("activation_params", spec.Value.Params);
            }
            else
            {
                if (spec.Value.Params.Length > 0) f.Attributes["activation_alpha"] = AttributeValue.Of("activation_alpha", spec.Value.Params[0]);
                if (spec.Value.Params.Length > 1) f.Attributes["activation_beta"] = AttributeValue.Of("activation_beta", spec.Value.Params[1]);
            }
            g.Nodes[g.Nodes.IndexOf(op)] = f;
            removed.Add(act);
            fused.Add($"{op.DisplayName} + {act.DisplayName}");
        }
        g.Nodes.RemoveAll(removed.Contains);
        return edit.Finish(Name, fused.Count, $"{fused.Count} Conv/Gemm + activation pairs fused (com.microsoft FusedConv/FusedGemm)", fused,
            new Dictionary<string, long> { [MicrosoftDomain] = 1 });
    }

    private static (string Kind, float[] Params)? Describe(Node act, bool conv, GraphEdit edit)
    {
        switch (act.OpType)
        {
            case "Relu" when act.Inputs.Count == 1: return ("Relu", []);
            case "Sigmoid" when act.Inputs.Count == 1: return ("Sigmoid", []);
            case "LeakyRelu" when act.Inputs.Count == 1: return ("LeakyRelu", [act.GetFloat("alpha", 0.01f)]);
            case "HardSigmoid" when act.Inputs.Count == 1: return ("HardSigmoid", [act.GetFloat("alpha", 0.2f), act.GetFloat("beta", 0.5f)]);
            case "Clip" when conv:
            {
                float lo, hi;
                if (edit.Opset < 11)
                {
                    if (act.Inputs.Count != 1) return null;
                    lo = act.HasAttribute("min") ? act.GetFloat("min", 0) : float.MinValue;
                    hi = act.HasAttribute("max") ? act.GetFloat("max", 0) : float.MaxValue;
                }
                else
                {
                    if (!Bound(act, 1, float.NegativeInfinity, edit, out lo) || !Bound(act, 2, float.PositiveInfinity, edit, out hi)) return null;
                }
                return float.IsNaN(lo) || float.IsNaN(hi) || lo > hi ? null : ("Clip", [lo, hi]);
            }
            default: return null;
        }
    }

    private static bool Bound(Node clip, int input, float fallback, GraphEdit edit, out float value)
    {
        value = fallback;
        if (!clip.HasInput(input)) return true;
        if (!edit.TryConstant(clip.Inputs[input], out var t) || t.Type != DataType.Float32 || t.Length != 1) return false;
        value = t.ReadOnlySpan<float>()[0];
        return true;
    }
}
