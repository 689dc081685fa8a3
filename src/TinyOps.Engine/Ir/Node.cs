using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Ir;

/// <summary>One operator application. An empty input name marks an omitted optional input.</summary>
public sealed class Node
{
    public string Name { get; set; } = "";
    public required string OpType { get; set; }
    public string Domain { get; set; } = "";
    public List<string> Inputs { get; init; } = [];
    public List<string> Outputs { get; init; } = [];
    public Dictionary<string, AttributeValue> Attributes { get; init; } = new(StringComparer.Ordinal);
    public string DocString { get; set; } = "";

    /// <summary>Position in its graph's node list, used to name unnamed nodes in messages.</summary>
    public int Index { get; set; }

    /// <summary>How messages refer to this node: its name and operator, or its position when unnamed.</summary>
    public string DisplayName => Name.Length > 0 ? $"node '{Name}' ({OpType})" : $"node #{Index} ({OpType})";

    public bool IsDefaultDomain => Domain is "" or "ai.onnx";

    public bool HasInput(int i) => i < Inputs.Count && Inputs[i].Length > 0;

    public bool HasAttribute(string name) => Attributes.ContainsKey(name);

    private AttributeValue? Find(string name, AttributeKind kind)
    {
        if (!Attributes.TryGetValue(name, out var a)) return null;
        if (a.Kind != kind)
            throw new ModelValidationException($"{DisplayName}: attribute '{name}' is {a.Kind}, expected {kind}");
        return a;
    }

    public long GetInt(string name, long fallback) => Find(name, AttributeKind.Int)?.Int ?? fallback;
    public long GetIntRequired(string name) => (Find(name, AttributeKind.Int) ?? throw Missing(name)).Int;
    public float GetFloat(string name, float fallback) => Find(name, AttributeKind.Float)?.Float ?? fallback;
    public string GetString(string name, string fallback) => Find(name, AttributeKind.String)?.String ?? fallback;
    public long[]? GetInts(string name) => Find(name, AttributeKind.Ints)?.Ints;
    public float[]? GetFloats(string name) => Find(name, AttributeKind.Floats)?.Floats;
    public string[]? GetStrings(string name) => Find(name, AttributeKind.Strings)?.Strings.Select(s => System.Text.Encoding.UTF8.GetString(s)).ToArray();
    public Tensor? GetTensor(string name) => Find(name, AttributeKind.Tensor)?.Tensor;
    public Graph? GetGraph(string name) => Find(name, AttributeKind.Graph)?.Graph;
    public Graph GetGraphRequired(string name) => GetGraph(name) ?? throw Missing(name);

    private ModelValidationException Missing(string name) => new($"{DisplayName}: required attribute '{name}' is missing");

    public override string ToString() => DisplayName;
}
