using System.Data.Common;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using Dapper;
using TinyOps.Protocol;
using TinyOps.Protocol.Management;
using TinyOps.Server.Access;
using TinyOps.Server.Hosting;
using TinyOps.Server.Storage;

namespace TinyOps.Server.Registry;

/// <summary>What a caller registers as a derived variant of a version (recipe jobs add its lineage and evaluation).</summary>
public sealed record VariantUpload(
    string Name,
    string? ParentId,
    string Recipe,
    IReadOnlyDictionary<string, string> Parameters,
    IReadOnlyDictionary<string, double> Metrics,
    string Status = "accepted",
    string? StatusReason = null)
{
    public VariantLineageDto? Lineage { get; init; }
    public VariantEvaluationDto? Evaluation { get; init; }
}

/// <summary>
/// Told about every pushed version inside the push's transaction (so what it writes commits or rolls back with the
/// version): the optimization feature queues the model's recipe here. Returns a line for the push's audit entry, or null.
/// </summary>
public interface IVersionPushedHook
{
    Task<string?> OnVersionPushedAsync(DbConnection c, DbTransaction tx, UserContext user, string project, string model, string version, CancellationToken ct);
}

/// <summary>
/// The model registry's writes and reads: models, versions, variants with lineage, aliases and artifacts. Every
/// multi-row write runs in one transaction together with its audit entry, so a refused request leaves nothing.
/// </summary>
public sealed class RegistryService(Database db, BlobStore blobs, SigningKeyRing keys, VariantQueries variants, AuditLog audit, IEnumerable<IVersionPushedHook> hooks)
{
    public const string BaseVariant = "base";
    public static readonly string[] Statuses = ["accepted", "rejected", "pending"];

    public static string NewVariantId() => "var_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));

    // ---- models ----

    public async Task<List<ModelDto>> ListModelsAsync(string project, CancellationToken ct = default)
    {
        await using var c = await db.OpenAsync(ct);
        await RequireProjectAsync(c, null, project);
        var models = await c.QueryAsync<(string Name, string Description, long CreatedAt)>(
            "SELECT name, description, created_at FROM models WHERE project = @project ORDER BY name", new { project });
        var aliases = (await c.QueryAsync<(string Model, string Alias, string Version)>(
            "SELECT model, alias, version FROM aliases WHERE project = @project", new { project })).ToLookup(a => a.Model);
        var counts = (await c.QueryAsync<(string Model, long Count)>(
            "SELECT model, COUNT(*) FROM model_versions WHERE project = @project GROUP BY model", new { project })).ToDictionary(x => x.Model, x => x.Count);
        return models.Select(m => new ModelDto(project, m.Name, m.Description, Database.ToTime(m.CreatedAt),
            aliases[m.Name].OrderBy(a => a.Alias, StringComparer.Ordinal).ToDictionary(a => a.Alias, a => a.Version),
            (int)counts.GetValueOrDefault(m.Name))).ToList();
    }

    public async Task<ModelDto> GetModelAsync(string project, string model, CancellationToken ct = default)
    {
        await using var c = await db.OpenAsync(ct);
        await RequireProjectAsync(c, null, project);
        return await ReadModelAsync(c, null, project, model);
    }

    public async Task<ModelDto> CreateModelAsync(UserContext user, string project, CreateModelRequest req, CancellationToken ct = default)
    {
        Names.Require(req.Name, "model name");
        await using var c = await db.OpenAsync(ct);
        await using var tx = await db.BeginWriteAsync(c, ct);
        await RequireProjectAsync(c, tx, project);
        int added = await c.ExecuteAsync("INSERT INTO models (project, name, description, created_at) VALUES (@project, @name, @description, @now) ON CONFLICT (project, name) DO NOTHING",
            new { project, name = req.Name, description = req.Description ?? "", now = Database.Now() }, tx);
        if (added == 0) throw ApiException.Conflict($"model '{req.Name}' already exists in project '{project}'");
        await Audit(c, tx, user, "model.create", req.Name, project, req.Description ?? "");
        var dto = await ReadModelAsync(c, tx, project, req.Name);
        await tx.CommitAsync(ct);
        return dto;
    }

    // ---- versions ----

