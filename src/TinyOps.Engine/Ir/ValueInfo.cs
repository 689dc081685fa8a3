using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Ir;

/// <summary>A named value's declared type and shape. A null shape means the rank is unknown.</summary>
public sealed record ValueInfo(string Name, DataType Type, Dim[]? Shape)
{
    /// <summary>Set when the value is a sequence, map or optional rather than a tensor (not supported).</summary>
    public string? NonTensorKind { get; init; }

    public string ShapeText => Shape is null ? "(unknown rank)" : "[" + string.Join(",", Shape.Select(d => d.ToString())) + "]";
    public override string ToString() => $"{Name}: {Type.OnnxName()} {ShapeText}";
}
