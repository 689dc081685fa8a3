using System.Data.Common;
using System.Text.Json;
using Dapper;
using Microsoft.Data.Sqlite;
using Npgsql;
using TinyOps.Protocol;
using TinyOps.Protocol.Devices;
using TinyOps.Protocol.Management;
using TinyOps.Server.Hosting;
using TinyOps.Server.Storage;

namespace TinyOps.Server.Fleet;

/// <summary>Reads and writes the devices table (shared with the deployment and dashboard features).</summary>
public sealed class DeviceStore(Database db)
{
    internal const string Columns = "id, project, name, public_key, tags_json, capabilities_json, reported_json, enrolled_at, last_seen_at, revoked, desired_deployment_id, desired_variant_id";

    /// <summary>A devices row. Properties rather than a constructor: INTEGER reads as int on PostgreSQL, long on SQLite.</summary>
    internal sealed class Row
    {
        public string id { get; set; } = "";
        public string project { get; set; } = "";
        public string name { get; set; } = "";
        public string public_key { get; set; } = "";
        public string tags_json { get; set; } = "[]";
        public string capabilities_json { get; set; } = "{}";
        public string? reported_json { get; set; }
        public long enrolled_at { get; set; }
        public long? last_seen_at { get; set; }
        public long revoked { get; set; }
        public string? desired_deployment_id { get; set; }
        public string? desired_variant_id { get; set; }
    }

    internal static DeviceDto Map(Row r) => new()
    {
        Id = r.id,
        Project = r.project,
        Name = r.name,
        Tags = ParseTags(r.tags_json),
        Capabilities = ParseCapabilities(r.capabilities_json),
        Reported = r.reported_json is { Length: > 0 } rep ? JsonSerializer.Deserialize(rep, ProtocolJson.Default.ReportedState) : null,
        EnrolledAt = Database.ToTime(r.enrolled_at),
        LastSeenAt = r.last_seen_at is long seen ? Database.ToTime(seen) : null,
        Revoked = r.revoked != 0,
        DesiredDeploymentId = r.desired_deployment_id,
        DesiredVariantId = r.desired_variant_id,
    };

    public static List<string> ParseTags(string json) => JsonSerializer.Deserialize(json, ProtocolJson.Default.ListString) ?? [];

    public static string TagsJson(IEnumerable<string> tags) => JsonSerializer.Serialize(tags.ToList(), ProtocolJson.Default.ListString);

    public static DeviceCapabilities ParseCapabilities(string json) =>
        JsonSerializer.Deserialize(json, ProtocolJson.Default.DeviceCapabilities) ?? new DeviceCapabilities();

    /// <summary>Validates tags (each a name) and removes duplicates, keeping the first order.</summary>
    public static List<string> NormalizeTags(IEnumerable<string>? tags)
    {
        var result = new List<string>();
        foreach (var t in tags ?? [])
        {
            Names.Require(t, "tag");
            if (!result.Contains(t, StringComparer.Ordinal)) result.Add(t);
        }
        if (result.Count > 64) throw ApiException.BadRequest($"a device may carry at most 64 tags ({result.Count} given)");
        return result;
    }

    public async Task<DeviceDto?> GetAsync(string project, string id, DbConnection? connection = null, CancellationToken ct = default)
    {
        await using var owned = connection is null ? await db.OpenAsync(ct) : null;
        var c = connection ?? owned!;
        var row = await c.QuerySingleOrDefaultAsync<Row>($"SELECT {Columns} FROM devices WHERE project = @project AND id = @id", new { project, id });
        return row is null ? null : Map(row);
    }

    public async Task<DeviceDto> RequireAsync(string project, string id, DbConnection? connection = null, CancellationToken ct = default) =>
        await GetAsync(project, id, connection, ct) ?? throw ApiException.NotFound($"project '{project}' has no device '{id}'");

    /// <summary>The project's devices whose tags include every tag of <paramref name="allTags"/>, by name.</summary>
    public async Task<List<DeviceDto>> ListAsync(string project, IReadOnlyCollection<string> allTags, DbConnection? connection = null, CancellationToken ct = default)
    {
        await using var owned = connection is null ? await db.OpenAsync(ct) : null;
        var c = connection ?? owned!;
        var rows = await c.QueryAsync<Row>($"SELECT {Columns} FROM devices WHERE project = @project ORDER BY name", new { project });
        var result = new List<DeviceDto>();
        foreach (var r in rows)
        {
            var d = Map(r);
            if (allTags.All(t => d.Tags.Contains(t, StringComparer.Ordinal))) result.Add(d);
        }
        return result;
    }

    public static bool IsUniqueViolation(DbException e) =>
        e is SqliteException { SqliteErrorCode: 19 } or PostgresException { SqlState: PostgresErrorCodes.UniqueViolation };
}
