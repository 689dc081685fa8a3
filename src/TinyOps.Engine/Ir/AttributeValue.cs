using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Ir;

/// <summary>One node attribute. Exactly the member matching <see cref="Kind"/> is meaningful.</summary>
public sealed class AttributeValue
{
    public required string Name { get; init; }
    public required AttributeKind Kind { get; init; }
    public float Float { get; init; }
    public long Int { get; init; }
    public byte[] StringBytes { get; init; } = [];
    public Tensor? Tensor { get; init; }
    public Graph? Graph { get; init; }
    public float[] Floats { get; init; } = [];
    public long[] Ints { get; init; } = [];
    public byte[][] Strings { get; init; } = [];
    public Tensor[] Tensors { get; init; } = [];
    public Graph[] Graphs { get; init; } = [];

    public string String => System.Text.Encoding.UTF8.GetString(StringBytes);

    public static AttributeValue Of(string name, long value) => new() { Name = name, Kind = AttributeKind.Int, Int = value };
    public static AttributeValue Of(string name, float value) => new() { Name = name, Kind = AttributeKind.Float, Float = value };
    public static AttributeValue Of(string name, string value) => new() { Name = name, Kind = AttributeKind.String, StringBytes = System.Text.Encoding.UTF8.GetBytes(value) };
    public static AttributeValue Of(string name, long[] value) => new() { Name = name, Kind = AttributeKind.Ints, Ints = value };
    public static AttributeValue Of(string name, float[] value) => new() { Name = name, Kind = AttributeKind.Floats, Floats = value };
    public static AttributeValue Of(string name, Tensor value) => new() { Name = name, Kind = AttributeKind.Tensor, Tensor = value };
    public static AttributeValue Of(string name, Graph value) => new() { Name = name, Kind = AttributeKind.Graph, Graph = value };
}
