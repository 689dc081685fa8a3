using System.Net;
using System.Net.Http.Headers;
using TinyOps.Protocol;
using TinyOps.Protocol.Devices;
using TinyOps.Protocol.Management;
using TinyOps.Trust.Signing;
using Xunit;

namespace TinyOps.Server.Tests.Fleet;

public sealed class DeviceApiTests
{
    [Theory]
    [MemberData(nameof(TestServer.Backends), MemberType = typeof(TestServer))]
    public async Task ForgedReplayedStaleAndUnsignedRequestsAreRefused(string backend)
    {
        await using var s = await TestServer.StartAsync(backend);
        string token = await TestDevice.CreateTokenAsync(s);
        using var a = await TestDevice.EnrollAsync(s, token, "a");
        using var b = await TestDevice.EnrollAsync(s, token, "b");

        // a signs with its own key but claims to be b.
        var impersonation = await a.PostSyncAsync(deviceId: b.Id);
        Assert.Equal(HttpStatusCode.Unauthorized, impersonation.StatusCode);
        Assert.Contains("does not verify", await impersonation.DetailAsync());

        // The same nonce twice: the first is fine, the second is a replay.
        Assert.Equal(HttpStatusCode.OK, (await a.PostSyncAsync(nonce: "nonce-0001")).StatusCode);
        var replay = await a.PostSyncAsync(nonce: "nonce-0001");
        Assert.Equal(HttpStatusCode.Unauthorized, replay.StatusCode);
        Assert.Contains("replayed", await replay.DetailAsync());

        var stale = await a.PostSyncAsync(timestampMs: DateTimeOffset.UtcNow.AddMinutes(-10).ToUnixTimeMilliseconds());
        Assert.Equal(HttpStatusCode.Unauthorized, stale.StatusCode);
        Assert.Contains("clock", await stale.DetailAsync());

        // A body other than the one signed.
        var tampered = await a.SendAsync(HttpMethod.Post, ApiRoutes.Sync, TestDevice.SyncBody(new ReportedState { AgentVersion = "evil" }),
            signedBody: TestDevice.SyncBody(new ReportedState { AgentVersion = "good" }));
        Assert.Equal(HttpStatusCode.Unauthorized, tampered.StatusCode);

        var unknown = await a.PostSyncAsync(deviceId: "dev_0000000000000000");
        Assert.Equal(HttpStatusCode.Unauthorized, unknown.StatusCode);
        Assert.Contains("not enrolled", await unknown.DetailAsync());

        var unsigned = await s.Client(null).PostAsync(ApiRoutes.Sync, new ByteArrayContent(TestDevice.SyncBody()));
        Assert.Equal(HttpStatusCode.Unauthorized, unsigned.StatusCode);

        // An API token is no device credential.
        Assert.Equal(HttpStatusCode.Unauthorized, (await s.Admin.PostAsync(ApiRoutes.Sync, new ByteArrayContent(TestDevice.SyncBody()))).StatusCode);

        // None of that was stored as b's state.
        var shown = await (await s.Admin.GetAsync($"{ApiRoutes.Project("default")}/devices/{b.Id}")).ReadAsync<DeviceDto>();
        Assert.Null(shown.Reported);
    }

