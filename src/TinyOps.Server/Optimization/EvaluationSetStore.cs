using System.Text.Json;
using Dapper;
using TinyOps.Engine;
using TinyOps.Engine.Data;
using TinyOps.Engine.Onnx;
using TinyOps.Engine.Tensors;
using TinyOps.Optimize.Evaluation;
using TinyOps.Protocol;
using TinyOps.Protocol.Management;
using TinyOps.Server.Access;
using TinyOps.Server.Hosting;
using TinyOps.Server.Storage;

namespace TinyOps.Server.Optimization;

/// <summary>
/// A project's evaluation sets: labelled samples recipes name for their accuracy gate (evaluation: NAME) and may
/// calibrate on (calibration: NAME). Either a reference to the server's Fashion-MNIST test images (the first N) or
/// uploaded input and label tensors, kept as content-addressed blobs. Names never shadow the built-in sets.
/// </summary>
public sealed class EvaluationSetStore(Database db, BlobStore blobs, AuditLog audit, ServerOptions options)
{
    public const int MaxSamples = 1_000_000;
    private static readonly string[] Reserved = [.. DataSets.Names, "none"];

    private const string Columns = "project AS Project, name AS Name, kind AS Kind, description AS Description, sample_count AS Count, " +
        "sample_shape_json AS SampleShapeJson, classes AS Classes, inputs_sha256 AS InputsSha256, labels_sha256 AS LabelsSha256, created_at AS CreatedAt, created_by AS CreatedBy";

    private sealed class Row
    {
        public string Project { get; set; } = "";
        public string Name { get; set; } = "";
        public string Kind { get; set; } = "";
        public string Description { get; set; } = "";
        public long Count { get; set; }
        public string SampleShapeJson { get; set; } = "[]";
        public long Classes { get; set; }
        public string? InputsSha256 { get; set; }
        public string? LabelsSha256 { get; set; }
        public long CreatedAt { get; set; }
        public string CreatedBy { get; set; } = "";

        public int[] SampleShape => JsonSerializer.Deserialize(SampleShapeJson, ProtocolJson.Default.ListInt32)?.ToArray() ?? [];

        public EvaluationSetDto ToDto() => new()
        {
            Project = Project, Name = Name, Kind = Kind, Description = Description, Count = (int)Count, SampleShape = SampleShape, Classes = (int)Classes,
            InputsSha256 = InputsSha256, LabelsSha256 = LabelsSha256, CreatedAt = Database.ToTime(CreatedAt), CreatedBy = CreatedBy,
        };
    }