    /// <summary>Registers a new version from an uploaded artifact: model (if missing), version, base variant, artifact and alias in one transaction.</summary>
    public async Task<VersionDto> PushVersionAsync(UserContext user, string project, string model, string? version, string? notes, string? alias, string? description, byte[] bytes, CancellationToken ct = default)
    {
        Names.Require(model, "model name");
        if (version is not null) Names.Require(version, "version");
        if (alias is not null) Names.Require(alias, "alias");
        var metadata = ModelInspector.Inspect(bytes, $"the artifact of model '{model}'");
        var key = await keys.CurrentAsync(ct);
        string sha = await blobs.PutAsync(bytes, ct);
        string signature = key.SignArtifact(sha);
        long now = Database.Now();

        await using var c = await db.OpenAsync(ct);
        await using var tx = await db.BeginWriteAsync(c, ct);
        await RequireProjectAsync(c, tx, project);
        bool createdModel = await c.ExecuteAsync("INSERT INTO models (project, name, description, created_at) VALUES (@project, @model, @description, @now) ON CONFLICT (project, name) DO NOTHING",
            new { project, model, description = description ?? "", now }, tx) > 0;
        // Serializes pushes to the same model (a no-op update takes the row lock on PostgreSQL; SQLite has one writer).
        await c.ExecuteAsync("UPDATE models SET description = description WHERE project = @project AND name = @model", new { project, model }, tx);
        var existing = (await c.QueryAsync<string>("SELECT version FROM model_versions WHERE project = @project AND model = @model", new { project, model }, tx)).ToList();
        string v = version ?? NextVersion(existing);
        if (existing.Contains(v, StringComparer.Ordinal))
            throw ApiException.Conflict($"model '{model}' already has version '{v}'; push under another version or omit ?version= to take the next number");
        if (await c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM aliases WHERE project = @project AND model = @model AND alias = @v", new { project, model, v }, tx) > 0)
            throw ApiException.Conflict($"'{v}' is an alias of model '{model}'; choose a version name that is not an alias");
        if (alias is not null && existing.Contains(alias, StringComparer.Ordinal))
            throw ApiException.BadRequest($"alias '{alias}' is the name of a version of model '{model}'; choose another alias");
        if (await c.ExecuteAsync("INSERT INTO model_versions (project, model, version, created_at, created_by, notes) VALUES (@project, @model, @v, @now, @by, @notes) ON CONFLICT (project, model, version) DO NOTHING",
                new { project, model, v, now, by = user.Actor, notes = notes ?? "" }, tx) == 0)
            throw ApiException.Conflict($"model '{model}' already has version '{v}'");
        await InsertArtifactAsync(c, tx, sha, bytes.Length, project, now);
        string variantId = NewVariantId();
        await InsertVariantAsync(c, tx, new VariantDto
        {
            Id = variantId, Model = model, Version = v, Name = BaseVariant, ParentId = null, Recipe = BaseVariant,
            ArtifactSha256 = sha, ArtifactSize = bytes.Length, Metadata = metadata, Status = "accepted",
            ArtifactSignature = signature, SigningKeyId = key.KeyId, CreatedAt = Database.ToTime(now),
        }, project);
        if (createdModel) await Audit(c, tx, user, "model.create", model, project, "created by the first push");
        var notesFromHooks = new List<string>();
        foreach (var hook in hooks)
            if (await hook.OnVersionPushedAsync(c, tx, user, project, model, v, ct) is { } note) notesFromHooks.Add(note);
        await Audit(c, tx, user, "version.push", $"{model}:{v}", project,
            $"base variant {variantId}, artifact {sha} ({bytes.Length} bytes)" + string.Concat(notesFromHooks.Select(n => "; " + n)));
        if (alias is not null)
        {
            await UpsertAliasAsync(c, tx, project, model, alias, v);
            await Audit(c, tx, user, "alias.set", $"{model}@{alias}", project, $"-> {v}");
        }
        var dto = await ReadVersionAsync(c, tx, project, model, v);
        await tx.CommitAsync(ct);
        return dto;
    }

    public async Task<List<VersionDto>> ListVersionsAsync(string project, string model, CancellationToken ct = default)
    {
        await using var c = await db.OpenAsync(ct);
        await RequireProjectAsync(c, null, project);
        await ReadModelAsync(c, null, project, model);
        var rows = await c.QueryAsync<(string Version, long CreatedAt, string CreatedBy, string Notes)>(
            "SELECT version, created_at, created_by, notes FROM model_versions WHERE project = @project AND model = @model ORDER BY created_at, version", new { project, model });
        var all = (await c.QueryAsync<VariantQueries.Row>($"SELECT {VariantQueries.Columns} FROM variants WHERE project = @project AND model = @model ORDER BY created_at, id",
            new { project, model })).Select(VariantQueries.Map).ToLookup(x => x.Version);
        return rows.Select(r => new VersionDto(project, model, r.Version, Database.ToTime(r.CreatedAt), r.CreatedBy, r.Notes, all[r.Version].ToList())).ToList();
    }

    public async Task<VersionDto> GetVersionAsync(string project, string model, string versionOrAlias, CancellationToken ct = default)
    {
        await using var c = await db.OpenAsync(ct);
        await RequireProjectAsync(c, null, project);
        await ReadModelAsync(c, null, project, model);
        string v = await ResolveAsync(c, null, project, model, versionOrAlias);
        return await ReadVersionAsync(c, null, project, model, v);
    }

    // ---- variants ----

    /// <summary>
    /// Registers a derived variant of a version with its lineage (parent defaults to the base variant), recorded in the
    /// audit log as <paramref name="actor"/> (a user, or a recipe job). The caller checks the actor may write the project.
    /// </summary>
    public async Task<VariantDto> AddVariantAsync(string actor, string project, string model, string version, VariantUpload upload, byte[] bytes, CancellationToken ct = default)
    {
        Names.Require(upload.Name, "variant name");
        Names.Require(upload.Recipe, "recipe");
        if (!Statuses.Contains(upload.Status))
            throw ApiException.BadRequest($"status '{upload.Status}' is not one of {string.Join(", ", Statuses)}");
        var metadata = ModelInspector.Inspect(bytes, $"the artifact of variant '{upload.Name}'");
        var key = await keys.CurrentAsync(ct);
        string sha = await blobs.PutAsync(bytes, ct);
        string signature = key.SignArtifact(sha);
        long now = Database.Now();

        await using var c = await db.OpenAsync(ct);
        await using var tx = await db.BeginWriteAsync(c, ct);
        await RequireProjectAsync(c, tx, project);
        await ReadModelAsync(c, tx, project, model);
        // Locks the version row (PostgreSQL) so two registrations of the same variant name cannot both pass the check below.
        if (await c.ExecuteAsync("UPDATE model_versions SET notes = notes WHERE project = @project AND model = @model AND version = @version", new { project, model, version }, tx) == 0)
            throw ApiException.NotFound($"model '{model}' has no version '{version}'; versions: {await VersionListAsync(c, tx, project, model)}");
        var siblings = await variants.VariantsOfVersionAsync(project, model, version, c, ct, tx);
        if (siblings.Any(s => s.Name == upload.Name))
            throw ApiException.Conflict($"version '{version}' of model '{model}' already has a variant named '{upload.Name}'; variants: {string.Join(", ", siblings.Select(s => s.Name))}");
        VariantDto parent;
        if (upload.ParentId is null)
            parent = siblings.FirstOrDefault(s => s.ParentId is null && s.Name == BaseVariant)
                ?? throw ApiException.Conflict($"version '{version}' of model '{model}' has no base variant; name the parent with ?parent=");
        else
            parent = siblings.FirstOrDefault(s => s.Id == upload.ParentId)
                ?? throw ApiException.BadRequest($"parent '{upload.ParentId}' is not a variant of version '{version}' of model '{model}'; its variants: {string.Join(", ", siblings.Select(s => $"{s.Id} ({s.Name})"))}");
        await InsertArtifactAsync(c, tx, sha, bytes.Length, project, now);
        var dto = new VariantDto
        {
            Id = NewVariantId(), Model = model, Version = version, Name = upload.Name, ParentId = parent.Id, Recipe = upload.Recipe,
            Parameters = upload.Parameters, ArtifactSha256 = sha, ArtifactSize = bytes.Length, Metadata = metadata,
            Status = upload.Status, StatusReason = upload.StatusReason, Metrics = upload.Metrics,
            ArtifactSignature = signature, SigningKeyId = key.KeyId, CreatedAt = Database.ToTime(now),
            Lineage = upload.Lineage, Evaluation = upload.Evaluation,
        };
        await InsertVariantAsync(c, tx, dto, project);
        await audit.RecordAsync(actor, "variant.register", dto.Id, project,
            $"{model}:{version} '{upload.Name}' recipe {upload.Recipe} from {parent.Id}, artifact {sha} ({bytes.Length} bytes), {upload.Status}"
            + (upload.StatusReason is null ? "" : $" ({upload.StatusReason})"), c, tx);
        var stored = await variants.GetVariantAsync(project, dto.Id, c, ct, tx) ?? throw new InvalidOperationException("variant vanished");
        await tx.CommitAsync(ct);
        return stored;
    }

    /// <summary>
    /// Records an evaluation of an existing variant (a recipe job evaluates the base model): its metrics and evaluation
    /// change, its artifact, signature and status do not.
    /// </summary>
    public async Task<VariantDto> RecordEvaluationAsync(string actor, string project, string variantId, VariantEvaluationDto evaluation, IReadOnlyDictionary<string, double> metrics, CancellationToken ct = default)
    {
        await using var c = await db.OpenAsync(ct);
        await using var tx = await db.BeginWriteAsync(c, ct);
        var v = await variants.GetVariantAsync(project, variantId, c, ct, tx) ?? throw ApiException.NotFound($"project '{project}' has no variant '{variantId}'");
        var merged = new SortedDictionary<string, double>(new Dictionary<string, double>(v.Metrics), StringComparer.Ordinal);
        foreach (var (k, x) in metrics) merged[k] = x;
        await c.ExecuteAsync("UPDATE variants SET metrics_json = @metrics, evaluation_json = @evaluation WHERE project = @project AND id = @variantId",
            new
            {
                project, variantId,
                metrics = JsonSerializer.Serialize(new Dictionary<string, double>(merged), ProtocolJson.Default.DictionaryStringDouble),
                evaluation = JsonSerializer.Serialize(evaluation, ProtocolJson.Default.VariantEvaluationDto),
            }, tx);
        await audit.RecordAsync(actor, "variant.evaluate", variantId, project,
            $"{v.Model}:{v.Version} '{v.Name}' on {evaluation.EvaluationSet ?? "no labelled set"}: {string.Join(", ", metrics.Select(m => $"{m.Key}={m.Value:G6}"))}", c, tx);
        var stored = await variants.GetVariantAsync(project, variantId, c, ct, tx) ?? throw new InvalidOperationException("variant vanished");
        await tx.CommitAsync(ct);
        return stored;
    }

    public async Task<VariantDto> GetVariantAsync(string project, string variantId, CancellationToken ct = default)
    {
        await using var c = await db.OpenAsync(ct);
        await RequireProjectAsync(c, null, project);
        return await variants.GetVariantAsync(project, variantId, c, ct)
            ?? throw ApiException.NotFound($"project '{project}' has no variant '{variantId}'");
    }

    // ---- aliases ----

    public async Task<ModelDto> SetAliasAsync(UserContext user, string project, string model, string alias, string version, CancellationToken ct = default)
    {
        Names.Require(alias, "alias");
        Names.Require(version, "version");
        await using var c = await db.OpenAsync(ct);
        await using var tx = await db.BeginWriteAsync(c, ct);
        await RequireProjectAsync(c, tx, project);
        await ReadModelAsync(c, tx, project, model);
        var versions = (await c.QueryAsync<string>("SELECT version FROM model_versions WHERE project = @project AND model = @model ORDER BY created_at", new { project, model }, tx)).ToList();
        if (versions.Contains(alias, StringComparer.Ordinal))
            throw ApiException.BadRequest($"alias '{alias}' is the name of a version of model '{model}'; choose another alias");
        if (!versions.Contains(version, StringComparer.Ordinal))
            throw ApiException.NotFound($"model '{model}' has no version '{version}'; versions: {(versions.Count == 0 ? "(none)" : string.Join(", ", versions))}");
        string? previous = await c.ExecuteScalarAsync<string?>("SELECT version FROM aliases WHERE project = @project AND model = @model AND alias = @alias", new { project, model, alias }, tx);
        await UpsertAliasAsync(c, tx, project, model, alias, version);
        await Audit(c, tx, user, "alias.set", $"{model}@{alias}", project, previous is null ? $"-> {version}" : $"{previous} -> {version}");
        var dto = await ReadModelAsync(c, tx, project, model);
        await tx.CommitAsync(ct);
        return dto;
    }

    public async Task DeleteAliasAsync(UserContext user, string project, string model, string alias, CancellationToken ct = default)
    {
        await using var c = await db.OpenAsync(ct);
        await using var tx = await db.BeginWriteAsync(c, ct);
        await RequireProjectAsync(c, tx, project);
        var m = await ReadModelAsync(c, tx, project, model);
        if (await c.ExecuteAsync("DELETE FROM aliases WHERE project = @project AND model = @model AND alias = @alias", new { project, model, alias }, tx) == 0)
            throw ApiException.NotFound($"model '{model}' has no alias '{alias}'; aliases: {(m.Aliases.Count == 0 ? "(none)" : string.Join(", ", m.Aliases.Keys))}");
        await Audit(c, tx, user, "alias.delete", $"{model}@{alias}", project, $"was {m.Aliases[alias]}");
        await tx.CommitAsync(ct);
    }

    // ---- artifacts ----

    /// <summary>Whether the artifact is one of the project's (a variant of the project uses it, or the project uploaded it first).</summary>
    public async Task<bool> ArtifactBelongsAsync(string project, string sha256, CancellationToken ct = default)
    {
        await using var c = await db.OpenAsync(ct);
        return await c.ExecuteScalarAsync<long>(
            "SELECT (SELECT COUNT(*) FROM variants WHERE project = @project AND artifact_sha256 = @sha) + (SELECT COUNT(*) FROM artifacts WHERE project = @project AND sha256 = @sha)",
            new { project, sha = sha256 }) > 0;
    }

    // ---- helpers ----

    /// <summary>One more than the largest integer version, "1" for the first.</summary>
    public static string NextVersion(IEnumerable<string> existing)
    {
        long max = 0;
        foreach (var v in existing)
            if (long.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out long n) && n > max) max = n;
        return (max + 1).ToString(CultureInfo.InvariantCulture);
    }

