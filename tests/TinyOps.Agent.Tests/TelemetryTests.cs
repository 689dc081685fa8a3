using TinyOps.Agent.Telemetry;
using TinyOps.Protocol.Telemetry;

namespace TinyOps.Agent.Tests;

public sealed class TelemetryTests
{
    private static InferenceRecord Rec(int i) => new() { At = DateTimeOffset.UnixEpoch.AddSeconds(i), ModelName = "m", Version = "1", VariantId = "v", LatencyUs = i, DeviceLatencyUs = i * 10, PredictedClass = i % 10 };

    private static string TempDir() => Path.Combine(Path.GetTempPath(), "tinyops-telemetry-" + Guid.NewGuid().ToString("N")[..12]);

    [Fact]
    public async Task A_retried_upload_reuses_the_batch_id_and_is_counted_once()
    {
        await using var h = await AgentHarness.StartAsync();
        var agent = h.Agent(h.NewStateDir(), configure: o => o with { LatencyScale = 40 });
        h.Server.Assign("d-1", h.Server.Publish(TestModels.Mlp, "fmnist", "1", "mlp"));
        await agent.SyncOnceAsync();
        var (image, shape) = TestModels.FirstImage("fmnist_mlp");
        for (int i = 0; i < 10; i++) agent.Infer(image, shape);
        Assert.Equal(10, agent.Telemetry.PendingRecords);

        h.Server.LoseNextTelemetryResponse();
        await Assert.ThrowsAnyAsync<Exception>(() => agent.UploadTelemetryAsync());
        Assert.Equal(1, agent.Telemetry.PendingBatches);
        Assert.Equal(10, h.Server.TelemetryRecords);

        // More inferences meanwhile go into a later batch; the retried one keeps its id.
        agent.Infer(image, shape);
        Assert.Equal(11, await agent.UploadTelemetryAsync());
        var attempts = h.Server.BatchAttempts.ToArray();
        Assert.Equal(3, attempts.Length);
        Assert.Equal(attempts[0], attempts[1]);
        Assert.NotEqual(attempts[1], attempts[2]);
        Assert.Equal(1, h.Server.DuplicateBatches);
        Assert.Equal(11, h.Server.TelemetryRecords);
        Assert.Equal(0, agent.Telemetry.PendingRecords);
        Assert.Equal(0, agent.Telemetry.PendingBatches);

        var records = h.Server.Records.ToArray();
        Assert.All(records, r =>
        {
            Assert.Equal("ok", r.Outcome);
            Assert.Equal("fmnist", r.ModelName);
            Assert.Equal("mlp", r.VariantId);
            Assert.Equal(TestModels.ExpectedClass("fmnist_mlp"), r.PredictedClass);
            Assert.True(r.LatencyUs > 0);
            Assert.Equal(r.LatencyUs * 40, r.DeviceLatencyUs, 6);
        });
    }

    [Fact]
    public async Task A_cut_batch_survives_a_restart_with_its_id()
    {
        await using var h = await AgentHarness.StartAsync();
        string dir = h.NewStateDir();
        var agent = h.Agent(dir);
        h.Server.Assign("d-1", h.Server.Publish(TestModels.Mlp, "fmnist", "1"));
        await agent.SyncOnceAsync();
        var (image, shape) = TestModels.FirstImage("fmnist_mlp");
        for (int i = 0; i < 3; i++) agent.Infer(image, shape);
        h.Server.LoseNextTelemetryResponse();
        await Assert.ThrowsAnyAsync<Exception>(() => agent.UploadTelemetryAsync());
        await agent.DisposeAsync();

        var again = h.Agent(dir);
        await again.StartAsync();
        Assert.Equal(1, again.Telemetry.PendingBatches);
        Assert.Equal(3, await again.UploadTelemetryAsync());
        var attempts = h.Server.BatchAttempts.ToArray();
        Assert.Equal(2, attempts.Length);
        Assert.Equal(attempts[0], attempts[1]);
        Assert.Equal(3, h.Server.TelemetryRecords);
    }

