using System.Data.Common;
using System.Text;
using Dapper;
using TinyOps.Protocol.Management;
using TinyOps.Protocol.Telemetry;
using TinyOps.Server.Fleet;
using TinyOps.Server.Hosting;
using TinyOps.Server.Storage;

namespace TinyOps.Server.Telemetry;

/// <summary>Stores uploaded inference records once per (device, batch id) and summarizes them per device class.</summary>
public sealed class TelemetryStore(Database db)
{
    public const int MaxRecordsPerBatch = 10_000;
    public const int MaxBatchIdLength = 100;
    /// <summary>Percentiles are computed over at most this many of the latest rows.</summary>
    public const int PercentileWindow = 100_000;
    private const int RowsPerInsert = 200;

    public static void Validate(TelemetryBatch batch)
    {
        if (string.IsNullOrWhiteSpace(batch.BatchId)) throw ApiException.BadRequest("batchId is required (a unique id per upload, reused when the upload is retried)");
        if (batch.BatchId.Length > MaxBatchIdLength) throw ApiException.BadRequest($"batchId is {batch.BatchId.Length} characters; at most {MaxBatchIdLength} are allowed");
        var records = batch.Records ?? [];
        if (records.Count > MaxRecordsPerBatch) throw ApiException.BadRequest($"the batch has {records.Count} records; at most {MaxRecordsPerBatch} per batch are allowed, split it");
        if (batch.Dropped < 0) throw ApiException.BadRequest($"dropped is {batch.Dropped}; it must be 0 or more");
        for (int i = 0; i < records.Count; i++)
        {
            var r = records[i] ?? throw ApiException.BadRequest($"records[{i}] is null");
            if (!double.IsFinite(r.LatencyUs) || r.LatencyUs < 0) throw ApiException.BadRequest($"records[{i}].latencyUs is {r.LatencyUs}; it must be a finite number >= 0");
            if (!double.IsFinite(r.DeviceLatencyUs) || r.DeviceLatencyUs < 0) throw ApiException.BadRequest($"records[{i}].deviceLatencyUs is {r.DeviceLatencyUs}; it must be a finite number >= 0");
            if ((r.ModelName?.Length ?? 0) > 200 || (r.Version?.Length ?? 0) > 200 || (r.VariantId?.Length ?? 0) > 200 || (r.Outcome?.Length ?? 0) > 100)
                throw ApiException.BadRequest($"records[{i}] has a name longer than 200 characters");
        }
    }

    /// <summary>Stores the batch and its records in one transaction; a batch id already stored for the device adds nothing.</summary>
    public async Task<TelemetryAck> IngestAsync(DeviceContext device, TelemetryBatch batch, CancellationToken ct = default)
    {
        Validate(batch);
        var records = batch.Records ?? [];
        await using var c = await db.OpenAsync(ct);
        await using var tx = await db.BeginWriteAsync(c, ct);
        int inserted = await c.ExecuteAsync(
            "INSERT INTO telemetry_batches (device_id, batch_id, received_at, records, dropped) VALUES (@d, @b, @now, @n, @dropped) ON CONFLICT DO NOTHING",
            new { d = device.DeviceId, b = batch.BatchId, now = Database.Now(), n = records.Count, dropped = batch.Dropped }, tx);
        if (inserted == 0)
        {
            await tx.RollbackAsync(ct);
            return new TelemetryAck { BatchId = batch.BatchId, Accepted = 0, Duplicate = true };
        }
        for (int start = 0; start < records.Count; start += RowsPerInsert)
            await InsertChunkAsync(c, tx, device, records, start, Math.Min(RowsPerInsert, records.Count - start));
        await tx.CommitAsync(ct);
        return new TelemetryAck { BatchId = batch.BatchId, Accepted = records.Count, Duplicate = false };
    }

