using System.Globalization;
using TinyOps.Engine.Ir;
using TinyOps.Engine.Tensors;
using TinyOps.Optimize.Quantization;

namespace TinyOps.Optimize.Passes;

/// <summary>
/// A working copy of a model's main graph for a pass: nodes (shallow copies, in topological order), initializers
/// and the maps passes ask for (producer, consumers). <see cref="ToModel"/> builds the result; the source model is
/// never changed.
/// </summary>
public sealed class GraphEdit
{
    private readonly Model _source;
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);

    public GraphEdit(Model source)
    {
        _source = source;
        var g = source.Graph;
        Graph = new Graph
        {
            Name = g.Name,
            DocString = g.DocString,
            Inputs = [.. g.Inputs],
            Outputs = [.. g.Outputs],
            ValueInfos = [.. g.ValueInfos],
            Initializers = new Dictionary<string, Tensor>(g.Initializers, StringComparer.Ordinal),
        };
        foreach (var n in GraphPreparation.TopologicalOrder(g)) Graph.Nodes.Add(GraphPreparation.Copy(n));
        foreach (var i in g.Inputs) _names.Add(i.Name);
        foreach (var k in g.Initializers.Keys) _names.Add(k);
        foreach (var n in g.Nodes) { _names.Add(n.Name); foreach (var o in n.Outputs) _names.Add(o); }
        GraphOutputs = new HashSet<string>(g.Outputs.Select(o => o.Name), StringComparer.Ordinal);
    }

    public Graph Graph { get; }
    public Model Source => _source;
    public int Opset => _source.DefaultOpset;
    public HashSet<string> GraphOutputs { get; }

    /// <summary>
    /// Initializers that are true constants: from IR version 4 on, an initializer also listed as a graph input is a
    /// default a caller may override, so it is not one; before, every initializer had to be listed as an input.
    /// </summary>
    public bool TryConstant(string name, out Tensor value) => TryConstant(Graph, _source.IrVersion, name, out value);

    public bool TryFloatConstant(string name, out Tensor value) => TryFloatConstant(Graph, _source.IrVersion, name, out value);

    /// <summary><see cref="TryConstant(string, out Tensor)"/> on a graph as it is, for a model of IR version <paramref name="irVersion"/>.</summary>
    internal static bool TryConstant(Graph graph, long irVersion, string name, out Tensor value)
    {
        value = null!;
        if (name.Length == 0 || !graph.Initializers.TryGetValue(name, out var t)) return false;
        if (irVersion >= 4)
            foreach (var i in graph.Inputs) if (i.Name == name) return false;
        value = t;
        return true;
    }

    internal static bool TryFloatConstant(Graph graph, long irVersion, string name, out Tensor value) =>
        TryConstant(graph, irVersion, name, out value) && value.Type == DataType.Float32;

    /// <summary>The node producing each value.</summary>
    public Dictionary<string, Node> Producers()
    {
        var map = new Dictionary<string, Node>(StringComparer.Ordinal);
        foreach (var n in Graph.Nodes) foreach (var o in n.Outputs) if (o.Length > 0) map[o] = n;
        return map;
    }

    /// <summary>The nodes reading each value; a node with a subgraph counts as reading every name the subgraph uses.</summary>
    public Dictionary<string, List<Node>> Consumers()
    {
        var map = new Dictionary<string, List<Node>>(StringComparer.Ordinal);
        void Add(string name, Node n)
        {
            if (name.Length == 0) return;
            if (!map.TryGetValue(name, out var l)) map[name] = l = [];
            if (!l.Contains(n)) l.Add(n);
        }
        foreach (var n in Graph.Nodes)
        {
            foreach (var i in n.Inputs) Add(i, n);
            foreach (var name in SubgraphReads(n)) Add(name, n);
        }
        return map;
    }

    /// <summary>Every value name read anywhere inside a node's subgraphs (a superset of their free variables).</summary>
    public static IEnumerable<string> SubgraphReads(Node n)
    {
        foreach (var a in n.Attributes.Values)
        {
            var graphs = a.Kind == AttributeKind.Graph && a.Graph is not null ? [a.Graph] : a.Kind == AttributeKind.Graphs ? a.Graphs : [];
            foreach (var sg in graphs)
            {
                foreach (var sn in sg.Nodes)
                {
                    foreach (var i in sn.Inputs) if (i.Length > 0) yield return i;
                    foreach (var inner in SubgraphReads(sn)) yield return inner;
                }
                foreach (var o in sg.Outputs) yield return o.Name;
            }
        }
    }

    public static bool HasSubgraph(Node n) => n.Attributes.Values.Any(a => a.Kind is AttributeKind.Graph or AttributeKind.Graphs);

    /// <summary>A value (or node) name not used anywhere in the graph yet, based on <paramref name="name"/>.</summary>
    public string Unique(string name)
    {
        if (_names.Add(name)) return name;
        for (int i = 1; ; i++)
        {
            string c = name + "_" + i.ToString(CultureInfo.InvariantCulture);
            if (_names.Add(c)) return c;
        }
    }

    /// <summary>Adds an initializer under a new unique name based on <paramref name="name"/>; returns the name.</summary>
    public string AddInitializer(string name, Tensor value)
    {
        name = Unique(name);
        Graph.Initializers[name] = value;
        return name;
    }

    /// <summary>Drops initializers no node, subgraph or graph output reads (graph inputs are kept).</summary>
    public int RemoveUnusedInitializers()
    {
        var used = new HashSet<string>(StringComparer.Ordinal);
        foreach (var n in Graph.Nodes)
        {
            foreach (var i in n.Inputs) used.Add(i);
            foreach (var s in SubgraphReads(n)) used.Add(s);
        }
        foreach (var o in Graph.Outputs) used.Add(o.Name);
        if (_source.IrVersion >= 4) foreach (var i in Graph.Inputs) used.Add(i.Name); // overridable defaults stay
        int removed = 0;
        foreach (var k in Graph.Initializers.Keys.ToList())
            if (!used.Contains(k)) { Graph.Initializers.Remove(k); removed++; }
        return removed;
    }

    /// <summary>The rewritten model: the source's header, opsets and metadata around <see cref="Graph"/>.</summary>
    public Model ToModel(IReadOnlyDictionary<string, long>? extraOpsets = null)
    {
        for (int i = 0; i < Graph.Nodes.Count; i++) Graph.Nodes[i].Index = i;
        // an initializer listed as a graph input (IR < 4) that a pass replaced (or turned into a node's output) must not
        // turn into a runtime input
        Graph.Inputs.RemoveAll(i => _source.Graph.Initializers.ContainsKey(i.Name) && !Graph.Initializers.ContainsKey(i.Name));
        // value_info entries for values that no longer exist would confuse readers
        var live = new HashSet<string>(StringComparer.Ordinal);
        foreach (var n in Graph.Nodes) foreach (var o in n.Outputs) live.Add(o);
        Graph.ValueInfos.RemoveAll(v => !live.Contains(v.Name));
        var m = WithGraph(_source, Graph);
        if (extraOpsets is not null) foreach (var (k, v) in extraOpsets) m.Opsets.TryAdd(k, v);
        return m;
    }

    /// <summary>A model with <paramref name="source"/>'s header, opsets and metadata (copied) around <paramref name="graph"/>.</summary>
    public static Model WithGraph(Model source, Graph graph)
    {
        var m = new Model
        {
            IrVersion = source.IrVersion,
            ProducerName = source.ProducerName,
            ProducerVersion = source.ProducerVersion,
            Domain = source.Domain,
            ModelVersion = source.ModelVersion,
            DocString = source.DocString,
            Graph = graph,
        };
        foreach (var (k, v) in source.Opsets) m.Opsets[k] = v;
        foreach (var (k, v) in source.Metadata) m.Metadata[k] = v;
        return m;
    }

    /// <summary>
    /// Ends a pass: drops the initializers nothing reads any more, builds the model, records the pass in its
    /// tinyops.passes metadata when it changed anything, and wraps it with its summary and details.
    /// </summary>
    public PassOutcome Finish(string pass, int changes, string summary, IEnumerable<string> details, IReadOnlyDictionary<string, long>? extraOpsets = null)
    {
        RemoveUnusedInitializers();
        var m = ToModel(changes > 0 ? extraOpsets : null);
        if (changes > 0) RecordPass(m, $"{pass} ({changes})");
        return PassOutcome.Of(m, summary, details);
    }

    /// <summary>Appends a line to the model's tinyops.passes metadata (the history of passes applied).</summary>
    public static void RecordPass(Model m, string line)
    {
        m.Metadata["tinyops.passes"] = m.Metadata.TryGetValue("tinyops.passes", out var old) && old.Length > 0 ? old + "; " + line : line;
    }
}
