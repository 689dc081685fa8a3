using TinyOps.Engine.Ir;
using TinyOps.Engine.Kernels;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Runtime;

/// <summary>A node bound to its kernel, with value slots for its inputs (-1 when omitted) and outputs.</summary>
internal sealed class CompiledNode
{
    public required Kernel Kernel { get; init; }
    public required int[] Inputs { get; init; }
    public required int[] Outputs { get; init; }

    /// <summary>Values the node's subgraphs read from this graph's scope; they must stay alive until the node runs.</summary>
    public int[] ImplicitInputs { get; init; } = [];

    public Dictionary<string, CompiledGraph>? Subgraphs { get; init; }
}

/// <summary>
/// A validated graph in execution order with every value numbered. Built once per session (and per subgraph).
/// </summary>
internal sealed class CompiledGraph
{
    public required Graph Graph { get; init; }
    public required string[] ValueNames { get; init; }
    public required Dictionary<string, int> ValueIndex { get; init; }
    public required CompiledNode[] Nodes { get; init; }
    public required int[] RuntimeInputs { get; init; }
    public required ValueInfo[] RuntimeInputInfos { get; init; }
    public required int[] Outputs { get; init; }
    public required Tensor?[] Constants { get; init; }

    /// <summary>For subgraphs: local slot and the enclosing graph's slot of every value read from outside.</summary>
    public required (int Local, int Outer)[] OuterRefs { get; init; }

    public int ValueCount => ValueNames.Length;

    public static CompiledGraph Compile(Graph graph, Model model, KernelRegistry registry, IReadOnlyDictionary<string, int>? outerScope, int depth = 0)
    {
        if (depth > 32) throw new ModelValidationException($"graph '{graph.Name}': subgraphs are nested more than 32 deep");
        string where = graph.Name.Length > 0 ? $"graph '{graph.Name}'" : "main graph";
        var names = new List<string>();
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        var constants = new List<Tensor?>();
        var outerRefs = new List<(int, int)>();

        int Define(string name, string what)
        {
            if (index.ContainsKey(name))
                throw new ModelValidationException($"{where}: value '{name}' is defined twice (again as {what}); ONNX graphs must be in single-assignment form");
            index[name] = names.Count;
            names.Add(name);
            constants.Add(null);
            return names.Count - 1;
        }

        foreach (var (name, t) in graph.Initializers) constants[Define(name, "initializer")] = t;
        var runtimeInputs = new List<int>();
        var runtimeInfos = new List<ValueInfo>();
        foreach (var vi in graph.Inputs)
        {
            if (vi.Name.Length == 0) throw new ModelValidationException($"{where}: a graph input has no name");
            if (graph.Initializers.ContainsKey(vi.Name)) continue; // an input with a default: treated as the constant
            if (vi.NonTensorKind is not null)
                throw new UnsupportedTypeException($"{where}: input '{vi.Name}' is a {vi.NonTensorKind}, not a tensor; only tensor inputs are supported");
            runtimeInputs.Add(Define(vi.Name, "graph input"));
            runtimeInfos.Add(vi);
        }
        int unnamed = 0;
        foreach (var node in graph.Nodes)
        {
            foreach (var o in node.Outputs)
                Define(o.Length > 0 ? o : $"\0unused{unnamed++}", $"an output of {node.DisplayName}");
        }

        int Resolve(string name, Node node)
        {
            if (index.TryGetValue(name, out int i)) return i;
            if (outerScope is not null && outerScope.TryGetValue(name, out int outer))
            {
                int local = names.Count;
                index[name] = local;
                names.Add(name);
                constants.Add(null);
                outerRefs.Add((local, outer));
                return local;
            }
            throw new ModelValidationException($"{where}: {node.DisplayName} reads '{name}', which no node, graph input or initializer produces (a missing initializer?)");
        }

        // Bind kernels and resolve inputs; count output slots in node order so unnamed outputs match Define above.
        var compiled = new CompiledNode[graph.Nodes.Count];
        var producer = new Dictionary<int, int>();
        unnamed = 0;
        for (int n = 0; n < graph.Nodes.Count; n++)
        {
            var node = graph.Nodes[n];
            var inputs = new int[node.Inputs.Count];
            for (int i = 0; i < inputs.Length; i++) inputs[i] = node.Inputs[i].Length == 0 ? -1 : Resolve(node.Inputs[i], node);
            var outputs = new int[node.Outputs.Count];
            for (int i = 0; i < outputs.Length; i++)
            {
                outputs[i] = index[node.Outputs[i].Length > 0 ? node.Outputs[i] : $"\0unused{unnamed++}"];
                producer[outputs[i]] = n;
            }

            Dictionary<string, CompiledGraph>? subgraphs = null;
            var implicitInputs = new List<int>();
            foreach (var attr in node.Attributes.Values)
            {
                if (attr.Kind != AttributeKind.Graph || attr.Graph is null) continue;
                foreach (var free in FreeVariables(attr.Graph))
                {
                    int slot = Resolve(free, node);
                    if (!implicitInputs.Contains(slot)) implicitInputs.Add(slot);
                }
            }
            var kernel = registry.Create(node, model);
            if (implicitInputs.Count > 0 || node.Attributes.Values.Any(a => a.Kind == AttributeKind.Graph))
            {
                subgraphs = [];
                foreach (var attr in node.Attributes.Values)
                {
                    if (attr.Kind != AttributeKind.Graph || attr.Graph is null) continue;
                    subgraphs[attr.Name] = Compile(attr.Graph, model, registry, index, depth + 1);
                }
            }
            compiled[n] = new CompiledNode { Kernel = kernel, Inputs = inputs, Outputs = outputs, ImplicitInputs = implicitInputs.ToArray(), Subgraphs = subgraphs };
        }

        var outputsIdx = new int[graph.Outputs.Count];
        for (int i = 0; i < outputsIdx.Length; i++)
        {
            string name = graph.Outputs[i].Name;
            if (index.TryGetValue(name, out int slot)) outputsIdx[i] = slot;
            else if (outerScope is not null && outerScope.TryGetValue(name, out int outer))
            {
                int local = names.Count;
                index[name] = local;
                names.Add(name);
                constants.Add(null);
                outerRefs.Add((local, outer));
                outputsIdx[i] = local;
            }
            else throw new ModelValidationException($"{where}: graph output '{name}' is not produced by any node, input or initializer");
        }

        var order = TopologicalOrder(compiled, producer, where);
        return new CompiledGraph
        {
            Graph = graph,
            ValueNames = names.ToArray(),
            ValueIndex = index,
            Nodes = order,
            RuntimeInputs = runtimeInputs.ToArray(),
            RuntimeInputInfos = runtimeInfos.ToArray(),
            Outputs = outputsIdx,
            Constants = constants.ToArray(),
            OuterRefs = outerRefs.ToArray(),
        };
    }

