namespace TinyOps.Protocol.Management;

/// <summary>A model's recipe as stored: the text as uploaded (YAML or JSON) and what it declares.</summary>
public sealed record RecipeDto
{
    public string Project { get; init; } = "";
    public string Model { get; init; } = "";
    /// <summary>The recipe's own name (its 'name' field).</summary>
    public string Name { get; init; } = "";
    /// <summary>SHA-256 of the text (UTF-8), recorded in every variant's lineage.</summary>
    public string Sha256 { get; init; } = "";
    public string Text { get; init; } = "";
    /// <summary>The evaluation set the accuracy gate uses, or null (no gate).</summary>
    public string? Evaluation { get; init; }
    public int LatencyRuns { get; init; }
    public IReadOnlyList<RecipeVariantDto> Variants { get; init; } = [];
    public DateTimeOffset UpdatedAt { get; init; }
    public string UpdatedBy { get; init; } = "";
}

/// <summary>One variant a recipe builds: its passes as written (e.g. "quantize(mode=static-int8)"), target classes and accuracy budget.</summary>
public sealed record RecipeVariantDto(string Name, IReadOnlyList<string> Targets, double MaxAccuracyDrop, IReadOnlyList<string> Passes);

/// <summary>Kinds of evaluation set.</summary>
public static class EvaluationSetKinds
{
    /// <summary>A reference to the server's Fashion-MNIST test images (the first Count of them); no data is uploaded.</summary>
    public const string FashionMnist = "fashion-mnist";
    /// <summary>Uploaded input and label tensors (ONNX TensorProto, base64).</summary>
    public const string Tensors = "tensors";
    public static readonly string[] All = [FashionMnist, Tensors];
}

/// <summary>
/// Registers a labelled set of a project for accuracy gates (and calibration). Kind "fashion-mnist": the first Count
/// (default all 10,000) Fashion-MNIST test images. Kind "tensors": Inputs is a float32 TensorProto [N, ...] and Labels
/// an integer TensorProto [N] of class indexes, both base64.
/// </summary>
public sealed record CreateEvaluationSetRequest
{
    public string Name { get; init; } = "";
    public string Kind { get; init; } = EvaluationSetKinds.Tensors;
    public string Description { get; init; } = "";
    public int? Count { get; init; }
    public string? Inputs { get; init; }
    public string? Labels { get; init; }
}

public sealed record EvaluationSetDto
{
    public string Project { get; init; } = "";
    public string Name { get; init; } = "";
    public string Kind { get; init; } = "";
    public string Description { get; init; } = "";
    public int Count { get; init; }
    /// <summary>One sample's shape (the model input's shape without the batch dimension).</summary>
    public IReadOnlyList<int> SampleShape { get; init; } = [];
    /// <summary>The largest label plus one.</summary>
    public int Classes { get; init; }
    public string? InputsSha256 { get; init; }
    public string? LabelsSha256 { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
    public string CreatedBy { get; init; } = "";
}

/// <summary>The states of a background job.</summary>
public static class JobStates
{
    public const string Queued = "queued";
    public const string Running = "running";
    public const string Succeeded = "succeeded";
    public const string Failed = "failed";
    public const string Cancelled = "cancelled";
    public static readonly string[] All = [Queued, Running, Succeeded, Failed, Cancelled];
    public static bool IsFinished(string state) => state is Succeeded or Failed or Cancelled;
}

/// <summary>A background job (e.g. kind "recipe": build, evaluate and register a version's variants).</summary>
public sealed record JobDto
{
    public string Id { get; init; } = "";
    public string Project { get; init; } = "";
    public string Kind { get; init; } = "";
    public string Model { get; init; } = "";
    public string Version { get; init; } = "";
    /// <summary>queued, running, succeeded, failed, cancelled.</summary>
    public string State { get; init; } = "";
    /// <summary>0-100.</summary>
    public int Progress { get; init; }
    public string Message { get; init; } = "";
    public string? Error { get; init; }
    public int Attempts { get; init; }
    public int MaxAttempts { get; init; }
    public bool CancelRequested { get; init; }
    /// <summary>The server replica running (or last running) it.</summary>
    public string? Worker { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
    public string CreatedBy { get; init; } = "";
    public DateTimeOffset? StartedAt { get; init; }
    public DateTimeOffset? FinishedAt { get; init; }
    public DateTimeOffset UpdatedAt { get; init; }
}

/// <summary>One pass applied to make a variant, with its parameters as the recipe gave them.</summary>
public sealed record PassDto(string Pass, IReadOnlyDictionary<string, string> Parameters);

/// <summary>How a variant was made from its base version.</summary>
public sealed record VariantLineageDto
{
    public string BaseVariantId { get; init; } = "";
    public string BaseVersion { get; init; } = "";
    public string Recipe { get; init; } = "";
    public string RecipeSha256 { get; init; } = "";
    /// <summary>The recipe variant's name.</summary>
    public string Variant { get; init; } = "";
    public IReadOnlyList<PassDto> Passes { get; init; } = [];
    public IReadOnlyList<string> Targets { get; init; } = [];
    public double MaxAccuracyDrop { get; init; }
    public string EngineVersion { get; init; } = "";
    public string JobId { get; init; } = "";
}

/// <summary>What a variant's evaluation measured here, and its latency estimated for each device-class profile.</summary>
public sealed record VariantEvaluationDto
{
    public string? EvaluationSet { get; init; }
    public int EvaluatedSamples { get; init; }
    public double? Accuracy { get; init; }
    public double? BaseAccuracy { get; init; }
    /// <summary>Base accuracy minus this one's, in percentage points.</summary>
    public double? AccuracyDrop { get; init; }
    public long FileBytes { get; init; }
    /// <summary>Operator counts, most frequent first.</summary>
    public IReadOnlyDictionary<string, int> Operators { get; init; } = new Dictionary<string, int>();
    public long Parameters { get; init; }
    public long Macs { get; init; }
    public long PlannedPeakBytes { get; init; }
    public double WeightSparsity { get; init; }
    /// <summary>Median batch-1 latency measured on the server, µs.</summary>
    public double? LatencyUs { get; init; }
    public int LatencyRuns { get; init; }
    /// <summary>The server's effective MAC rate on the base model (its MACs over its measured latency), which scales latencies to device classes.</summary>
    public double? HostMacsPerSecond { get; init; }
    /// <summary>Estimated latency per device class (µs): measured latency × host MAC rate / the class's MAC rate.</summary>
    public IReadOnlyDictionary<string, double> DeviceLatencyUs { get; init; } = new Dictionary<string, double>();
    public DateTimeOffset EvaluatedAt { get; init; }
}
