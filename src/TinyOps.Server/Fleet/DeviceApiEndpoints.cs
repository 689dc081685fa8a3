using System.Text.Json;
using Dapper;
using Microsoft.Net.Http.Headers;
using TinyOps.Protocol;
using TinyOps.Protocol.Devices;
using TinyOps.Protocol.Manifests;
using TinyOps.Server.Hosting;
using TinyOps.Server.Registry;
using TinyOps.Server.Storage;

namespace TinyOps.Server.Fleet;

/// <summary>The signed device API: sync (report state, receive the desired assignment) and artifact download.</summary>
public static class DeviceApiEndpoints
{
    public static void Map(WebApplication app)
    {
        app.MapPost(ApiRoutes.Sync, SyncAsync).RequireDevice().WithTags("fleet")
            .WithSummary("Device sync: stores the reported state, returns the signed assignment and the signing keys");
        app.MapGet(ApiRoutes.Artifact + "/{sha256}", ArtifactAsync).RequireDevice().WithTags("fleet")
            .WithSummary("Artifact bytes for a device of the artifact's project (HTTP Range supported)");
    }

    private static async Task<SyncResponse> SyncAsync(HttpContext http, SyncRequest req, Database db, VariantQueries variants, SigningKeyRing ring, ServerOptions options)
    {
        var device = DeviceContext.From(http);
        var reported = req.Reported ?? new ReportedState();
        string reportedJson = JsonSerializer.Serialize(reported, ProtocolJson.Default.ReportedState);
        string? capabilitiesJson = reported.Capabilities is { } caps ? JsonSerializer.Serialize(caps, ProtocolJson.Default.DeviceCapabilities) : null;

        await using var c = await db.OpenAsync(http.RequestAborted);
        await c.ExecuteAsync(capabilitiesJson is null
                ? "UPDATE devices SET reported_json = @rep, last_seen_at = @now WHERE id = @id"
                : "UPDATE devices SET reported_json = @rep, capabilities_json = @caps, last_seen_at = @now WHERE id = @id",
            new { rep = reportedJson, caps = capabilitiesJson, now = Database.Now(), id = device.DeviceId });

        var desired = await c.QuerySingleAsync<(string? DeploymentId, string? VariantId)>(
            "SELECT desired_deployment_id, desired_variant_id FROM devices WHERE id = @id", new { id = device.DeviceId });
        Assignment? assignment = null;
        if (desired.VariantId is { Length: > 0 } variantId
            && await variants.GetVariantAsync(device.Project, variantId, c, http.RequestAborted) is { } v)
        {
            var manifest = new Manifest
            {
                Project = device.Project,
                ModelName = v.Model,
                Version = v.Version,
                VariantId = v.Id,
                ArtifactSha256 = v.ArtifactSha256,
                ArtifactSize = v.ArtifactSize,
                Format = "onnx",
                PlannedPeakBytes = v.Metadata.PlannedPeakBytes,
                Operators = v.Metadata.Operators,
                IssuedAt = DateTimeOffset.UtcNow,
            };
            byte[] payload = JsonSerializer.SerializeToUtf8Bytes(manifest, ProtocolJson.Default.Manifest);
            var key = await ring.CurrentAsync(http.RequestAborted);
            assignment = new Assignment { DeploymentId = desired.DeploymentId ?? "", Manifest = key.SignManifest(payload) };
        }
        return new SyncResponse
        {
            Assignment = assignment,
            PollSeconds = options.DevicePollSeconds,
            SigningKeys = await ring.PublishedAsync(http.RequestAborted),
        };
    }

    private static async Task<IResult> ArtifactAsync(HttpContext http, string sha256, Database db, BlobStore blobs)
    {
        var device = DeviceContext.From(http);
        sha256 = sha256.ToLowerInvariant();
        if (!BlobStore.IsDigest(sha256)) throw ApiException.BadRequest($"'{sha256}' is not a SHA-256 digest (64 hex digits)");
        await using (var c = await db.OpenAsync(http.RequestAborted))
        {
            long owned = await c.ExecuteScalarAsync<long>("""
                SELECT (SELECT COUNT(*) FROM artifacts WHERE sha256 = @sha AND project = @project)
                     + (SELECT COUNT(*) FROM variants WHERE artifact_sha256 = @sha AND project = @project)
                """, new { sha = sha256, project = device.Project });
            if (owned == 0 || !blobs.Exists(sha256))
                throw ApiException.NotFound($"project '{device.Project}' has no artifact {sha256}");
        }
        return Results.File(blobs.OpenRead(sha256), "application/octet-stream", fileDownloadName: null,
            entityTag: new EntityTagHeaderValue($"\"{sha256}\""), enableRangeProcessing: true);
    }
}
