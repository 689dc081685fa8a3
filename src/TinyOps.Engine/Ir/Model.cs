namespace TinyOps.Engine.Ir;

/// <summary>A loaded model: its graph, the opsets it imports and its metadata.</summary>
public sealed class Model
{
    public long IrVersion { get; set; } = 8;
    public string ProducerName { get; set; } = "";
    public string ProducerVersion { get; set; } = "";
    public string Domain { get; set; } = "";
    public long ModelVersion { get; set; }
    public string DocString { get; set; } = "";
    public required Graph Graph { get; init; }

    /// <summary>Imported opset version per domain; the default domain is "".</summary>
    public Dictionary<string, long> Opsets { get; init; } = new(StringComparer.Ordinal);

    public Dictionary<string, string> Metadata { get; init; } = new(StringComparer.Ordinal);

    public int DefaultOpset => Opsets.TryGetValue("", out var v) ? (int)v : Opsets.TryGetValue("ai.onnx", out var w) ? (int)w : 0;

    public int OpsetFor(string domain)
    {
        if (domain is "" or "ai.onnx") return DefaultOpset;
        return Opsets.TryGetValue(domain, out var v) ? (int)v : 0;
    }
}