    private static async Task RequireProjectAsync(DbConnection c, DbTransaction? tx, string project)
    {
        if (await c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM projects WHERE name = @project", new { project }, tx) == 0)
            throw ApiException.NotFound($"project '{project}' does not exist");
    }

    private static async Task<ModelDto> ReadModelAsync(DbConnection c, DbTransaction? tx, string project, string model)
    {
        var row = (await c.QueryAsync<(string Name, string Description, long CreatedAt)>(
            "SELECT name, description, created_at FROM models WHERE project = @project AND name = @model", new { project, model }, tx)).ToList();
        if (row.Count == 0)
        {
            var names = (await c.QueryAsync<string>("SELECT name FROM models WHERE project = @project ORDER BY name LIMIT 20", new { project }, tx)).ToList();
            throw ApiException.NotFound($"project '{project}' has no model '{model}'; models: {(names.Count == 0 ? "(none)" : string.Join(", ", names))}");
        }
        var aliases = (await c.QueryAsync<(string Alias, string Version)>(
            "SELECT alias, version FROM aliases WHERE project = @project AND model = @model ORDER BY alias", new { project, model }, tx))
            .ToDictionary(a => a.Alias, a => a.Version);
        long count = await c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM model_versions WHERE project = @project AND model = @model", new { project, model }, tx);
        return new ModelDto(project, row[0].Name, row[0].Description, Database.ToTime(row[0].CreatedAt), aliases, (int)count);
    }

    private async Task<VersionDto> ReadVersionAsync(DbConnection c, DbTransaction? tx, string project, string model, string version)
    {
        var row = await c.QuerySingleAsync<(long CreatedAt, string CreatedBy, string Notes)>(
            "SELECT created_at, created_by, notes FROM model_versions WHERE project = @project AND model = @model AND version = @version", new { project, model, version }, tx);
        var list = await variants.VariantsOfVersionAsync(project, model, version, c, default, tx);
        return new VersionDto(project, model, version, Database.ToTime(row.CreatedAt), row.CreatedBy, row.Notes, list);
    }

    private static async Task<string> ResolveAsync(DbConnection c, DbTransaction? tx, string project, string model, string versionOrAlias)
    {
        if (await c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM model_versions WHERE project = @project AND model = @model AND version = @v",
                new { project, model, v = versionOrAlias }, tx) > 0)
            return versionOrAlias;
        var aliased = await c.ExecuteScalarAsync<string?>("SELECT version FROM aliases WHERE project = @project AND model = @model AND alias = @a",
            new { project, model, a = versionOrAlias }, tx);
        return aliased ?? throw ApiException.NotFound(
            $"model '{model}' has no version or alias '{versionOrAlias}'; versions: {await VersionListAsync(c, tx, project, model)}");
    }

