using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using Dapper;
using TinyOps.Protocol;
using TinyOps.Protocol.Devices;
using TinyOps.Protocol.Management;
using TinyOps.Server.Access;
using Xunit;

namespace TinyOps.Server.Tests.Fleet;

public sealed class EnrollmentTests
{
    [Theory]
    [MemberData(nameof(TestServer.Backends), MemberType = typeof(TestServer))]
    public async Task EnrollRegistersTheDeviceWithTokenAndRequestTags(string backend)
    {
        await using var s = await TestServer.StartAsync(backend);
        var created = await (await s.Admin.PostAsJsonAsync(ApiRoutes.Project("default") + "/enrollment-tokens",
            new CreateEnrollmentTokenRequest(1, 2, ["floor1"]), ProtocolJsonOptions.Options)).ReadAsync<EnrollmentTokenDto>();
        Assert.StartsWith("tenr_", created.Token);
        Assert.Equal("default", created.Project);
        Assert.InRange(created.ExpiresAt, DateTimeOffset.UtcNow.AddHours(1.9), DateTimeOffset.UtcNow.AddHours(2.1));

        var caps = new DeviceCapabilities { DeviceClass = "cortex-m4", Architecture = "armv7e-m", RamBytes = 256 << 10, FlashBytes = 1 << 20, RuntimeVersion = "0.1", Operators = ["Conv", "Relu"] };
        using var d = await TestDevice.EnrollAsync(s, created.Token, "sensor-1", caps, ["cam", "floor1"]);
        Assert.Matches("^dev_[0-9a-f]{16}$", d.Id);
        Assert.Equal("default", d.Project);
        Assert.NotEmpty(d.Enrollment.SigningKeys);
        Assert.Equal(1, d.Enrollment.PollSeconds);

        var shown = await (await s.Admin.GetAsync($"{ApiRoutes.Project("default")}/devices/{d.Id}")).ReadAsync<DeviceDto>();
        Assert.Equal("sensor-1", shown.Name);
        Assert.Equal(["floor1", "cam"], shown.Tags);
        Assert.Equal(caps.RamBytes, shown.Capabilities.RamBytes);
        Assert.Equal(["Conv", "Relu"], shown.Capabilities.Operators);
        Assert.False(shown.Revoked);
        Assert.Null(shown.Reported);

        // Only the token's hash is stored.
        await using (var c = await s.Server.Database.OpenAsync())
        {
            var hashes = (await c.QueryAsync<string>("SELECT token_hash FROM enrollment_tokens")).ToList();
            Assert.Equal([ApiTokens.Hash(created.Token)], hashes);
        }

        var audit = await (await s.Admin.GetAsync(ApiRoutes.Audit + "?project=default")).ReadAsync<List<AuditEntryDto>>();
        Assert.Contains(audit, a => a.Action == "enrollment-token.create" && a.Actor == "token:admin");
        Assert.Contains(audit, a => a.Action == "device.enroll" && a.Actor == "device-enroll" && a.Target == d.Id);
    }

    [Theory]
    [MemberData(nameof(TestServer.Backends), MemberType = typeof(TestServer))]
    public async Task UnknownExpiredAndUsedUpTokensAreRefused(string backend)
    {
        await using var s = await TestServer.StartAsync(backend);

        var unknown = await TestDevice.PostEnrollAsync(s, TestDevice.Request("tenr_nope", "a"));
        Assert.Equal(HttpStatusCode.Unauthorized, unknown.StatusCode);
        Assert.Contains("enrollment token is unknown", await unknown.DetailAsync());

        var missing = await TestDevice.PostEnrollAsync(s, TestDevice.Request("", "a"));
        Assert.Equal(HttpStatusCode.Unauthorized, missing.StatusCode);

        string once = await TestDevice.CreateTokenAsync(s, uses: 1);
        using (await TestDevice.EnrollAsync(s, once, "first")) { }
        var usedUp = await TestDevice.PostEnrollAsync(s, TestDevice.Request(once, "second"));
        Assert.Equal(HttpStatusCode.Forbidden, usedUp.StatusCode);
        Assert.Contains("no uses left", await usedUp.DetailAsync());

        string expiring = await TestDevice.CreateTokenAsync(s, uses: 5);
        await using (var c = await s.Server.Database.OpenAsync())
            await c.ExecuteAsync("UPDATE enrollment_tokens SET expires_at = @t WHERE token_hash = @h",
                new { t = DateTimeOffset.UtcNow.AddMinutes(-1).ToUnixTimeMilliseconds(), h = ApiTokens.Hash(expiring) });
        var expired = await TestDevice.PostEnrollAsync(s, TestDevice.Request(expiring, "third"));
        Assert.Equal(HttpStatusCode.Forbidden, expired.StatusCode);
        Assert.Contains("expired", await expired.DetailAsync());

        var devices = await (await s.Admin.GetAsync(ApiRoutes.Project("default") + "/devices")).ReadAsync<List<DeviceDto>>();
        Assert.Equal(["first"], devices.Select(x => x.Name));
    }

