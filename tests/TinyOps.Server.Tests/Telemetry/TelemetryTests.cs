using System.Net;
using System.Text.Json;
using Dapper;
using TinyOps.Protocol;
using TinyOps.Protocol.Management;
using TinyOps.Protocol.Telemetry;
using TinyOps.Server.Telemetry;
using TinyOps.Server.Tests.Deployments;
using Xunit;
using static TinyOps.Server.Tests.Deployments.Seed;

namespace TinyOps.Server.Tests.Telemetry;

public sealed class TelemetryTests
{
    private const string P = "default";
    private static readonly string Summary = ApiRoutes.Project(P) + "/telemetry/summary";

    private static byte[] Body(TelemetryBatch batch) => JsonSerializer.SerializeToUtf8Bytes(batch, ProtocolJson.Default.TelemetryBatch);

    private static Task<HttpResponseMessage> UploadAsync(TestServer s, Device device, TelemetryBatch batch) =>
        s.Client(null).SendAsync(Seed.Signed(device, HttpMethod.Post, ApiRoutes.Telemetry, Body(batch)));

    private static InferenceRecord Record(string variant, double latency, double deviceLatency, string outcome = "ok") => new()
    {
        At = DateTimeOffset.UtcNow, ModelName = "kws", Version = "1", VariantId = variant,
        LatencyUs = latency, DeviceLatencyUs = deviceLatency, Outcome = outcome, PredictedClass = 3,
    };

