using TinyOps.Cli.Api;
using TinyOps.Protocol.Management;
using TinyOps.Server.Tests;
using TinyOps.Protocol.Devices;
using Xunit;

namespace TinyOps.EndToEnd.Tests;

/// <summary>
/// The operational spine with the real parts: a real server (Kestrel on 127.0.0.1:0, SQLite or PostgreSQL), real
/// agents with their own keys and state directories, the real engine running the model.
/// </summary>
public sealed class FleetLoopTests
{
    [Theory]
    [MemberData(nameof(TestServer.Backends), MemberType = typeof(TestServer))]
    public async Task ModelReachesTheDevicesThatFitAndTelemetryCountsOnce(string backend)
    {
        await using var s = await TestServer.StartAsync(backend);
        using var client = new TinyOpsClient(s.BaseUrl, s.Server.AdminToken);
        var v = await client.PushVersionAsync("default", "fmnist", E2E.CnnModel, alias: "production");
        Assert.Equal("1", v.Version);

        var token = await client.CreateEnrollmentTokenAsync("default", 6, ["e2e"]);
        string states = Path.Combine(s.DataDirectory, "agents");
        var handlers = Enumerable.Range(0, 3).Select(_ => new LoseFirstTelemetryResponse()).ToArray();
        var phones = Enumerable.Range(0, 3).Select(i => E2E.Agent(s.BaseUrl, states, token.Token, DeviceProfile.Phone, $"phone-{i}", handlers[i])).ToList();
        var sensors = Enumerable.Range(0, 3).Select(i => E2E.Agent(s.BaseUrl, states, token.Token, DeviceProfile.CortexM0, $"m0-{i}")).ToList();
        var all = phones.Concat(sensors).ToList();
        try
        {
            foreach (var a in all) await a.EnrollAsync();
            var devices = await client.DevicesAsync("default", ["e2e"]);
            Assert.Equal(6, devices.Count);

            var d = await client.DeployAsync("default", new CreateDeploymentRequest { Model = "fmnist", Version = "production", Selector = ["e2e"], CanaryPercent = 33 });
            Assert.Equal(6, d.Targeted);
            Assert.Equal(3, d.Incompatible);
            var refused = Assert.Single(d.Targets.Where(t => t.State == "incompatible").Select(t => t.Reason).Distinct());
            Assert.Contains("exceeds the device's RAM", refused);
            Assert.Equal(1, d.Targets.Count(t => t.Stage == 1 && t.State != "incompatible"));

            d = await E2E.RollOutAsync(client, d.Id, all);
            Assert.Equal("completed", d.Status);
            Assert.Equal(3, d.Installed);
            Assert.Equal(0, d.Failed);

            foreach (var phone in phones)
            {
                Assert.Equal("1", phone.Status().Model?.Version);
                for (int i = 0; i < 5; i++)
                {
                    var r = phone.Infer(new float[784]);
                    Assert.InRange(r.PredictedClass, 0, 9);
                }
            }
            foreach (var sensor in sensors) Assert.Null(sensor.Status().Model);

            // The first upload of each phone reaches the server but its answer is lost; the retry reuses the batch id.
            foreach (var phone in phones) await Assert.ThrowsAsync<HttpRequestException>(() => phone.UploadTelemetryAsync());
            foreach (var phone in phones) Assert.Equal(5, await phone.UploadTelemetryAsync());
            Assert.All(handlers, h => Assert.Equal(2, h.TelemetryPosts));
            var summary = await client.TelemetrySummaryAsync("default");
            Assert.Equal(15, summary.Inferences);
            Assert.Equal(3, summary.Batches);
            var phoneRow = Assert.Single(summary.ByClass);
            Assert.Equal("phone", phoneRow.DeviceClass);
            Assert.Equal(15, phoneRow.Inferences);

            var shown = await client.DeviceAsync("default", phones[0].DeviceId!);
            Assert.Equal(v.Variants[0].Id, shown.Reported?.Active?.VariantId);
        }
        finally
        {
            foreach (var a in all) await a.DisposeAsync();
        }
    }

    [Theory]
    [MemberData(nameof(TestServer.Backends), MemberType = typeof(TestServer))]
    public async Task TamperedArtifactIsRefusedAndThePreviousModelKeepsServing(string backend)
    {
        await using var s = await TestServer.StartAsync(backend);
        using var client = new TinyOpsClient(s.BaseUrl, s.Server.AdminToken);
        await client.PushVersionAsync("default", "fmnist", E2E.CnnModel);
        var token = await client.CreateEnrollmentTokenAsync("default", 1, ["e2e"]);
        await using var phone = E2E.Agent(s.BaseUrl, Path.Combine(s.DataDirectory, "agents"), token.Token, DeviceProfile.Phone, "phone");
        await phone.EnrollAsync();
        var d1 = await client.DeployAsync("default", new CreateDeploymentRequest { Model = "fmnist", Version = "1", Selector = ["e2e"], CanaryPercent = 100 });
        Assert.Equal("completed", (await E2E.RollOutAsync(client, d1.Id, [phone])).Status);

        // Version 2's bytes are corrupted on the server's disk after it was registered and signed.
        var v2 = await client.PushVersionAsync("default", "fmnist", E2E.MlpModel);
        string blob = Path.Combine(s.DataDirectory, "blobs", v2.Variants[0].ArtifactSha256[..2], v2.Variants[0].ArtifactSha256);
        var bytes = await File.ReadAllBytesAsync(blob);
        bytes[bytes.Length / 2] ^= 0xff;
        await File.WriteAllBytesAsync(blob, bytes);

        var d2 = await client.DeployAsync("default", new CreateDeploymentRequest { Model = "fmnist", Version = "2", Selector = ["e2e"], CanaryPercent = 100, MaxFailurePercent = 0 });
        var settled = await E2E.RollOutAsync(client, d2.Id, [phone]);
        Assert.Equal(1, settled.Failed);
        Assert.Contains(settled.Targets, t => t.State == "failed" && t.Reason.Contains("do not match the signed manifest", StringComparison.Ordinal));
        Assert.Equal("1", phone.Status().Model?.Version);
        Assert.InRange(phone.Infer(new float[784]).PredictedClass, 0, 9);
    }
}
