using System.Security.Cryptography;
using System.Text.Json;
using TinyOps.Agent.State;

namespace TinyOps.Agent.Tests;

public sealed class EnrollmentTests
{
    [Fact]
    public async Task Enrolls_once_persists_its_key_and_signs_every_later_request()
    {
        await using var h = await AgentHarness.StartAsync();
        string dir = h.NewStateDir();
        var agent = h.Agent(dir);
        await agent.SyncOnceAsync();

        Assert.NotNull(agent.DeviceId);
        Assert.Equal(1, h.Server.Enrollments);
        Assert.Equal(1, h.Server.Syncs);
        Assert.Empty(h.Server.Rejections);

        // The identity holds the private key (PKCS#8) whose public half the server registered.
        var identity = JsonSerializer.Deserialize(File.ReadAllBytes(Path.Combine(dir, "identity.json")), AgentJson.Default.AgentIdentity)!;
        Assert.Equal(agent.DeviceId, identity.DeviceId);
        using (var key = ECDsa.Create())
        {
            key.ImportPkcs8PrivateKey(Convert.FromBase64String(identity.PrivateKey), out _);
            Assert.Equal(h.Server.PublicKeyOf(agent.DeviceId!), Convert.ToBase64String(key.ExportSubjectPublicKeyInfo()));
        }
        Assert.True(File.Exists(Path.Combine(dir, "trust.json")));
        Assert.Single(agent.TrustedKeys);

        // A restarted agent (its token now used up) keeps its identity and its signed requests still verify.
        await agent.DisposeAsync();
        var again = h.Agent(dir, token: "enroll-used-up");
        await again.SyncOnceAsync();
        await again.SyncOnceAsync();
        Assert.Equal(identity.DeviceId, again.DeviceId);
        Assert.Equal(1, h.Server.Enrollments);
        Assert.Equal(3, h.Server.Syncs);
        Assert.Empty(h.Server.Rejections);
        Assert.Equal(DeviceAgent.Version, h.Server.LastReport(identity.DeviceId)!.AgentVersion);
    }

    [Fact]
    public async Task A_refused_enrollment_token_is_a_clear_permanent_error()
    {
        await using var h = await AgentHarness.StartAsync();
        var agent = h.Agent(h.NewStateDir(), token: "not-a-token");
        var e = await Assert.ThrowsAsync<AgentException>(() => agent.SyncOnceAsync());
        Assert.True(e.IsPermanent);
        Assert.Contains("401", e.Message);
        Assert.Contains("enrollment token is unknown", e.Message);
        Assert.Null(agent.DeviceId);
        // RunAsync gives up on a refused enrollment instead of retrying forever.
        await Assert.ThrowsAsync<AgentException>(() => agent.RunAsync(CancellationToken.None));
    }

    [Fact]
    public async Task Capabilities_go_with_the_first_sync_after_a_restart()
    {
        await using var h = await AgentHarness.StartAsync();
        string dir = h.NewStateDir();
        var agent = h.Agent(dir);
        await agent.SyncOnceAsync();
        Assert.Null(h.Server.LastReport(agent.DeviceId!)!.Capabilities);
        await agent.DisposeAsync();
        var again = h.Agent(dir);
        await again.SyncOnceAsync();
        Assert.Equal("test", h.Server.LastReport(again.DeviceId!)!.Capabilities!.DeviceClass);
    }

    [Fact]
    public void Jitter_stays_within_twenty_percent()
    {
        var agent = new DeviceAgent(new AgentOptions { ServerUrl = new Uri("http://127.0.0.1:1"), StateDirectory = Path.Combine(Path.GetTempPath(), "tinyops-jitter-" + Guid.NewGuid().ToString("N")[..8]), RandomSeed = 7 });
        var seen = new HashSet<long>();
        for (int i = 0; i < 1000; i++)
        {
            var t = agent.WithJitter(TimeSpan.FromSeconds(10));
            Assert.InRange(t.TotalSeconds, 8, 12);
            seen.Add(t.Ticks);
        }
        Assert.True(seen.Count > 100);
    }
}

public sealed class SyncLoopTests
{
    [Fact]
    public async Task Failed_syncs_back_off_exponentially_with_jitter_up_to_the_cap()
    {
        string dir = Path.Combine(Path.GetTempPath(), "tinyops-backoff-" + Guid.NewGuid().ToString("N")[..8]);
        var waits = new List<double>();
        using var cts = new CancellationTokenSource();
        var agent = new DeviceAgent(new AgentOptions
        {
            ServerUrl = new Uri($"http://127.0.0.1:{AgentProcess.FreePort()}"),
            StateDirectory = dir,
            EnrollmentToken = "t",
            InitialBackoff = TimeSpan.FromMilliseconds(20),
            MaxBackoff = TimeSpan.FromMilliseconds(80),
            Log = line =>
            {
                var m = System.Text.RegularExpressions.Regex.Match(line, @"retrying in (\d+) ms");
                if (!m.Success) return;
                lock (waits)
                {
                    waits.Add(double.Parse(m.Groups[1].Value));
                    if (waits.Count == 6) cts.Cancel();
                }
            },
        });
        try
        {
            await agent.RunAsync(cts.Token);
            double[] nominal = [20, 40, 80, 80, 80, 80];
            Assert.Equal(6, waits.Count);
            for (int i = 0; i < 6; i++) Assert.InRange(waits[i], nominal[i] * 0.8 - 1, nominal[i] * 1.2 + 1);
        }
        finally
        {
            await agent.DisposeAsync();
            Directory.Delete(dir, true);
        }
    }
}
