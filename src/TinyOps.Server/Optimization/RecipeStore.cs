using System.Data.Common;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Dapper;
using TinyOps.Optimize.Evaluation;
using TinyOps.Optimize.Recipes;
using TinyOps.Protocol.Management;
using TinyOps.Server.Access;
using TinyOps.Server.Hosting;
using TinyOps.Server.Jobs;
using TinyOps.Server.Registry;
using TinyOps.Server.Storage;

namespace TinyOps.Server.Optimization;

/// <summary>
/// Each model's recipe (one per model): validated completely at upload against the project's data sets, stored as
/// text with its SHA-256, and queued as a background job for every version pushed afterwards (or on request).
/// </summary>
public sealed class RecipeStore(Database db, EvaluationSetStore sets, JobStore jobs, VariantQueries variants, AuditLog audit) : IVersionPushedHook
{
    public const int MaxRecipeBytes = 1 << 20;

    /// <summary>How recipe messages name their source.</summary>
    public static string Source(string model) => $"recipe of model '{model}'";

    private sealed record Stored(string Name, string Text, string Sha256, long UpdatedAt, string UpdatedBy);

    public async Task<RecipeDto> SetAsync(UserContext user, string project, string model, string text, CancellationToken ct = default)
    {
        user.RequireWrite(project);
        if (string.IsNullOrWhiteSpace(text))
            throw ApiException.BadRequest("the body is empty; send the recipe as YAML or JSON (see docs/optimize.md, 'Recipes')");
        var recipe = Parse(text, model, await sets.DataSetsAsync(project, ct));
        string sha = Sha256(text);
        await using (var c = await db.OpenAsync(ct))
        {
            await using var tx = await db.BeginWriteAsync(c, ct);
            await RequireModelAsync(c, tx, project, model);
            await c.ExecuteAsync("""
                INSERT INTO model_recipes (project, model, name, text, sha256, updated_at, updated_by) VALUES (@project, @model, @name, @text, @sha, @now, @by)
                ON CONFLICT (project, model) DO UPDATE SET name = excluded.name, text = excluded.text, sha256 = excluded.sha256, updated_at = excluded.updated_at, updated_by = excluded.updated_by
                """,
                new { project, model, name = recipe.Name, text, sha, now = Database.Now(), by = user.Actor }, tx);
            await audit.RecordAsync(user.Actor, "recipe.set", model, project,
                $"recipe '{recipe.Name}' sha256 {sha[..12]}: {string.Join(", ", recipe.Variants.Select(v => v.Name))}; evaluation {recipe.Evaluation ?? "none"}", c, tx);
            await tx.CommitAsync(ct);
        }
        return await GetAsync(project, model, ct);
    }

    public async Task<RecipeDto> GetAsync(string project, string model, CancellationToken ct = default)
    {
        await using var c = await db.OpenAsync(ct);
        var stored = await ReadAsync(c, null, project, model) ?? throw await NoRecipeAsync(c, project, model);
        Recipe? recipe = null;
        try { recipe = RecipeParser.Parse(stored.Text, Source(model), await sets.DataSetsAsync(project, ct)); }
        catch (RecipeException) { } // validated at upload; shown as stored
        return new RecipeDto
        {
            Project = project, Model = model, Name = stored.Name, Sha256 = stored.Sha256, Text = stored.Text,
            Evaluation = recipe?.Evaluation, LatencyRuns = recipe?.LatencyRuns ?? 0,
            Variants = recipe?.Variants.Select(v => new RecipeVariantDto(v.Name, v.Targets, v.MaxAccuracyDrop, v.Passes.Select(p => p.ToString()).ToList())).ToList() ?? [],
            UpdatedAt = Database.ToTime(stored.UpdatedAt), UpdatedBy = stored.UpdatedBy,
        };
    }

    public async Task DeleteAsync(UserContext user, string project, string model, CancellationToken ct = default)
    {
        user.RequireWrite(project);
        await using var c = await db.OpenAsync(ct);
        await using var tx = await db.BeginWriteAsync(c, ct);
        if (await c.ExecuteAsync("DELETE FROM model_recipes WHERE project = @project AND model = @model", new { project, model }, tx) == 0)
            throw await NoRecipeAsync(c, project, model, tx);
        await audit.RecordAsync(user.Actor, "recipe.delete", model, project, "new versions are no longer optimized", c, tx);
        await tx.CommitAsync(ct);
    }

