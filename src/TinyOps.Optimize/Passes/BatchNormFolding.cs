using TinyOps.Engine.Ir;
using TinyOps.Engine.Tensors;

namespace TinyOps.Optimize.Passes;

/// <summary>
/// Folds an inference-mode BatchNormalization into the Conv or Gemm before it. With s = scale / sqrt(var + eps)
/// (per channel, computed in double): Conv weights W'[c] = W[c]·s[c], bias b'[c] = (b[c] − mean[c])·s[c] + B[c];
/// Gemm (BatchNormalization over its [N, M] output, channel = column j): column j of alpha·B scaled by s[j], C' =
/// (beta·C − mean)·s + B, alpha = beta = 1. The Conv / Gemm output must feed only the BatchNormalization and not be
/// a graph output; every BatchNormalization input must be a constant; training mode is left alone.
/// <para>
/// The result is not bit-identical: the folded weights are rounded to float32 once, and the sums are then formed
/// from them rather than scaled afterwards. The difference is a few float32 roundings per output
/// (measured on five models: at most 4.8e-7 of the output's largest magnitude; the tests allow 1e-5).
/// </para>
/// </summary>
public sealed class BatchNormFolding : IModelPass
{
    public string Name => "fold-batchnorm";

    public PassOutcome Run(Model model, PassContext context)
    {
        var edit = new GraphEdit(model);
        var g = edit.Graph;
        var consumers = edit.Consumers();
        var producers = edit.Producers();
        var removed = new HashSet<Node>();
        var folded = new List<string>();
        foreach (var bn in g.Nodes.ToList())
        {
            if (!bn.IsDefaultDomain || bn.OpType != "BatchNormalization" || bn.Inputs.Count < 5) continue;
            if (bn.GetInt("training_mode", 0) != 0 || bn.Outputs.Skip(1).Any(o => o.Length > 0 && consumers.ContainsKey(o) || edit.GraphOutputs.Contains(o))) continue;
            if (!producers.TryGetValue(bn.Inputs[0], out var op) || !op.IsDefaultDomain || op.Outputs.Count != 1 || removed.Contains(op)) continue;
            string mid = op.Outputs[0];
            if (edit.GraphOutputs.Contains(mid) || consumers[mid].Count != 1) continue;
            var p = new Tensor[4];
            bool constant = true;
            for (int i = 0; i < 4; i++) constant &= edit.TryFloatConstant(bn.Inputs[i + 1], out p[i]);
            if (!constant) continue;
            int channels = p[0].Length;
            if (p.Any(t => t.Length != channels)) continue;
            double eps = bn.GetFloat("epsilon", 1e-5f);
            var scale = new double[channels];
            var shift = new double[channels]; // y = x·scale + shift
            var gamma = p[0].ReadOnlySpan<float>(); var beta = p[1].ReadOnlySpan<float>();
            var mean = p[2].ReadOnlySpan<float>(); var variance = p[3].ReadOnlySpan<float>();
            for (int c = 0; c < channels; c++)
            {
                scale[c] = gamma[c] / Math.Sqrt(variance[c] + eps);
                shift[c] = beta[c] - mean[c] * scale[c];
            }
            bool done = op.OpType switch
            {
                "Conv" => FoldIntoConv(op, scale, shift, edit),
                "Gemm" => FoldIntoGemm(op, scale, shift, edit),
                _ => false,
            };
            if (!done) continue;
            op.Outputs[0] = bn.Outputs[0];
            removed.Add(bn);
            folded.Add($"{bn.DisplayName} into {op.DisplayName}");
        }
        g.Nodes.RemoveAll(removed.Contains);
        return edit.Finish(Name, folded.Count, $"{folded.Count} BatchNormalization nodes folded", folded);
    }

    private static bool FoldIntoConv(Node conv, double[] scale, double[] shift, GraphEdit edit)
    {
        if (conv.Inputs.Count < 2 || !edit.TryFloatConstant(conv.Inputs[1], out var w) || w.Rank < 3 || w.Shape[0] != scale.Length) return false;
        Tensor? b = null;
        if (conv.HasInput(2) && (!edit.TryFloatConstant(conv.Inputs[2], out b) || b.Length != scale.Length)) return false;
        int m = w.Shape[0], per = w.Length / m;
        var ws = w.ReadOnlySpan<float>();
        var nw = new float[w.Length];
        var nb = new float[m];
        for (int c = 0; c < m; c++)
        {
            for (int i = 0; i < per; i++) nw[c * per + i] = (float)(ws[c * per + i] * scale[c]);
            nb[c] = (float)((b is null ? 0 : b.ReadOnlySpan<float>()[c]) * scale[c] + shift[c]);
        }
        string baseName = conv.Name.Length > 0 ? conv.Name : conv.Outputs[0];
        conv.Inputs[1] = edit.AddInitializer(baseName + "_bn_weight", Tensor.FromArray(nw, (int[])w.Shape.Clone()));
        string bias = edit.AddInitializer(baseName + "_bn_bias", Tensor.FromArray(nb, m));
        if (conv.Inputs.Count > 2) conv.Inputs[2] = bias; else conv.Inputs.Add(bias);
        return true;
    }

    private static bool FoldIntoGemm(Node gemm, double[] scale, double[] shift, GraphEdit edit)
    {
        if (gemm.Inputs.Count < 2 || gemm.GetInt("transA", 0) != 0 || !edit.TryFloatConstant(gemm.Inputs[1], out var bw) || bw.Rank != 2) return false;
        bool transB = gemm.GetInt("transB", 0) != 0;
        int m = transB ? bw.Shape[0] : bw.Shape[1];
        if (m != scale.Length) return false;
        Tensor? c = null;
        if (gemm.HasInput(2) && (!edit.TryFloatConstant(gemm.Inputs[2], out c) || !(c.Length == 1 || c.Length == m && c.Shape[^1] == m))) return false;
        double alpha = gemm.GetFloat("alpha", 1f), beta = gemm.GetFloat("beta", 1f);
        var src = bw.ReadOnlySpan<float>();
        var nw = new float[bw.Length];
        for (int r = 0; r < bw.Shape[0]; r++)
            for (int col = 0; col < bw.Shape[1]; col++)
            {
                int j = transB ? r : col;
                nw[r * bw.Shape[1] + col] = (float)(alpha * src[r * bw.Shape[1] + col] * scale[j]);
            }
        var nc = new float[m];
        for (int j = 0; j < m; j++)
        {
            double cj = c is null ? 0 : c.ReadOnlySpan<float>()[c.Length == 1 ? 0 : j];
            nc[j] = (float)(beta * cj * scale[j] + shift[j]);
        }
        string baseName = gemm.Name.Length > 0 ? gemm.Name : gemm.Outputs[0];
        gemm.Inputs[1] = edit.AddInitializer(baseName + "_bn_weight", Tensor.FromArray(nw, (int[])bw.Shape.Clone()));
        string bias = edit.AddInitializer(baseName + "_bn_bias", Tensor.FromArray(nc, m));
        if (gemm.Inputs.Count > 2) gemm.Inputs[2] = bias; else gemm.Inputs.Add(bias);
        gemm.Attributes.Remove("alpha");
        gemm.Attributes.Remove("beta");
        return true;
    }
}