    [Fact]
    public void A_full_buffer_drops_the_oldest_and_counts_them()
    {
        string dir = TempDir();
        try
        {
            var options = new TelemetryBufferOptions { MaxRecords = 100, SegmentRecords = 10, BatchRecords = 1000 };
            using (var buffer = new TelemetryBuffer(dir, options))
            {
                for (int i = 0; i < 255; i++) buffer.Add(Rec(i));
                Assert.InRange(buffer.PendingRecords, 91, 100);
                Assert.Equal(255 - buffer.PendingRecords, buffer.Dropped);
                Assert.Equal(buffer.Dropped, buffer.DroppedTotal);
            }
            // The count and the records survive a restart.
            using (var buffer = new TelemetryBuffer(dir, options))
            {
                int pending = buffer.PendingRecords;
                long dropped = buffer.Dropped;
                Assert.Equal(255, pending + dropped);
                var batch = buffer.NextBatch()!;
                Assert.Equal(pending, batch.Records.Count);
                Assert.Equal(dropped, batch.Dropped);
                // The oldest were dropped: the newest record is kept, the first is gone.
                Assert.Equal(254, batch.Records[^1].LatencyUs);
                Assert.Equal(255 - pending, batch.Records[0].LatencyUs);
                Assert.Equal(0, buffer.Dropped);
                buffer.Acknowledge(batch.BatchId);
                Assert.Equal(0, buffer.PendingRecords);
                Assert.Null(buffer.NextBatch());
            }
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void The_byte_bound_drops_too_and_an_unacknowledged_batch_is_counted_when_dropped()
    {
        string dir = TempDir();
        try
        {
            using var buffer = new TelemetryBuffer(dir, new TelemetryBufferOptions { MaxBytes = 8_000, MaxRecords = 1_000_000, SegmentRecords = 5, BatchRecords = 20 });
            for (int i = 0; i < 20; i++) buffer.Add(Rec(i));
            var first = buffer.NextBatch()!;
            buffer.Release(first.BatchId);
            Assert.Equal(20, first.Records.Count);
            for (int i = 20; i < 400; i++) buffer.Add(Rec(i));
            Assert.True(buffer.PendingBytes <= 8_000);
            Assert.Equal(0, buffer.PendingBatches);
            Assert.Equal(400, buffer.PendingRecords + buffer.Dropped);
            var next = buffer.NextBatch()!;
            Assert.NotEqual(first.BatchId, next.BatchId);
            Assert.Equal(buffer.DroppedTotal, next.Dropped);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void A_torn_last_line_is_skipped_and_a_restart_never_appends_to_it()
    {
        string dir = TempDir();
        try
        {
            using (var buffer = new TelemetryBuffer(dir)) for (int i = 0; i < 3; i++) buffer.Add(Rec(i));
            string seg = Directory.GetFiles(dir, "seg-*.jsonl").Single();
            File.AppendAllText(seg, "{\"at\":\"2020-");
            using (var buffer = new TelemetryBuffer(dir))
            {
                buffer.Add(Rec(3));
                Assert.Equal(2, Directory.GetFiles(dir, "seg-*.jsonl").Length);
                var batch = buffer.NextBatch()!;
                Assert.Equal([0.0, 1, 2, 3], batch.Records.Select(r => r.LatencyUs));
            }
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public async Task Dropped_records_reach_the_server_with_the_next_batch()
    {
        await using var h = await AgentHarness.StartAsync();
        var agent = h.Agent(h.NewStateDir(), configure: o => o with { Telemetry = new TelemetryBufferOptions { MaxRecords = 20, SegmentRecords = 5 } });
        h.Server.Assign("d-1", h.Server.Publish(TestModels.Mlp, "fmnist", "1"));
        await agent.SyncOnceAsync();
        var (image, shape) = TestModels.FirstImage("fmnist_mlp");
        for (int i = 0; i < 50; i++) agent.Infer(image, shape);
        await agent.UploadTelemetryAsync();
        Assert.Equal(50, h.Server.TelemetryRecords + h.Server.TelemetryDropped);
        Assert.True(h.Server.TelemetryDropped >= 30);
    }
}