    [Theory]
    [MemberData(nameof(TestServer.Backends), MemberType = typeof(TestServer))]
    public async Task SyncStoresReportedStateAndCapabilities(string backend)
    {
        await using var s = await TestServer.StartAsync(backend);
        using var d = await TestDevice.EnrollAsync(s, await TestDevice.CreateTokenAsync(s), "phone-1");
        var reported = new ReportedState
        {
            AgentVersion = "1.2.3",
            ActiveSlot = "A",
            Active = new InstalledModel { ModelName = "kws", Version = "1", VariantId = "var_x", ArtifactSha256 = new string('a', 64) },
            Phase = InstallPhase.Installed,
            Conditions = new DeviceConditions { Battery = 0.42, Charging = true, NetworkType = "wifi", FreeStorageBytes = 123456 },
            Capabilities = new DeviceCapabilities { DeviceClass = "phone", Architecture = "arm64", RamBytes = 4L << 30, Operators = ["Gemm"] },
        };
        var sync = await d.SyncAsync(reported);
        Assert.Null(sync.Assignment);
        Assert.Equal(1, sync.PollSeconds);
        Assert.NotEmpty(sync.SigningKeys);

        var shown = await (await s.Admin.GetAsync($"{ApiRoutes.Project("default")}/devices/{d.Id}")).ReadAsync<DeviceDto>();
        Assert.NotNull(shown.Reported);
        Assert.Equal("1.2.3", shown.Reported.AgentVersion);
        Assert.Equal(InstallPhase.Installed, shown.Reported.Phase);
        Assert.Equal(0.42, shown.Reported.Conditions.Battery);
        Assert.Equal("wifi", shown.Reported.Conditions.NetworkType);
        Assert.Equal("var_x", shown.Reported.Active?.VariantId);
        Assert.Equal("phone", shown.Capabilities.DeviceClass);
        Assert.Equal(["Gemm"], shown.Capabilities.Operators);
        Assert.NotNull(shown.LastSeenAt);

        // A later sync without capabilities keeps the stored ones.
        await d.SyncAsync(new ReportedState { AgentVersion = "1.2.4" });
        shown = await (await s.Admin.GetAsync($"{ApiRoutes.Project("default")}/devices/{d.Id}")).ReadAsync<DeviceDto>();
        Assert.Equal("1.2.4", shown.Reported!.AgentVersion);
        Assert.Equal("phone", shown.Capabilities.DeviceClass);
    }