    public async Task<EvaluationSetDto> CreateAsync(UserContext user, string project, CreateEvaluationSetRequest req, CancellationToken ct = default)
    {
        user.RequireWrite(project);
        Names.Require(req.Name, "evaluation set name", field: "name");
        if (Reserved.Contains(req.Name))
            throw ApiException.BadField("name", $"'{req.Name}' is a built-in data set name; choose another name for the evaluation set");

        int count;
        int[] shape;
        int classes;
        string? inputsSha = null, labelsSha = null;
        switch (req.Kind)
        {
            case EvaluationSetKinds.FashionMnist:
                if (req.Inputs is not null || req.Labels is not null)
                    throw ApiException.BadField("inputs", "kind fashion-mnist refers to the server's Fashion-MNIST test images; do not send inputs or labels (or use kind tensors)");
                var test = LoadFashionMnist();
                count = req.Count ?? test.Count;
                if (count < 1 || count > test.Count)
                    throw ApiException.BadField("count", $"count {count} is outside 1-{test.Count} (the Fashion-MNIST test images)");
                shape = [1, test.Rows, test.Cols];
                classes = FashionMnist.ClassNames.Length;
                break;
            case EvaluationSetKinds.Tensors:
                var (inputBytes, inputs) = Tensor(req.Inputs, "inputs");
                var (labelBytes, labels) = Tensor(req.Labels, "labels");
                (count, shape, classes) = Check(inputs, labels);
                if (req.Count is { } limit)
                {
                    if (limit < 1 || limit > count) throw ApiException.BadField("count", $"count {limit} is outside 1-{count} (the samples uploaded)");
                    count = limit;
                }
                inputsSha = await blobs.PutAsync(inputBytes, ct);
                labelsSha = await blobs.PutAsync(labelBytes, ct);
                break;
            default:
                throw ApiException.BadField("kind", $"kind '{req.Kind}' is not known; use {string.Join(" or ", EvaluationSetKinds.All)}");
        }

        await using (var c = await db.OpenAsync(ct))
        {
            await using var tx = await db.BeginWriteAsync(c, ct);
            if (await c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM projects WHERE name = @project", new { project }, tx) == 0)
                throw ApiException.NotFound($"project '{project}' does not exist");
            int added = await c.ExecuteAsync("""
                INSERT INTO evaluation_sets (project, name, kind, description, sample_count, sample_shape_json, classes, inputs_sha256, labels_sha256, created_at, created_by)
                VALUES (@project, @name, @kind, @description, @count, @shape, @classes, @inputsSha, @labelsSha, @now, @by)
                ON CONFLICT (project, name) DO NOTHING
                """,
                new
                {
                    project, name = req.Name, kind = req.Kind, description = req.Description ?? "", count,
                    shape = JsonSerializer.Serialize(shape.ToList(), ProtocolJson.Default.ListInt32), classes, inputsSha, labelsSha,
                    now = Database.Now(), by = user.Actor,
                }, tx);
            if (added == 0)
                throw ApiException.Conflict($"project '{project}' already has an evaluation set '{req.Name}'; sets are immutable (recipes' gates depend on them), register the new data under another name");
            await audit.RecordAsync(user.Actor, "evaluation-set.create", req.Name, project,
                $"{req.Kind}: {count} samples of shape [{string.Join(",", shape)}], {classes} classes", c, tx);
            await tx.CommitAsync(ct);
        }
        return await GetAsync(project, req.Name, ct);
    }

    public async Task<List<EvaluationSetDto>> ListAsync(string project, CancellationToken ct = default)
    {
        await using var c = await db.OpenAsync(ct);
        return (await c.QueryAsync<Row>($"SELECT {Columns} FROM evaluation_sets WHERE project = @project ORDER BY name", new { project })).Select(r => r.ToDto()).ToList();
    }

    public async Task<EvaluationSetDto> GetAsync(string project, string name, CancellationToken ct = default)
    {
        await using var c = await db.OpenAsync(ct);
        var row = await c.QuerySingleOrDefaultAsync<Row>($"SELECT {Columns} FROM evaluation_sets WHERE project = @project AND name = @name", new { project, name });
        return row?.ToDto() ?? throw ApiException.NotFound($"project '{project}' has no evaluation set '{name}'; list them with GET {ApiRoutes.Project(project)}/evaluation-sets");
    }

    /// <summary>The data sets a recipe of the project may name: the built-ins and the project's evaluation sets (loaded when first used).</summary>
    public async Task<DataSets> DataSetsAsync(string project, CancellationToken ct = default)
    {
        await using var c = await db.OpenAsync(ct);
        var rows = (await c.QueryAsync<Row>($"SELECT {Columns} FROM evaluation_sets WHERE project = @project", new { project })).ToList();
        return new DataSets
        {
            FashionMnistDirectory = options.FashionMnistDirectory,
            Registered = rows.ToDictionary(r => r.Name, r => new Lazy<LabelledSet>(() => Load(r)), StringComparer.Ordinal),
        };
    }

    private LabelledSet Load(Row r)
    {
        string description = $"evaluation set '{r.Name}'";
        if (r.Kind == EvaluationSetKinds.FashionMnist)
            return LabelledSet.FromImages(FashionMnist.LoadTest(options.FashionMnistDirectory), $"{description} (the first {r.Count} Fashion-MNIST test images)", (int)r.Count);
        var inputs = ReadBlob(r.InputsSha256, description + " inputs");
        var labels = ReadBlob(r.LabelsSha256, description + " labels");
        return new LabelledSet(description, inputs.ToArray<float>(), r.SampleShape, labels.ToInt64Array().Select(l => (int)l).ToArray(), (int)r.Count);
    }

    private Tensor ReadBlob(string? sha, string what)
    {
        if (sha is null || !blobs.Exists(sha)) throw new InvalidDataException($"{what}: blob {sha} is missing from the server's blob store");
        var bytes = File.ReadAllBytes(blobs.PathOf(sha));
        return OnnxTensors.ReadPb(bytes, what);
    }

    private ImageDataset LoadFashionMnist()
    {
        try { return FashionMnist.LoadTest(options.FashionMnistDirectory); }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException)
        {
            throw ApiException.Unprocessable($"this server cannot read Fashion-MNIST: {e.Message}; install it there (apt-get install dataset-fashion-mnist) or upload the set as kind tensors");
        }
    }

    private static (byte[] Bytes, Tensor Tensor) Tensor(string? base64, string field)
    {
        if (string.IsNullOrEmpty(base64))
            throw ApiException.BadField(field, $"{field} is required for kind tensors: an ONNX TensorProto, base64");
        byte[] bytes;
        try { bytes = Convert.FromBase64String(base64); }
        catch (FormatException) { throw ApiException.BadField(field, $"{field} is not valid base64; send the TensorProto file's bytes base64-encoded"); }
        try { return (bytes, OnnxTensors.ReadPb(bytes, field)); }
        catch (Exception e) when (e is EngineException or Google.Protobuf.InvalidProtocolBufferException or ArgumentException or OverflowException)
        {
            throw ApiException.BadField(field, $"{field} is not an ONNX TensorProto the engine can read: {e.Message}");
        }
    }

    /// <summary>Inputs float32 [N, ...], labels integers [N] (or [N, 1]) from 0 to 65535, at least one sample.</summary>
    private static (int Count, int[] Shape, int Classes) Check(Tensor inputs, Tensor labels)
    {
        if (inputs.Type != DataType.Float32)
            throw ApiException.BadField("inputs", $"inputs is {inputs}; it must be float32 with the samples along the first dimension");
        if (inputs.Rank < 2 || inputs.Shape[0] < 1)
            throw ApiException.BadField("inputs", $"inputs is {inputs}; give [N, ...] with N samples of the model input's shape (without the batch dimension)");
        int n = inputs.Shape[0];
        if (n > MaxSamples) throw ApiException.BadField("inputs", $"inputs holds {n} samples; at most {MaxSamples} are accepted");
        if (labels.Type is not (DataType.Int64 or DataType.Int32 or DataType.Int8 or DataType.UInt8) || !(labels.Rank == 1 || (labels.Rank == 2 && labels.Shape[1] == 1)) || labels.Shape[0] != n)
            throw ApiException.BadField("labels", $"labels is {labels}; it must be integer class indexes of shape [{n}], one per input sample");
        long max = -1;
        for (int i = 0; i < n; i++)
        {
            long l = labels.GetInt64(i);
            if (l < 0 || l > ushort.MaxValue)
                throw ApiException.BadField("labels", $"labels[{i}] is {l}; a class index is from 0 to {ushort.MaxValue}");
            max = Math.Max(max, l);
        }
        return (n, inputs.Shape[1..], (int)max + 1);
    }
}