    private static async Task InsertChunkAsync(DbConnection c, DbTransaction tx, DeviceContext device, IReadOnlyList<InferenceRecord> records, int start, int count)
    {
        var sql = new StringBuilder("INSERT INTO inferences (project, device_id, device_class, model, version, variant_id, at, latency_us, device_latency_us, outcome, predicted_class) VALUES ");
        var p = new DynamicParameters();
        p.Add("project", device.Project);
        p.Add("device", device.DeviceId);
        p.Add("cls", device.DeviceClass);
        for (int i = 0; i < count; i++)
        {
            var r = records[start + i];
            if (i > 0) sql.Append(", ");
            sql.Append($"(@project, @device, @cls, @m{i}, @v{i}, @x{i}, @a{i}, @l{i}, @dl{i}, @o{i}, @pc{i})");
            p.Add($"m{i}", r.ModelName ?? "");
            p.Add($"v{i}", r.Version ?? "");
            p.Add($"x{i}", r.VariantId ?? "");
            p.Add($"a{i}", r.At.ToUnixTimeMilliseconds());
            p.Add($"l{i}", r.LatencyUs);
            p.Add($"dl{i}", r.DeviceLatencyUs);
            p.Add($"o{i}", string.IsNullOrEmpty(r.Outcome) ? "ok" : r.Outcome);
            p.Add($"pc{i}", r.PredictedClass);
        }
        await c.ExecuteAsync(sql.ToString(), p, tx);
    }

    private sealed class GroupRow
    {
        public string DeviceClass { get; set; } = "";
        public string Model { get; set; } = "";
        public string VariantId { get; set; } = "";
        public long Inferences { get; set; }
        public long Errors { get; set; }
    }

    private sealed class LatencyRow
    {
        public string DeviceClass { get; set; } = "";
        public string Model { get; set; } = "";
        public string VariantId { get; set; } = "";
        public double LatencyUs { get; set; }
        public double DeviceLatencyUs { get; set; }
    }

    /// <summary>
    /// Counts over all stored rows of the project; latency percentiles (nearest rank) over its latest
    /// <see cref="PercentileWindow"/> rows.
    /// </summary>
    public async Task<TelemetrySummaryDto> SummaryAsync(string project, string? model, CancellationToken ct = default)
    {
        await using var c = await db.OpenAsync(ct);
        if (await c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM projects WHERE name = @project", new { project }) == 0)
            throw ApiException.NotFound($"project '{project}' does not exist");
        string modelFilter = model is null ? "" : " AND model = @model";
        var args = new { project, model, window = PercentileWindow };
        var groups = (await c.QueryAsync<GroupRow>(
            "SELECT device_class AS DeviceClass, model AS Model, variant_id AS VariantId, COUNT(*) AS Inferences, " +
            "SUM(CASE WHEN outcome = 'ok' THEN 0 ELSE 1 END) AS Errors " +
            $"FROM inferences WHERE project = @project{modelFilter} GROUP BY device_class, model, variant_id", args)).ToList();
        var (batches, dropped) = await c.QuerySingleAsync<(long, long)>(
            "SELECT COUNT(*), COALESCE(SUM(b.dropped), 0) FROM telemetry_batches b JOIN devices d ON d.id = b.device_id WHERE d.project = @project", args);
        var latest = await c.QueryAsync<LatencyRow>(
            "SELECT device_class AS DeviceClass, model AS Model, variant_id AS VariantId, latency_us AS LatencyUs, device_latency_us AS DeviceLatencyUs " +
            $"FROM inferences WHERE project = @project{modelFilter} ORDER BY id DESC LIMIT @window", args);
        var byKey = latest.GroupBy(r => (r.DeviceClass, r.Model, r.VariantId)).ToDictionary(g => g.Key, g => g.ToList());

        var result = new List<ClassLatencyDto>();
        foreach (var g in groups.OrderBy(g => g.DeviceClass, StringComparer.Ordinal).ThenBy(g => g.Model, StringComparer.Ordinal).ThenBy(g => g.VariantId, StringComparer.Ordinal))
        {
            var rows = byKey.GetValueOrDefault((g.DeviceClass, g.Model, g.VariantId)) ?? [];
            var lat = rows.Select(r => r.LatencyUs).Order().ToList();
            var dev = rows.Select(r => r.DeviceLatencyUs).Order().ToList();
            result.Add(new ClassLatencyDto(g.DeviceClass, g.Model, g.VariantId, g.Inferences, g.Errors,
                Percentiles.NearestRank(lat, 50), Percentiles.NearestRank(lat, 90), Percentiles.NearestRank(lat, 99), Percentiles.NearestRank(dev, 50)));
        }
        return new TelemetrySummaryDto(project, groups.Sum(g => g.Inferences), batches, dropped, result);
    }
}