    [Theory]
    [MemberData(nameof(TestServer.Backends), MemberType = typeof(TestServer))]
    public async Task SyncReturnsASignedManifestForTheDesiredVariant(string backend)
    {
        await using var s = await TestServer.StartAsync(backend);
        using var d = await TestDevice.EnrollAsync(s, await TestDevice.CreateTokenAsync(s), "gw-1");
        var bytes = RandomBytes(5000);
        var v = await FleetTestData.InsertVariantAsync(s, "default", bytes, ["Conv", "Relu", "Gemm"], 90_000);
        await FleetTestData.SetDesiredAsync(s, d.Id, "dep_1", v.Id);

        var sync = await d.SyncAsync();
        Assert.NotNull(sync.Assignment);
        Assert.Equal("dep_1", sync.Assignment.DeploymentId);
        var trust = new TrustStore(d.Enrollment.SigningKeys);
        trust.Accept(sync.SigningKeys);
        var manifest = trust.Verify(sync.Assignment.Manifest);
        Assert.Equal("default", manifest.Project);
        Assert.Equal("kws", manifest.ModelName);
        Assert.Equal("1", manifest.Version);
        Assert.Equal(v.Id, manifest.VariantId);
        Assert.Equal(v.Sha256, manifest.ArtifactSha256);
        Assert.Equal(bytes.Length, manifest.ArtifactSize);
        Assert.Equal("onnx", manifest.Format);
        Assert.Equal(90_000, manifest.PlannedPeakBytes);
        Assert.Equal(["Conv", "Relu", "Gemm"], manifest.Operators);
        Assert.InRange(manifest.IssuedAt, DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddMinutes(1));

        // A manifest altered in transit does not verify.
        var forged = sync.Assignment.Manifest with { Payload = Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(
            System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(sync.Assignment.Manifest.Payload)).Replace(v.Sha256, new string('0', 64)))) };
        Assert.Throws<TrustException>(() => trust.Verify(forged));

        var shown = await (await s.Admin.GetAsync($"{ApiRoutes.Project("default")}/devices/{d.Id}")).ReadAsync<DeviceDto>();
        Assert.Equal("dep_1", shown.DesiredDeploymentId);
        Assert.Equal(v.Id, shown.DesiredVariantId);
    }

    [Theory]
    [MemberData(nameof(TestServer.Backends), MemberType = typeof(TestServer))]
    public async Task ArtifactDownloadsWithRangeOnlyWithinTheProject(string backend)
    {
        await using var s = await TestServer.StartAsync(backend);
        await FleetTestData.CreateProjectAsync(s, "other");
        using var d = await TestDevice.EnrollAsync(s, await TestDevice.CreateTokenAsync(s), "gw-1");
        using var stranger = await TestDevice.EnrollAsync(s, await TestDevice.CreateTokenAsync(s, "other"), "gw-1");
        var bytes = RandomBytes(10_000);
        var v = await FleetTestData.InsertVariantAsync(s, "default", bytes, ["Conv"], 1000);
        string path = $"{ApiRoutes.Artifact}/{v.Sha256}";

        var whole = await d.SendAsync(HttpMethod.Get, path);
        Assert.Equal(HttpStatusCode.OK, whole.StatusCode);
        Assert.Equal(bytes, await whole.Content.ReadAsByteArrayAsync());
        Assert.Equal("bytes", whole.Headers.AcceptRanges.Single());

        var part = await d.SendAsync(HttpMethod.Get, path, configure: r => r.Headers.Range = new RangeHeaderValue(4000, 6999));
        Assert.Equal(HttpStatusCode.PartialContent, part.StatusCode);
        Assert.Equal(bytes[4000..7000], await part.Content.ReadAsByteArrayAsync());
        Assert.Equal(4000, part.Content.Headers.ContentRange?.From);
        Assert.Equal(10_000, part.Content.Headers.ContentRange?.Length);

        var tail = await d.SendAsync(HttpMethod.Get, path, configure: r => r.Headers.Range = new RangeHeaderValue(9000, null));
        Assert.Equal(HttpStatusCode.PartialContent, tail.StatusCode);
        Assert.Equal(bytes[9000..], await tail.Content.ReadAsByteArrayAsync());

        var foreign = await stranger.SendAsync(HttpMethod.Get, path);
        Assert.Equal(HttpStatusCode.NotFound, foreign.StatusCode);
        Assert.Contains("project 'other' has no artifact", await foreign.DetailAsync());

        Assert.Equal(HttpStatusCode.NotFound, (await d.SendAsync(HttpMethod.Get, $"{ApiRoutes.Artifact}/{new string('b', 64)}")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await d.SendAsync(HttpMethod.Get, $"{ApiRoutes.Artifact}/not-a-digest")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await s.Client(null).GetAsync(path)).StatusCode);
    }

    [Theory]
    [MemberData(nameof(TestServer.Backends), MemberType = typeof(TestServer))]
    public async Task RevokedDeviceIsForbiddenEverywhere(string backend)
    {
        await using var s = await TestServer.StartAsync(backend);
        using var d = await TestDevice.EnrollAsync(s, await TestDevice.CreateTokenAsync(s), "gw-1");
        var v = await FleetTestData.InsertVariantAsync(s, "default", RandomBytes(100), ["Conv"], 1000);
        Assert.Equal(HttpStatusCode.OK, (await d.PostSyncAsync()).StatusCode);

        var viewer = await FleetTestData.TokenClientAsync(s, Roles.Viewer, "default");
        Assert.Equal(HttpStatusCode.Forbidden, (await viewer.PostAsync($"{ApiRoutes.Project("default")}/devices/{d.Id}/revoke", null)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await d.PostSyncAsync()).StatusCode);

        var developer = await FleetTestData.TokenClientAsync(s, Roles.Developer, "default");
        var revoked = await (await developer.PostAsync($"{ApiRoutes.Project("default")}/devices/{d.Id}/revoke", null)).ReadAsync<DeviceDto>();
        Assert.True(revoked.Revoked);

        var sync = await d.PostSyncAsync();
        Assert.Equal(HttpStatusCode.Forbidden, sync.StatusCode);
        Assert.Contains("revoked", await sync.DetailAsync());
        Assert.Equal(HttpStatusCode.Forbidden, (await d.SendAsync(HttpMethod.Get, $"{ApiRoutes.Artifact}/{v.Sha256}")).StatusCode);

        var shown = await (await viewer.GetAsync($"{ApiRoutes.Project("default")}/devices/{d.Id}")).ReadAsync<DeviceDto>();
        Assert.True(shown.Revoked);
        var audit = await (await s.Admin.GetAsync(ApiRoutes.Audit + "?project=default")).ReadAsync<List<AuditEntryDto>>();
        Assert.Single(audit, a => a.Action == "device.revoke" && a.Target == d.Id);
    }

    private static byte[] RandomBytes(int n)
    {
        var b = new byte[n];
        new Random(n).NextBytes(b);
        return b;
    }
}