    private static CompiledNode[] TopologicalOrder(CompiledNode[] nodes, Dictionary<int, int> producer, string where)
    {
        int n = nodes.Length;
        var indegree = new int[n];
        var consumers = new List<int>[n];
        for (int i = 0; i < n; i++) consumers[i] = [];
        for (int i = 0; i < n; i++)
        {
            foreach (int v in nodes[i].Inputs.Concat(nodes[i].ImplicitInputs))
            {
                if (v >= 0 && producer.TryGetValue(v, out int p))
                {
                    if (p == i) throw new ModelValidationException($"{where}: {nodes[i].Kernel.Node.DisplayName} consumes its own output; the graph has a cycle");
                    indegree[i]++;
                    consumers[p].Add(i);
                }
            }
        }
        // Kahn's algorithm, taking ready nodes in their file order so a sorted graph keeps its order.
        var ready = new PriorityQueue<int, int>();
        for (int i = 0; i < n; i++) if (indegree[i] == 0) ready.Enqueue(i, i);
        var order = new List<CompiledNode>(n);
        while (ready.TryDequeue(out int i, out _))
        {
            order.Add(nodes[i]);
            foreach (int c in consumers[i]) if (--indegree[c] == 0) ready.Enqueue(c, c);
        }
        if (order.Count != n)
        {
            var stuck = Enumerable.Range(0, n).Where(i => indegree[i] > 0).Take(5).Select(i => nodes[i].Kernel.Node.DisplayName);
            throw new ModelValidationException($"{where}: the graph has a cycle; nodes that can never run: {string.Join(", ", stuck)}");
        }
        return order.ToArray();
    }

    /// <summary>Names a graph (or its nested subgraphs) reads but does not define.</summary>
    public static HashSet<string> FreeVariables(Graph g)
    {
        var defined = new HashSet<string>(StringComparer.Ordinal);
        foreach (var i in g.Inputs) defined.Add(i.Name);
        foreach (var k in g.Initializers.Keys) defined.Add(k);
        foreach (var n in g.Nodes) foreach (var o in n.Outputs) if (o.Length > 0) defined.Add(o);
        var free = new HashSet<string>(StringComparer.Ordinal);
        foreach (var n in g.Nodes)
        {
            foreach (var i in n.Inputs) if (i.Length > 0 && !defined.Contains(i)) free.Add(i);
            foreach (var a in n.Attributes.Values)
                if (a.Kind == AttributeKind.Graph && a.Graph is not null)
                    foreach (var f in FreeVariables(a.Graph)) if (!defined.Contains(f)) free.Add(f);
        }
        foreach (var o in g.Outputs) if (!defined.Contains(o.Name)) free.Add(o.Name);
        return free;
    }
}