    /// <summary>Queues the model's recipe for an existing version (or alias), e.g. after the recipe was set or changed.</summary>
    public async Task<JobDto> RunAsync(UserContext user, string project, string model, string versionOrAlias, CancellationToken ct = default)
    {
        user.RequireWrite(project);
        string version = await variants.ResolveVersionAsync(project, model, versionOrAlias, ct);
        string id;
        await using (var c = await db.OpenAsync(ct))
        {
            await using var tx = await db.BeginWriteAsync(c, ct);
            var stored = await ReadAsync(c, tx, project, model) ?? throw await NoRecipeAsync(c, project, model, tx);
            id = await jobs.EnqueueAsync(c, tx, project, RecipeJob.JobKind, model, version, Payload(stored), user.Actor, $"recipe '{stored.Name}' run on request");
            await tx.CommitAsync(ct);
        }
        return await jobs.GetAsync(project, id, ct);
    }

    /// <summary>A pushed version of a model with a recipe gets a recipe job, in the push's transaction.</summary>
    public async Task<string?> OnVersionPushedAsync(DbConnection c, DbTransaction tx, UserContext user, string project, string model, string version, CancellationToken ct)
    {
        var stored = await ReadAsync(c, tx, project, model);
        if (stored is null) return null;
        string id = await jobs.EnqueueAsync(c, tx, project, RecipeJob.JobKind, model, version, Payload(stored), user.Actor, $"recipe '{stored.Name}' queued by the push of version {version}");
        return $"recipe '{stored.Name}' queued as job {id}";
    }

    /// <summary>Parses a recipe for a model of the project; a bad one is a 400 naming the field.</summary>
    public static Recipe Parse(string text, string model, DataSets sets)
    {
        try { return RecipeParser.Parse(text, Source(model), sets); }
        catch (RecipeException e) { throw ApiException.BadField(e.Field ?? "recipe", e.Message); }
    }

    /// <summary>A job carries the recipe as it was when queued, so a later edit does not change what it builds.</summary>
    private static string Payload(Stored s) => new JsonObject { ["recipe"] = s.Name, ["sha256"] = s.Sha256, ["text"] = s.Text }.ToJsonString();

    internal static (string Name, string Sha256, string Text) ReadPayload(string json)
    {
        var o = JsonNode.Parse(json) as JsonObject ?? throw new JobException("the job's payload is not a JSON object");
        return ((string?)o["recipe"] ?? "", (string?)o["sha256"] ?? "", (string?)o["text"] ?? throw new JobException("the job's payload holds no recipe text"));
    }

    public static string Sha256(string text) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)));

    private static async Task<Stored?> ReadAsync(DbConnection c, DbTransaction? tx, string project, string model) =>
        await c.QuerySingleOrDefaultAsync<Stored>(
            "SELECT name AS Name, text AS Text, sha256 AS Sha256, updated_at AS UpdatedAt, updated_by AS UpdatedBy FROM model_recipes WHERE project = @project AND model = @model",
            new { project, model }, tx);

    private static async Task RequireModelAsync(DbConnection c, DbTransaction tx, string project, string model)
    {
        if (await c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM projects WHERE name = @project", new { project }, tx) == 0)
            throw ApiException.NotFound($"project '{project}' does not exist");
        if (await c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM models WHERE project = @project AND name = @model", new { project, model }, tx) == 0)
            throw ApiException.NotFound($"project '{project}' has no model '{model}'; push its first version (tinyops model push) or create it (POST {Protocol.ApiRoutes.Project(project)}/models) before setting its recipe");
    }

    private static async Task<ApiException> NoRecipeAsync(DbConnection c, string project, string model, DbTransaction? tx = null)
    {
        if (await c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM models WHERE project = @project AND name = @model", new { project, model }, tx) == 0)
            return ApiException.NotFound($"project '{project}' has no model '{model}'");
        return ApiException.NotFound($"model '{model}' has no recipe; set one with PUT {Protocol.ApiRoutes.Project(project)}/models/{model}/recipe (tinyops model recipe set {model} FILE)");
    }
}
