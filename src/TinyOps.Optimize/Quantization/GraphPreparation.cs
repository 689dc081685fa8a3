using TinyOps.Engine.Ir;
using TinyOps.Engine.Tensors;

namespace TinyOps.Optimize.Quantization;

/// <summary>
/// Rewrites a float model into the form the quantizer works on, without changing what it computes:
/// Constant nodes become initializers, Identity of a constant becomes an alias, Gemm with constant B becomes
/// MatMul (+ Add of the scaled bias), and nodes are put in topological order. The input model is not modified.
/// </summary>
public static class GraphPreparation
{
    public static Model Prepare(Model model)
    {
        var src = model.Graph;
        var g = new Graph
        {
            Name = src.Name,
            DocString = src.DocString,
            Inputs = [.. src.Inputs],
            Outputs = [.. src.Outputs],
            Initializers = new Dictionary<string, Tensor>(src.Initializers, StringComparer.Ordinal),
        };
        int opset = model.DefaultOpset;
        foreach (var n in TopologicalOrder(src))
        {
            if (n.IsDefaultDomain && n.OpType == "Constant" && n.Outputs.Count == 1 && ConstantValue(n) is { } value)
            {
                g.Initializers[n.Outputs[0]] = value;
                continue;
            }
            if (n.IsDefaultDomain && n.OpType == "Identity" && n.Inputs.Count == 1 && g.Initializers.TryGetValue(n.Inputs[0], out var aliased)
                && !src.Outputs.Any(o => o.Name == n.Outputs[0]))
            {
                g.Initializers[n.Outputs[0]] = aliased;
                continue;
            }
            if (n.IsDefaultDomain && n.OpType == "Gemm" && TrySplitGemm(n, g, opset, out var parts))
            {
                g.Nodes.AddRange(parts);
                continue;
            }
            g.Nodes.Add(Copy(n));
        }
        for (int i = 0; i < g.Nodes.Count; i++) g.Nodes[i].Index = i;
        var copy = Passes.GraphEdit.WithGraph(model, g);
        return copy;
    }

    internal static Node Copy(Node n)
    {
        var c = new Node { Name = n.Name, OpType = n.OpType, Domain = n.Domain, DocString = n.DocString, Index = n.Index };
        c.Inputs.AddRange(n.Inputs);
        c.Outputs.AddRange(n.Outputs);
        foreach (var (k, v) in n.Attributes) c.Attributes[k] = v;
        return c;
    }

    private static Tensor? ConstantValue(Node n)
    {
        if (n.GetTensor("value") is { } t) return t;
        if (n.HasAttribute("value_float")) return Tensor.Scalar(n.GetFloat("value_float", 0));
        if (n.GetFloats("value_floats") is { } fs) return Tensor.FromArray(fs, fs.Length);
        if (n.HasAttribute("value_int")) return Tensor.Scalar(n.GetInt("value_int", 0));
        if (n.GetInts("value_ints") is { } ls) return Tensor.FromArray(ls, ls.Length);
        return null;
    }

    /// <summary>Gemm(A, B, C) with constant float B (and C), no transA: MatMul(A, alpha·B') then Add(beta·C).</summary>
    private static bool TrySplitGemm(Node n, Graph g, int opset, out Node[] parts)
    {
        parts = [];
        if (n.Inputs.Count < 2 || n.Outputs.Count != 1 || n.GetInt("transA", 0) != 0) return false;
        if (!g.Initializers.TryGetValue(n.Inputs[1], out var b) || b.Type != DataType.Float32 || b.Rank != 2) return false;
        Tensor? c = null;
        if (n.HasInput(2))
        {
            if (!g.Initializers.TryGetValue(n.Inputs[2], out c) || c.Type != DataType.Float32) return false;
        }
        float alpha = n.GetFloat("alpha", 1f), beta = n.GetFloat("beta", 1f);
        bool transB = n.GetInt("transB", 0) != 0;
        int k = transB ? b.Shape[1] : b.Shape[0], m = transB ? b.Shape[0] : b.Shape[1];
        var bs = b.ReadOnlySpan<float>();
        var w = new float[k * m];
        for (int i = 0; i < k; i++)
            for (int j = 0; j < m; j++)
                w[i * m + j] = alpha * (transB ? bs[j * k + i] : bs[i * m + j]);
        string baseName = n.Name.Length > 0 ? n.Name : n.Outputs[0];
        string wName = Unique(g, n.Inputs[1] + "_matmul");
        g.Initializers[wName] = Tensor.FromArray(w, k, m);
        var matmul = new Node { Name = baseName + "_MatMul", OpType = "MatMul" };
        matmul.Inputs.AddRange([n.Inputs[0], wName]);
        if (c is null)
        {
            matmul.Outputs.Add(n.Outputs[0]);
            parts = [matmul];
            return true;
        }
        // ONNX Gemm broadcasts C unidirectionally to [M, N]; Add broadcasts it the same way for the shapes Gemm allows.
        if (opset < 7 && c.Length != 1) return false;
        var cs = c.ReadOnlySpan<float>();
        var scaled = new float[cs.Length];
        for (int i = 0; i < cs.Length; i++) scaled[i] = beta * cs[i];
        string cName = Unique(g, n.Inputs[2] + "_bias");
        g.Initializers[cName] = Tensor.FromArray(scaled, (int[])c.Shape.Clone());
        string mid = Unique(g, n.Outputs[0] + "_matmul");
        matmul.Outputs.Add(mid);
        var add = new Node { Name = baseName + "_Add", OpType = "Add" };
        add.Inputs.AddRange([mid, cName]);
        add.Outputs.Add(n.Outputs[0]);
        parts = [matmul, add];
        return true;
    }

    internal static string Unique(Graph g, string name)
    {
        if (!g.Initializers.ContainsKey(name) && !g.Nodes.Any(n => n.Outputs.Contains(name))) return name;
        for (int i = 1; ; i++)
        {
            string c = name + "_" + i.ToString(System.Globalization.CultureInfo.InvariantCulture);
            if (!g.Initializers.ContainsKey(c) && !g.Nodes.Any(n => n.Outputs.Contains(c))) return c;
        }
    }

    /// <summary>The nodes in an order where every producer comes before its consumers (Kahn's algorithm, stable).</summary>
    public static List<Node> TopologicalOrder(Graph g)
    {
        var producer = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < g.Nodes.Count; i++)
            foreach (var o in g.Nodes[i].Outputs)
                if (o.Length > 0) producer[o] = i;
        var pending = new int[g.Nodes.Count];
        var consumers = new List<int>[g.Nodes.Count];
        for (int i = 0; i < g.Nodes.Count; i++) consumers[i] = [];
        for (int i = 0; i < g.Nodes.Count; i++)
            foreach (var inp in g.Nodes[i].Inputs)
                if (inp.Length > 0 && producer.TryGetValue(inp, out int p) && p != i) { pending[i]++; consumers[p].Add(i); }
        var ready = new PriorityQueue<int, int>();
        for (int i = 0; i < pending.Length; i++) if (pending[i] == 0) ready.Enqueue(i, i);
        var order = new List<Node>(g.Nodes.Count);
        while (ready.TryDequeue(out int i, out _))
        {
            order.Add(g.Nodes[i]);
            foreach (int c in consumers[i]) if (--pending[c] == 0) ready.Enqueue(c, c);
        }
        if (order.Count != g.Nodes.Count)
            throw new QuantizationException($"graph '{g.Name}' has a cycle ({g.Nodes.Count - order.Count} nodes never become ready); it is not a valid ONNX graph");
        return order;
    }
}
