using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json;
using Dapper;
using TinyOps.Protocol;
using TinyOps.Protocol.Devices;
using TinyOps.Protocol.Management;
using TinyOps.Server.Storage;

namespace TinyOps.Server.Tests.Deployments;

/// <summary>
/// Seeds registry and fleet rows straight into the store (those features are built separately), and signs device
/// requests the way an agent does.
/// </summary>
public static class Seed
{
    public sealed record Variant(string Id, string Name, long PeakBytes, long ArtifactBytes, double? Accuracy = null, double? LatencyUs = null,
        string Status = "accepted", string[]? Operators = null);

    public sealed record Device(string Id, string Name, ECDsa Key);

    public const long KiB = 1024, MiB = 1024 * 1024;

    public static async Task ModelAsync(Database db, string project, string model, string version, params Variant[] variants)
    {
        await using var c = await db.OpenAsync();
        long now = Database.Now();
        await c.ExecuteAsync("INSERT INTO models (project, name, description, created_at) VALUES (@project, @model, '', @now) ON CONFLICT DO NOTHING", new { project, model, now });
        await c.ExecuteAsync("INSERT INTO model_versions (project, model, version, created_at, created_by, notes) VALUES (@project, @model, @version, @now, 'test', '')",
            new { project, model, version, now });
        int i = 0;
        foreach (var v in variants)
        {
            var metrics = new Dictionary<string, double>();
            if (v.Accuracy is { } a) metrics["accuracy"] = a;
            if (v.LatencyUs is { } l) metrics["latency_us"] = l;
            var meta = new ModelMetadataDto { Operators = v.Operators ?? ["Conv", "Relu", "Gemm"], PlannedPeakBytes = v.PeakBytes, Opset = 13 };
            await c.ExecuteAsync("""
                INSERT INTO variants (id, project, model, version, name, parent_id, recipe, parameters_json, artifact_sha256, artifact_size, metadata_json,
                    status, status_reason, metrics_json, artifact_signature, signing_key_id, created_at)
                VALUES (@id, @project, @model, @version, @name, NULL, @name, '{}', @sha, @size, @meta, @status, @statusReason, @metrics, 'sig', 'key', @at)
                """,
                new
                {
                    id = v.Id, project, model, version, name = v.Name,
                    sha = Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(v.Id))),
                    size = v.ArtifactBytes,
                    meta = JsonSerializer.Serialize(meta, ProtocolJson.Default.ModelMetadataDto),
                    status = v.Status,
                    statusReason = v.Status == "accepted" ? null : "accuracy dropped too far",
                    metrics = JsonSerializer.Serialize(metrics, ProtocolJson.Default.DictionaryStringDouble),
                    at = now + i++,
                });
        }
    }

    public static async Task AliasAsync(Database db, string project, string model, string alias, string version)
    {
        await using var c = await db.OpenAsync();
        await c.ExecuteAsync("INSERT INTO aliases (project, model, alias, version) VALUES (@project, @model, @alias, @version)", new { project, model, alias, version });
    }

    public static DeviceCapabilities Class(string deviceClass, long ram, long flash, params string[] operators) =>
        new() { DeviceClass = deviceClass, Architecture = "test", RamBytes = ram, FlashBytes = flash, RuntimeVersion = "1.0", Operators = operators };

    public static async Task<Device> DeviceAsync(Database db, string project, string name, DeviceCapabilities caps, params string[] tags)
    {
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        string id = "dev_" + name;
        await using var c = await db.OpenAsync();
        await c.ExecuteAsync("""
            INSERT INTO devices (id, project, name, public_key, tags_json, capabilities_json, reported_json, enrolled_at, last_seen_at, revoked)
            VALUES (@id, @project, @name, @pk, @tags, @caps, NULL, @now, NULL, 0)
            """,
            new
            {
                id, project, name,
                pk = Convert.ToBase64String(key.ExportSubjectPublicKeyInfo()),
                tags = JsonSerializer.Serialize(tags.ToList(), ProtocolJson.Default.ListString),
                caps = JsonSerializer.Serialize(caps, ProtocolJson.Default.DeviceCapabilities),
                now = Database.Now(),
            });
        return new Device(id, name, key);
    }

    /// <summary>What the fleet feature would store when the device syncs.</summary>
    public static async Task ReportAsync(Database db, string deviceId, ReportedState reported)
    {
        await using var c = await db.OpenAsync();
        await c.ExecuteAsync("UPDATE devices SET reported_json = @r WHERE id = @id", new { id = deviceId, r = JsonSerializer.Serialize(reported, ProtocolJson.Default.ReportedState) });
    }

    public static Task InstalledAsync(Database db, string deviceId, string deploymentId, string variantId) =>
        ReportAsync(db, deviceId, new ReportedState
        {
            ActiveSlot = "A",
            Active = new InstalledModel { ModelName = "m", Version = "1", VariantId = variantId },
            DeploymentId = deploymentId,
            Phase = InstallPhase.Installed,
        });

    public static Task FailedAsync(Database db, string deviceId, string deploymentId, string error) =>
        ReportAsync(db, deviceId, new ReportedState { DeploymentId = deploymentId, Phase = InstallPhase.Failed, LastError = error });

    public static async Task<(string? DeploymentId, string? VariantId)> DesiredAsync(Database db, string deviceId)
    {
        await using var c = await db.OpenAsync();
        return await c.QuerySingleAsync<(string?, string?)>("SELECT desired_deployment_id, desired_variant_id FROM devices WHERE id = @id", new { id = deviceId });
    }

    /// <summary>A device-API request signed with the device's key (fresh timestamp and nonce).</summary>
    public static HttpRequestMessage Signed(Device device, HttpMethod method, string pathAndQuery, byte[] body) =>
        Fleet.TestDevice.SignedRequest(device.Key, device.Id, method, pathAndQuery, body);
}
