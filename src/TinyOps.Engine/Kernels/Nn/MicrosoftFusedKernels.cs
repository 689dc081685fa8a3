using TinyOps.Engine.Ir;

namespace TinyOps.Engine.Kernels.Nn;

/// <summary>
/// ONNX Runtime's contrib operators com.microsoft FusedConv and FusedGemm (a Conv or Gemm with an activation applied
/// to its output), which `tinyops optimize` writes for Conv/Gemm + activation fusion. They run on the engine's own
/// Conv and Gemm kernels with the activation in their epilogue, exactly as a load-time fusion would.
/// FusedConv: attribute 'activation' (Relu, Sigmoid, LeakyRelu, Clip, HardSigmoid) and 'activation_params'
/// (LeakyRelu [alpha], Clip [min, max], HardSigmoid [alpha, beta]); the optional fourth input Z is not supported.
/// FusedGemm: 'activation' (Relu, Sigmoid, LeakyRelu, HardSigmoid) with 'activation_alpha' / 'activation_beta'.
/// </summary>
internal static class MicrosoftFusedKernels
{
    public const string Domain = "com.microsoft";

    public static void Register(KernelRegistry r)
    {
        r.Register("FusedConv", (node, _) => new ConvKernel(Translate(node, "Conv"), 11), domain: Domain);
        r.Register("FusedGemm", (node, _) => new GemmKernel(Translate(node, "Gemm"), 13), domain: Domain);
    }

    private static Node Translate(Node node, string op)
    {
        if (op == "Conv" && node.Inputs.Count > 3 && node.Inputs[3].Length > 0)
            throw new UnsupportedOperatorException($"{node.DisplayName}: FusedConv with a sum input Z is not supported; only Conv + activation");
        string act = node.GetString("activation", "");
        float[] p = op == "Conv"
            ? node.GetFloats("activation_params") ?? []
            : act switch
            {
                "LeakyRelu" => [node.GetFloat("activation_alpha", 0.01f)],
                "HardSigmoid" => [node.GetFloat("activation_alpha", 0.2f), node.GetFloat("activation_beta", 0.5f)],
                _ => [],
            };
        if (op == "Conv" && act == "LeakyRelu" && p.Length == 0) p = [0.01f];
        if (act is not ("" or "Relu" or "Sigmoid" or "LeakyRelu" or "HardSigmoid") && !(op == "Conv" && act == "Clip"))
            throw new UnsupportedOperatorException($"{node.DisplayName}: activation '{act}' of {node.OpType} is not supported (supported: Relu, Sigmoid, LeakyRelu, HardSigmoid{(op == "Conv" ? ", Clip" : "")})");
        int need = act switch { "LeakyRelu" => 1, "Clip" or "HardSigmoid" => 2, _ => 0 };
        if (p.Length < need)
            throw new ModelValidationException($"{node.DisplayName}: activation '{act}' needs {need} parameters in activation_params, it has {p.Length}");
        var t = new Node { Name = node.Name, OpType = op, Domain = "", Inputs = [.. node.Inputs.Take(3)], Outputs = [.. node.Outputs], Index = node.Index, DocString = node.DocString };
        foreach (var (k, v) in node.Attributes)
            if (k is not ("activation" or "activation_params" or "activation_alpha" or "activation_beta" or "activation_gamma")) t.Attributes[k] = v;
        if (act.Length > 0)
        {
            t.Attributes[FusedActivation.KindAttribute] = AttributeValue.Of(FusedActivation.KindAttribute, act);
            t.Attributes[FusedActivation.ParamsAttribute] = AttributeValue.Of(FusedActivation.ParamsAttribute, p);
        }
        return t;
    }
}