    private static async Task<string> VersionListAsync(DbConnection c, DbTransaction? tx, string project, string model)
    {
        var versions = (await c.QueryAsync<string>("SELECT version FROM model_versions WHERE project = @project AND model = @model ORDER BY created_at", new { project, model }, tx)).ToList();
        var aliases = (await c.QueryAsync<string>("SELECT alias FROM aliases WHERE project = @project AND model = @model ORDER BY alias", new { project, model }, tx)).ToList();
        string text = versions.Count == 0 ? "(none)" : string.Join(", ", versions);
        return aliases.Count == 0 ? text : $"{text}; aliases: {string.Join(", ", aliases)}";
    }

    private static Task UpsertAliasAsync(DbConnection c, DbTransaction tx, string project, string model, string alias, string version) =>
        c.ExecuteAsync("INSERT INTO aliases (project, model, alias, version) VALUES (@project, @model, @alias, @version) ON CONFLICT (project, model, alias) DO UPDATE SET version = excluded.version",
            new { project, model, alias, version }, tx);

    private static Task InsertArtifactAsync(DbConnection c, DbTransaction tx, string sha, long size, string project, long now) =>
        c.ExecuteAsync("INSERT INTO artifacts (sha256, size, project, created_at) VALUES (@sha, @size, @project, @now) ON CONFLICT (sha256) DO NOTHING",
            new { sha, size, project, now }, tx);

