using System.Net;
using System.Net.Http.Json;
using TinyOps.Protocol;
using TinyOps.Protocol.Devices;
using TinyOps.Protocol.Management;
using Xunit;

namespace TinyOps.Server.Tests.Fleet;

public sealed class DeviceManagementTests
{
    private static readonly string Devices = ApiRoutes.Project("default") + "/devices";

    [Theory]
    [MemberData(nameof(TestServer.Backends), MemberType = typeof(TestServer))]
    public async Task TagFilterKeepsDevicesCarryingEveryTag(string backend)
    {
        await using var s = await TestServer.StartAsync(backend);
        string token = await TestDevice.CreateTokenAsync(s, tags: ["site-a"]);
        using var cam = await TestDevice.EnrollAsync(s, token, "cam", tags: ["camera"]);
        using var mic = await TestDevice.EnrollAsync(s, token, "mic", tags: ["audio"]);
        using var both = await TestDevice.EnrollAsync(s, token, "both", tags: ["camera", "audio"]);

        async Task<List<string>> Names(string query) =>
            (await (await s.Admin.GetAsync(Devices + query)).ReadAsync<List<DeviceDto>>()).Select(d => d.Name).ToList();

        Assert.Equal(["both", "cam", "mic"], await Names(""));
        Assert.Equal(["both", "cam", "mic"], await Names("?tag=site-a"));
        Assert.Equal(["both", "cam"], await Names("?tag=camera"));
        Assert.Equal(["both"], await Names("?tag=camera&tag=audio"));
        Assert.Empty(await Names("?tag=nothing"));

        var developer = await FleetTestData.TokenClientAsync(s, Roles.Developer, "default");
        var updated = await (await developer.PutAsJsonAsync($"{Devices}/{mic.Id}/tags", new SetTagsRequest(["audio", "camera", "camera"]), ProtocolJsonOptions.Options)).ReadAsync<DeviceDto>();
        Assert.Equal(["audio", "camera"], updated.Tags);
        Assert.Equal(["both", "cam", "mic"], await Names("?tag=camera"));
        Assert.Equal(["both", "mic"], await Names("?tag=camera&tag=audio"));

        var bad = await developer.PutAsJsonAsync($"{Devices}/{mic.Id}/tags", new SetTagsRequest(["no spaces"]), ProtocolJsonOptions.Options);
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await developer.PutAsJsonAsync($"{Devices}/dev_missing/tags", new SetTagsRequest(["x"]), ProtocolJsonOptions.Options)).StatusCode);
        var viewer = await FleetTestData.TokenClientAsync(s, Roles.Viewer, "default");
        Assert.Equal(HttpStatusCode.Forbidden, (await viewer.PutAsJsonAsync($"{Devices}/{mic.Id}/tags", new SetTagsRequest(["x"]), ProtocolJsonOptions.Options)).StatusCode);

        var audit = await (await s.Admin.GetAsync(ApiRoutes.Audit + "?project=default")).ReadAsync<List<AuditEntryDto>>();
        Assert.Single(audit, a => a.Action == "device.tags" && a.Target == mic.Id);
    }

    [Theory]
    [MemberData(nameof(TestServer.Backends), MemberType = typeof(TestServer))]
    public async Task CompatibilityExplainsRamAndOperatorMisfits(string backend)
    {
        await using var s = await TestServer.StartAsync(backend);
        string token = await TestDevice.CreateTokenAsync(s);
        using var mcu = await TestDevice.EnrollAsync(s, token, "mcu", new DeviceCapabilities
        {
            DeviceClass = "cortex-m4", RamBytes = 64 << 10, FlashBytes = 1 << 20, Operators = ["Conv", "Relu"],
        });
        using var gw = await TestDevice.EnrollAsync(s, token, "gw", new DeviceCapabilities
        {
            DeviceClass = "gateway", RamBytes = 1L << 30, FlashBytes = 8L << 30, Operators = ["Conv", "Relu", "Softmax", "Gemm"],
        });
        var v = await FleetTestData.InsertVariantAsync(s, "default", new byte[2048], ["Conv", "Relu", "Softmax", "Gemm"], 1 << 20);

        var misfit = await (await s.Admin.GetAsync($"{Devices}/{mcu.Id}/compatibility?variant={v.Id}")).ReadAsync<CompatibilityDto>();
        Assert.False(misfit.Compatible);
        Assert.Equal(mcu.Id, misfit.DeviceId);
        Assert.Equal(v.Id, misfit.VariantId);
        Assert.Contains(misfit.Reasons, r => r.Contains("Softmax") && r.Contains("Gemm") && r.Contains("operators"));
        Assert.Contains(misfit.Reasons, r => r.Contains("RAM") && r.Contains("1.0 MiB") && r.Contains("64.0 KiB"));

        var fit = await (await s.Admin.GetAsync($"{Devices}/{gw.Id}/compatibility?variant={v.Id}")).ReadAsync<CompatibilityDto>();
        Assert.True(fit.Compatible);
        Assert.Empty(fit.Reasons);

        // Reported free storage counts once the device has synced.
        await gw.SyncAsync(new ReportedState { Conditions = new DeviceConditions { FreeStorageBytes = 1000 } });
        var full = await (await s.Admin.GetAsync($"{Devices}/{gw.Id}/compatibility?variant={v.Id}")).ReadAsync<CompatibilityDto>();
        Assert.False(full.Compatible);
        Assert.Contains(full.Reasons, r => r.Contains("free storage"));

        Assert.Equal(HttpStatusCode.NotFound, (await s.Admin.GetAsync($"{Devices}/{gw.Id}/compatibility?variant=var_missing")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await s.Admin.GetAsync($"{Devices}/{gw.Id}/compatibility")).StatusCode);
    }

    [Theory]
    [MemberData(nameof(TestServer.Backends), MemberType = typeof(TestServer))]
    public async Task DevicesAreScopedToTheirProject(string backend)
    {
        await using var s = await TestServer.StartAsync(backend);
        await FleetTestData.CreateProjectAsync(s, "other");
        using var mine = await TestDevice.EnrollAsync(s, await TestDevice.CreateTokenAsync(s), "d1");
        using var theirs = await TestDevice.EnrollAsync(s, await TestDevice.CreateTokenAsync(s, "other"), "d1");
        Assert.Equal("other", theirs.Project);
        var developer = await FleetTestData.TokenClientAsync(s, Roles.Developer, "default");

        var list = await (await developer.GetAsync(Devices)).ReadAsync<List<DeviceDto>>();
        Assert.Equal([mine.Id], list.Select(d => d.Id));
        Assert.Equal(HttpStatusCode.Forbidden, (await developer.GetAsync(ApiRoutes.Project("other") + "/devices")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await developer.GetAsync($"{Devices}/{theirs.Id}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await developer.PostAsync($"{Devices}/{theirs.Id}/revoke", null)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await developer.PostAsync($"{ApiRoutes.Project("other")}/devices/{theirs.Id}/revoke", null)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await theirs.PostSyncAsync()).StatusCode);
    }

    [Fact]
    public async Task FleetRoutesAreInTheOpenApiDocument()
    {
        await using var s = await TestServer.StartAsync("sqlite");
        var doc = await s.Client(null).GetStringAsync("/openapi/v1.json");
        foreach (var route in new[] { ApiRoutes.Enroll, ApiRoutes.Sync, ApiRoutes.Artifact + "/{sha256}", ApiRoutes.Projects + "/{project}/devices/{id}/compatibility", ApiRoutes.Projects + "/{project}/enrollment-tokens" })
            Assert.Contains(route, doc);
    }
}
