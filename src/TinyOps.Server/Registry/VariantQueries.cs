using System.Data.Common;
using System.Text.Json;
using Dapper;
using TinyOps.Protocol;
using TinyOps.Protocol.Management;
using TinyOps.Server.Hosting;
using TinyOps.Server.Storage;

namespace TinyOps.Server.Registry;

/// <summary>Read access to versions and variants, shared by the fleet and deployment features.</summary>
public sealed class VariantQueries(Database db)
{
    internal const string Columns = "id, project, model, version, name, parent_id, recipe, parameters_json, artifact_sha256, artifact_size, metadata_json, status, status_reason, metrics_json, artifact_signature, signing_key_id, created_at, lineage_json, evaluation_json";

    internal sealed record Row(string id, string project, string model, string version, string name, string? parent_id, string recipe, string parameters_json,
        string artifact_sha256, long artifact_size, string metadata_json, string status, string? status_reason, string metrics_json,
        string artifact_signature, string signing_key_id, long created_at, string? lineage_json, string? evaluation_json);

    internal static VariantDto Map(Row r) => new()
    {
        Id = r.id,
        Model = r.model,
        Version = r.version,
        Name = r.name,
        ParentId = r.parent_id,
        Recipe = r.recipe,
        Parameters = JsonSerializer.Deserialize(r.parameters_json, ProtocolJson.Default.DictionaryStringString) ?? [],
        ArtifactSha256 = r.artifact_sha256,
        ArtifactSize = r.artifact_size,
        Metadata = JsonSerializer.Deserialize(r.metadata_json, ProtocolJson.Default.ModelMetadataDto) ?? new ModelMetadataDto(),
        Status = r.status,
        StatusReason = r.status_reason,
        Metrics = JsonSerializer.Deserialize(r.metrics_json, ProtocolJson.Default.DictionaryStringDouble) ?? [],
        ArtifactSignature = r.artifact_signature,
        SigningKeyId = r.signing_key_id,
        CreatedAt = Database.ToTime(r.created_at),
        Lineage = r.lineage_json is null ? null : JsonSerializer.Deserialize(r.lineage_json, ProtocolJson.Default.VariantLineageDto),
        Evaluation = r.evaluation_json is null ? null : JsonSerializer.Deserialize(r.evaluation_json, ProtocolJson.Default.VariantEvaluationDto),
    };

    public async Task<VariantDto?> GetVariantAsync(string project, string variantId, DbConnection? connection = null, CancellationToken ct = default, DbTransaction? tx = null)
    {
        await using var owned = connection is null ? await db.OpenAsync(ct) : null;
        var c = connection ?? owned!;
        var row = await c.QuerySingleOrDefaultAsync<Row>($"SELECT {Columns} FROM variants WHERE project = @project AND id = @variantId", new { project, variantId }, tx);
        return row is null ? null : Map(row);
    }

    public async Task<List<VariantDto>> VariantsOfVersionAsync(string project, string model, string version, DbConnection? connection = null, CancellationToken ct = default, DbTransaction? tx = null)
    {
        await using var owned = connection is null ? await db.OpenAsync(ct) : null;
        var c = connection ?? owned!;
        var rows = await c.QueryAsync<Row>($"SELECT {Columns} FROM variants WHERE project = @project AND model = @model AND version = @version ORDER BY created_at, id", new { project, model, version }, tx);
        return rows.Select(Map).ToList();
    }

    /// <summary>A version name, or an alias resolved to its version; 404 when neither exists.</summary>
    public async Task<string> ResolveVersionAsync(string project, string model, string versionOrAlias, CancellationToken ct = default)
    {
        await using var c = await db.OpenAsync(ct);
        if (await c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM model_versions WHERE project = @project AND model = @model AND version = @v",
                new { project, model, v = versionOrAlias }) > 0)
            return versionOrAlias;
        var aliased = await c.ExecuteScalarAsync<string?>("SELECT version FROM aliases WHERE project = @project AND model = @model AND alias = @a",
            new { project, model, a = versionOrAlias });
        return aliased ?? throw ApiException.NotFound($"model '{model}' in project '{project}' has no version or alias '{versionOrAlias}'");
    }
}