    private static Task InsertVariantAsync(DbConnection c, DbTransaction tx, VariantDto v, string project) =>
        c.ExecuteAsync($"INSERT INTO variants ({VariantQueries.Columns}) VALUES (@id, @project, @model, @version, @name, @parent, @recipe, @parameters, @sha, @size, @metadata, @status, @reason, @metrics, @signature, @keyId, @at, @lineage, @evaluation)",
            new
            {
                id = v.Id, project, model = v.Model, version = v.Version, name = v.Name, parent = v.ParentId, recipe = v.Recipe,
                parameters = JsonSerializer.Serialize(new Dictionary<string, string>(v.Parameters), ProtocolJson.Default.DictionaryStringString),
                sha = v.ArtifactSha256, size = v.ArtifactSize,
                metadata = JsonSerializer.Serialize(v.Metadata, ProtocolJson.Default.ModelMetadataDto),
                status = v.Status, reason = v.StatusReason,
                metrics = JsonSerializer.Serialize(new Dictionary<string, double>(v.Metrics), ProtocolJson.Default.DictionaryStringDouble),
                signature = v.ArtifactSignature, keyId = v.SigningKeyId, at = v.CreatedAt.ToUnixTimeMilliseconds(),
                lineage = v.Lineage is null ? null : JsonSerializer.Serialize(v.Lineage, ProtocolJson.Default.VariantLineageDto),
                evaluation = v.Evaluation is null ? null : JsonSerializer.Serialize(v.Evaluation, ProtocolJson.Default.VariantEvaluationDto),
            }, tx);

    private Task Audit(DbConnection c, DbTransaction tx, UserContext user, string action, string target, string project, string detail) =>
        audit.RecordAsync(user.Actor, action, target, project, detail, c, tx);
}
