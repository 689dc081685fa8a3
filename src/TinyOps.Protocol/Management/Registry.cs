namespace TinyOps.Protocol.Management;

public sealed record CreateModelRequest(string Name, string Description = "");

public sealed record ModelDto(string Project, string Name, string Description, DateTimeOffset CreatedAt, IReadOnlyDictionary<string, string> Aliases, int VersionCount);

/// <summary>What the engine read from the artifact at upload.</summary>
public sealed record ModelMetadataDto
{
    public IReadOnlyList<string> Inputs { get; init; } = [];
    public IReadOnlyList<string> Outputs { get; init; } = [];
    public IReadOnlyList<string> Operators { get; init; } = [];
    public long Parameters { get; init; }
    public long Macs { get; init; }
    public long PlannedPeakBytes { get; init; }
    public long WeightBytes { get; init; }
    public int Opset { get; init; }
}

public sealed record VersionDto(string Project, string Model, string Version, DateTimeOffset CreatedAt, string CreatedBy, string Notes, IReadOnlyList<VariantDto> Variants);

/// <summary>A runnable form of a version. The "base" variant is the uploaded model itself.</summary>
public sealed record VariantDto
{
    public string Id { get; init; } = "";
    public string Model { get; init; } = "";
    public string Version { get; init; } = "";
    public string Name { get; init; } = "";
    /// <summary>Parent variant id (lineage); null for the base variant.</summary>
    public string? ParentId { get; init; }
    public string Recipe { get; init; } = "";
    public IReadOnlyDictionary<string, string> Parameters { get; init; } = new Dictionary<string, string>();
    public string ArtifactSha256 { get; init; } = "";
    public long ArtifactSize { get; init; }
    public ModelMetadataDto Metadata { get; init; } = new();
    /// <summary>"accepted", "rejected" or "pending".</summary>
    public string Status { get; init; } = "accepted";
    public string? StatusReason { get; init; }
    /// <summary>Evaluated metrics (accuracy, latency_us, ...).</summary>
    public IReadOnlyDictionary<string, double> Metrics { get; init; } = new Dictionary<string, double>();
    public string ArtifactSignature { get; init; } = "";
    public string SigningKeyId { get; init; } = "";
    public DateTimeOffset CreatedAt { get; init; }
    /// <summary>How a recipe made it (null for the base variant and for variants registered by hand).</summary>
    public VariantLineageDto? Lineage { get; init; }
    /// <summary>Its evaluation (recipe jobs evaluate the base variant too), or null.</summary>
    public VariantEvaluationDto? Evaluation { get; init; }
}

public sealed record SetAliasRequest(string Version);
