using TinyOps.Engine.Ir;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Kernels.ControlFlow;

/// <summary>If: runs then_branch or else_branch depending on a boolean scalar; outputs come from the branch.</summary>
internal sealed class IfKernel : Kernel
{
    public IfKernel(Node node, int opset) : base(node, opset)
    {
        var thenG = node.GetGraphRequired("then_branch");
        var elseG = node.GetGraphRequired("else_branch");
        if (thenG.Outputs.Count != node.Outputs.Count || elseG.Outputs.Count != node.Outputs.Count)
            throw Error($"then_branch has {thenG.Outputs.Count} outputs and else_branch {elseG.Outputs.Count}, but the node has {node.Outputs.Count}");
        if (thenG.RuntimeInputs.Any() || elseG.RuntimeInputs.Any())
            throw Error("If branches must not declare inputs");
    }

    public override bool ProducesOwnOutputs => true;

    public override void Infer(InferContext ctx) { }

    public override void Run(RunContext ctx)
    {
        var cond = ctx.Input(0);
        if (cond.Length != 1) throw Error($"the condition must hold one element, it has shape {ShapeUtil.Format(cond.Shape)}");
        bool take = cond.GetInt64(0) != 0;
        var outputs = ctx.RunSubgraph(take ? "then_branch" : "else_branch", []);
        for (int i = 0; i < outputs.Length && i < ctx.OutputCount; i++) ctx.SetOutput(i, outputs[i]);
    }
}
