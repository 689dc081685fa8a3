using TinyOps.Engine.Runtime;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Profiling;

/// <summary>
/// Profiles a session statically: shapes are inferred with symbolic dimensions bound to the batch size, and
/// each dimension that changes with the batch is shown by its symbol.
/// </summary>
public static class ModelProfiler
{
    public static ModelProfile Profile(InferenceSession session, int batch = 1)
    {
        var a = session.PlanForReport(batch) ?? throw new ModelValidationException("the model's inputs have no declared type and shape; profile it by running it instead");
        var b = session.PlanForReport(batch + 1);
        var (g, plan) = a;
        var symbol = session.Inputs.SelectMany(i => i.Shape ?? []).FirstOrDefault(d => d.Symbol is not null).Symbol ?? "N";
        var nodes = new List<NodeCost>();
        long totalMacs = 0, totalParams = 0, weightBytes = 0;
        foreach (var t in session.Model.Graph.Initializers.Values) weightBytes += t.ByteLength;
        for (int n = 0; n < g.Nodes.Length; n++)
        {
            var node = g.Nodes[n];
            var kn = node.Kernel.Node;
            int[]? Shape(ExecutionPlan p, int v) => v < 0 ? null : p.Shapes[v];
            var shapeTexts = new List<string>();
            long actBytes = 0;
            foreach (int v in node.Outputs)
            {
                var s = plan.Shapes[v];
                if (s is null) { shapeTexts.Add("(run time)"); continue; }
                var s2 = b is null ? null : Shape(b.Value.Plan, v);
                shapeTexts.Add(FormatSymbolic(s, s2, batch, symbol));
                if (!plan.NodeFolded[n]) actBytes += (long)ShapeUtil.Size(s) * plan.Types[v].ElementSize();
            }
            long parameters = 0;
            foreach (int v in node.Inputs)
                if (v >= 0 && g.Constants[v] is { } c) parameters += c.Length;
            long macs = plan.NodeFolded[n] ? 0 : CostModel.Macs(kn.OpType, kn, i => Shape(plan, i < node.Inputs.Length ? node.Inputs[i] : -1), o => Shape(plan, node.Outputs[o]));
            totalMacs += macs;
            totalParams += parameters;
            nodes.Add(new NodeCost(kn.Name.Length > 0 ? kn.Name : $"#{kn.Index}", kn.OpType, string.Join(" ", shapeTexts), macs, parameters, actBytes, plan.NodeFolded[n], plan.NodeDynamic[n]));
        }
        return new ModelProfile(nodes, totalMacs, totalParams, weightBytes, plan.ArenaBytes, plan.LiveLowerBound, batch);
    }

    /// <summary>Shows dimensions that grow with the batch by symbol: [N,32,14,14].</summary>
    private static string FormatSymbolic(int[] s, int[]? s2, int batch, string symbol)
    {
        var parts = new string[s.Length];
        for (int i = 0; i < s.Length; i++)
        {
            if (s2 is null || s2.Length != s.Length || s2[i] == s[i]) { parts[i] = s[i].ToString(System.Globalization.CultureInfo.InvariantCulture); continue; }
            int per = s[i] / Math.Max(batch, 1);
            bool linear = per * batch == s[i] && per * (batch + 1) == s2[i];
            parts[i] = !linear ? "?" : per == 1 ? symbol : $"{per}*{symbol}";
        }
        return "[" + string.Join(",", parts) + "]";
    }
}
