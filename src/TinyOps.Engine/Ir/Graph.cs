using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Ir;

/// <summary>A computation graph: nodes in any order, declared inputs and outputs, and constant initializers.</summary>
public sealed class Graph
{
    public string Name { get; set; } = "";
    public List<Node> Nodes { get; init; } = [];
    public List<ValueInfo> Inputs { get; init; } = [];
    public List<ValueInfo> Outputs { get; init; } = [];
    public List<ValueInfo> ValueInfos { get; init; } = [];
    public Dictionary<string, Tensor> Initializers { get; init; } = new(StringComparer.Ordinal);
    public string DocString { get; set; } = "";

    /// <summary>Graph inputs that are not also initializers: what a caller must supply.</summary>
    public IEnumerable<ValueInfo> RuntimeInputs => Inputs.Where(i => !Initializers.ContainsKey(i.Name));
}