    [Theory]
    [MemberData(nameof(TestServer.Backends), MemberType = typeof(TestServer))]
    public async Task DuplicateNameConflictsAndBadKeyIsRejectedWithoutUsingTheToken(string backend)
    {
        await using var s = await TestServer.StartAsync(backend);
        string token = await TestDevice.CreateTokenAsync(s, uses: 2);
        using var first = await TestDevice.EnrollAsync(s, token, "sensor-1");

        var dup = await TestDevice.PostEnrollAsync(s, TestDevice.Request(token, "sensor-1"));
        Assert.Equal(HttpStatusCode.Conflict, dup.StatusCode);
        Assert.Contains("already has a device named 'sensor-1'", await dup.DetailAsync());

        var notBase64 = await TestDevice.PostEnrollAsync(s, TestDevice.Request(token, "sensor-2") with { PublicKey = "%%%" });
        Assert.Equal(HttpStatusCode.BadRequest, notBase64.StatusCode);
        Assert.Contains("publicKey", await notBase64.DetailAsync());

        using var rsa = RSA.Create(2048);
        var rsaKey = await TestDevice.PostEnrollAsync(s, TestDevice.Request(token, "sensor-2") with { PublicKey = Convert.ToBase64String(rsa.ExportSubjectPublicKeyInfo()) });
        Assert.Equal(HttpStatusCode.BadRequest, rsaKey.StatusCode);

        using var p384 = ECDsa.Create(ECCurve.NamedCurves.nistP384);
        var wrongCurve = await TestDevice.PostEnrollAsync(s, TestDevice.Request(token, "sensor-2") with { PublicKey = Convert.ToBase64String(p384.ExportSubjectPublicKeyInfo()) });
        Assert.Equal(HttpStatusCode.BadRequest, wrongCurve.StatusCode);
        Assert.Contains("P-256", await wrongCurve.DetailAsync());

        var badName = await TestDevice.PostEnrollAsync(s, TestDevice.Request(token, "no spaces"));
        Assert.Equal(HttpStatusCode.BadRequest, badName.StatusCode);

        // None of the refusals used the token's second use.
        using var second = await TestDevice.EnrollAsync(s, token, "sensor-2");
        Assert.Equal(HttpStatusCode.Forbidden, (await TestDevice.PostEnrollAsync(s, TestDevice.Request(token, "sensor-3"))).StatusCode);
    }

    [Theory]
    [MemberData(nameof(TestServer.Backends), MemberType = typeof(TestServer))]
    public async Task TheLastUseGoesToExactlyOneOfManyConcurrentDevices(string backend)
    {
        await using var s = await TestServer.StartAsync(backend);
        string token = await TestDevice.CreateTokenAsync(s, uses: 1);
        var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => TestDevice.PostEnrollAsync(s, TestDevice.Request(token, $"racer-{i}"))));
        Assert.Single(results, r => r.StatusCode == HttpStatusCode.OK);
        Assert.All(results.Where(r => r.StatusCode != HttpStatusCode.OK), r => Assert.Equal(HttpStatusCode.Forbidden, r.StatusCode));
        var devices = await (await s.Admin.GetAsync(ApiRoutes.Project("default") + "/devices")).ReadAsync<List<DeviceDto>>();
        Assert.Single(devices);
    }

    [Theory]
    [MemberData(nameof(TestServer.Backends), MemberType = typeof(TestServer))]
    public async Task EnrollmentTokensNeedWriteAccessToTheProject(string backend)
    {
        await using var s = await TestServer.StartAsync(backend);
        await FleetTestData.CreateProjectAsync(s, "other");
        var viewer = await FleetTestData.TokenClientAsync(s, Roles.Viewer, "default");
        var dev = await FleetTestData.TokenClientAsync(s, Roles.Developer, "default");
        var req = new CreateEnrollmentTokenRequest(1, 1);
        Assert.Equal(HttpStatusCode.Forbidden, (await viewer.PostAsJsonAsync(ApiRoutes.Project("default") + "/enrollment-tokens", req, ProtocolJsonOptions.Options)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await dev.PostAsJsonAsync(ApiRoutes.Project("other") + "/enrollment-tokens", req, ProtocolJsonOptions.Options)).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await dev.PostAsJsonAsync(ApiRoutes.Project("default") + "/enrollment-tokens", req, ProtocolJsonOptions.Options)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await s.Admin.PostAsJsonAsync(ApiRoutes.Project("nope") + "/enrollment-tokens", req, ProtocolJsonOptions.Options)).StatusCode);
        var zero = await s.Admin.PostAsJsonAsync(ApiRoutes.Project("default") + "/enrollment-tokens", new CreateEnrollmentTokenRequest(0, 1), ProtocolJsonOptions.Options);
        Assert.Equal(HttpStatusCode.BadRequest, zero.StatusCode);
        Assert.Contains("uses must be", await zero.DetailAsync());
    }
}