    [Theory]
    [MemberData(nameof(TestServer.Backends), MemberType = typeof(TestServer))]
    public async Task ARetriedBatchCountsOnce(string backend)
    {
        await using var s = await TestServer.StartAsync(backend);
        var device = await DeviceAsync(s.Server.Database, P, "m4-00", Class("cortex-m4", 512 * KiB, MiB));
        var batch = new TelemetryBatch { BatchId = "b-0001", Records = [Record("var_int8", 100, 1000), Record("var_int8", 200, 2000), Record("var_int8", 300, 3000, "error")], Dropped = 4 };

        var ack = await (await UploadAsync(s, device, batch)).ReadAsync<TelemetryAck>();
        Assert.Equal(("b-0001", 3, false), (ack.BatchId, ack.Accepted, ack.Duplicate));
        // The retry is a new request (new nonce and signature) carrying the same batch id.
        var retry = await (await UploadAsync(s, device, batch)).ReadAsync<TelemetryAck>();
        Assert.Equal(("b-0001", 0, true), (retry.BatchId, retry.Accepted, retry.Duplicate));

        var summary = await (await s.Admin.GetAsync(Summary)).ReadAsync<TelemetrySummaryDto>();
        Assert.Equal((3L, 1L, 4L), (summary.Inferences, summary.Batches, summary.DroppedRecords));
        var row = Assert.Single(summary.ByClass);
        Assert.Equal(("cortex-m4", "kws", "var_int8", 3L, 1L), (row.DeviceClass, row.Model, row.VariantId, row.Inferences, row.Errors));
        await using (var c = await s.Server.Database.OpenAsync())
            Assert.Equal(3, await c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM inferences WHERE device_id = @id", new { id = device.Id }));

        // Another device may use the same batch id: ids are per device.
        var other = await DeviceAsync(s.Server.Database, P, "m4-01", Class("cortex-m4", 512 * KiB, MiB));
        Assert.False((await (await UploadAsync(s, other, batch)).ReadAsync<TelemetryAck>()).Duplicate);
    }

    [Theory]
    [MemberData(nameof(TestServer.Backends), MemberType = typeof(TestServer))]
    public async Task BadBatchesAndUnsignedRequestsAreRefused(string backend)
    {
        await using var s = await TestServer.StartAsync(backend);
        var device = await DeviceAsync(s.Server.Database, P, "gw-00", Class("gateway", 64 * MiB, 512 * MiB));

        Assert.Equal(HttpStatusCode.BadRequest, (await UploadAsync(s, device, new TelemetryBatch { BatchId = "" })).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await UploadAsync(s, device, new TelemetryBatch { BatchId = new string('x', 101) })).StatusCode);
        var tooMany = new TelemetryBatch { BatchId = "big", Records = Enumerable.Range(0, TelemetryStore.MaxRecordsPerBatch + 1).Select(_ => Record("v", 1, 1)).ToList() };
        var r = await UploadAsync(s, device, tooMany);
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        Assert.Contains("10001 records", await r.Content.ReadAsStringAsync());

        // Exactly the limit is fine, and stored in one go.
        var full = tooMany with { BatchId = "full", Records = tooMany.Records.Take(TelemetryStore.MaxRecordsPerBatch).ToList() };
        Assert.Equal(TelemetryStore.MaxRecordsPerBatch, (await (await UploadAsync(s, device, full)).ReadAsync<TelemetryAck>()).Accepted);

        var unsigned = await s.Client(null).PostAsync(ApiRoutes.Telemetry, new ByteArrayContent(Body(new TelemetryBatch { BatchId = "x" })));
        Assert.Equal(HttpStatusCode.Unauthorized, unsigned.StatusCode);
        // A body changed after signing does not verify.
        var req = Seed.Signed(device, HttpMethod.Post, ApiRoutes.Telemetry, Body(new TelemetryBatch { BatchId = "y" }));
        req.Content = new ByteArrayContent(Body(new TelemetryBatch { BatchId = "z", Records = [Record("v", 1, 1)] }));
        Assert.Equal(HttpStatusCode.Unauthorized, (await s.Client(null).SendAsync(req)).StatusCode);

        await using var c = await s.Server.Database.OpenAsync();
        Assert.Equal(1, await c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM telemetry_batches"));
        Assert.Equal(TelemetryStore.MaxRecordsPerBatch, await c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM inferences"));
    }

    [Theory]
    [MemberData(nameof(TestServer.Backends), MemberType = typeof(TestServer))]
    public async Task SummaryGivesPercentilesPerClassAndVariant(string backend)
    {
        await using var s = await TestServer.StartAsync(backend);
        var m4 = await DeviceAsync(s.Server.Database, P, "m4-00", Class("cortex-m4", 512 * KiB, MiB));
        var gw = await DeviceAsync(s.Server.Database, P, "gw-00", Class("gateway", 64 * MiB, 512 * MiB));

        // cortex-m4: latencies 1..100 us in shuffled order over two batches, device latency 10x, every 20th an error.
        var values = Enumerable.Range(1, 100).OrderBy(i => (i * 37) % 101).ToList();
        var records = values.Select(i => Record("var_int8", i, 10.0 * i, i % 20 == 0 ? "error" : "ok")).ToList();
        await (await UploadAsync(s, m4, new TelemetryBatch { BatchId = "a", Records = records[..60] })).ReadAsync<TelemetryAck>();
        await (await UploadAsync(s, m4, new TelemetryBatch { BatchId = "b", Records = records[60..], Dropped = 2 })).ReadAsync<TelemetryAck>();
        // gateway: ten of 5.5 us.
        await (await UploadAsync(s, gw, new TelemetryBatch { BatchId = "a", Records = Enumerable.Repeat(Record("var_base", 5.5, 5.5), 10).ToList() })).ReadAsync<TelemetryAck>();

        var summary = await (await s.Admin.GetAsync(Summary)).ReadAsync<TelemetrySummaryDto>();
        Assert.Equal((110L, 3L, 2L), (summary.Inferences, summary.Batches, summary.DroppedRecords));
        Assert.Equal(2, summary.ByClass.Count);
        var m = summary.ByClass.Single(x => x.DeviceClass == "cortex-m4");
        Assert.Equal(("var_int8", 100L, 5L), (m.VariantId, m.Inferences, m.Errors));
        Assert.Equal((50.0, 90.0, 99.0, 500.0), (m.P50Us, m.P90Us, m.P99Us, m.DeviceP50Us));
        var g = summary.ByClass.Single(x => x.DeviceClass == "gateway");
        Assert.Equal(("var_base", 10L, 0L, 5.5, 5.5, 5.5, 5.5), (g.VariantId, g.Inferences, g.Errors, g.P50Us, g.P90Us, g.P99Us, g.DeviceP50Us));

        // Filtered by model; other projects see nothing of it.
        var none = await (await s.Admin.GetAsync(Summary + "?model=other")).ReadAsync<TelemetrySummaryDto>();
        Assert.Equal((0L, 0), (none.Inferences, none.ByClass.Count));
        Assert.Equal(HttpStatusCode.NotFound, (await s.Admin.GetAsync(ApiRoutes.Project("ghost") + "/telemetry/summary")).StatusCode);
    }

    [Fact]
    public void NearestRankPercentiles()
    {
        double[] v = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
        Assert.Equal(5, Percentiles.NearestRank(v, 50));
        Assert.Equal(9, Percentiles.NearestRank(v, 90));
        Assert.Equal(10, Percentiles.NearestRank(v, 99));
        Assert.Equal(1, Percentiles.NearestRank(v, 0));
        Assert.Equal(0, Percentiles.NearestRank([], 50));
        Assert.Equal(7, Percentiles.NearestRank([7], 99));
    }
}
