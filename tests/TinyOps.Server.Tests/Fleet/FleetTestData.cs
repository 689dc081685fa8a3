using System.Text.Json;
using Dapper;
using Microsoft.Extensions.DependencyInjection;
using TinyOps.Protocol;
using TinyOps.Protocol.Management;
using TinyOps.Server.Storage;

namespace TinyOps.Server.Tests.Fleet;

/// <summary>Writes registry rows directly (the registry endpoints are a separate feature).</summary>
public static class FleetTestData
{
    public sealed record InsertedVariant(string Id, string Sha256, byte[] Bytes);

    public static async Task<InsertedVariant> InsertVariantAsync(TestServer s, string project, byte[] bytes, IReadOnlyList<string> operators, long plannedPeakBytes,
        string model = "kws", string version = "1")
    {
        var blobs = s.Server.App.Services.GetRequiredService<BlobStore>();
        string sha = await blobs.PutAsync(bytes);
        string id = "var_" + Guid.NewGuid().ToString("N")[..16];
        var metadata = new ModelMetadataDto { Operators = operators, PlannedPeakBytes = plannedPeakBytes, Inputs = ["input"], Outputs = ["output"], Opset = 17 };
        long now = Database.Now();
        await using var c = await s.Server.Database.OpenAsync();
        await c.ExecuteAsync("INSERT INTO artifacts (sha256, size, project, created_at) VALUES (@sha, @size, @project, @now) ON CONFLICT DO NOTHING",
            new { sha, size = (long)bytes.Length, project, now });
        await c.ExecuteAsync("""
            INSERT INTO variants (id, project, model, version, name, parent_id, recipe, parameters_json, artifact_sha256, artifact_size,
                metadata_json, status, status_reason, metrics_json, artifact_signature, signing_key_id, created_at)
            VALUES (@id, @project, @model, @version, 'base', NULL, 'upload', '{}', @sha, @size, @meta, 'accepted', NULL, '{}', '', '', @now)
            """, new { id, project, model, version, sha, size = (long)bytes.Length, meta = JsonSerializer.Serialize(metadata, ProtocolJson.Default.ModelMetadataDto), now });
        return new InsertedVariant(id, sha, bytes);
    }

    public static async Task SetDesiredAsync(TestServer s, string deviceId, string deploymentId, string variantId)
    {
        await using var c = await s.Server.Database.OpenAsync();
        await c.ExecuteAsync("UPDATE devices SET desired_deployment_id = @d, desired_variant_id = @v WHERE id = @id", new { d = deploymentId, v = variantId, id = deviceId });
    }

    public static async Task CreateProjectAsync(TestServer s, string name)
    {
        (await s.Admin.PostAsync(TinyOps.Protocol.ApiRoutes.Projects,
            System.Net.Http.Json.JsonContent.Create(new CreateProjectRequest(name), options: ProtocolJsonOptions.Options))).EnsureSuccessStatusCode();
    }

    /// <summary>The detail of a problem response (decoded, so quotes read as quotes).</summary>
    public static async Task<string> DetailAsync(this HttpResponseMessage r) =>
        (await System.Net.Http.Json.HttpContentJsonExtensions.ReadFromJsonAsync<TinyOps.Protocol.ProblemDetailsDto>(r.Content, ProtocolJsonOptions.Options))?.Detail ?? "";

    public static async Task<HttpClient> TokenClientAsync(TestServer s, string role, string? project)
    {
        var r = await s.Admin.PostAsync(TinyOps.Protocol.ApiRoutes.Tokens,
            System.Net.Http.Json.JsonContent.Create(new CreateTokenRequest(role + "-" + Guid.NewGuid().ToString("N")[..6], role, project), options: ProtocolJsonOptions.Options));
        return s.Client((await r.ReadAsync<CreatedTokenDto>()).Secret);
    }
}
