using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using Dapper;
using Microsoft.Extensions.DependencyInjection;
using TinyOps.Protocol;
using TinyOps.Protocol.Management;
using TinyOps.Server.Deployments;
using Xunit;
using static TinyOps.Server.Tests.Deployments.Seed;

namespace TinyOps.Server.Tests.Deployments;

public sealed class DeploymentTests
{
    private const string P = "default";
    private static readonly string Deployments = ApiRoutes.Project(P) + "/deployments";

    private static readonly string[] Ops = ["Conv", "Relu", "Gemm"];

    /// <summary>fp32 base (more accurate, 1.2 MiB peak) and an int8 child (300 KiB peak), plus a rejected one.</summary>
    private static Task SeedModelAsync(TestServer s) => ModelAsync(s.Server.Database, P, "kws", "1",
        new Variant("var_base", "base", PeakBytes: 1200 * KiB, ArtifactBytes: 400 * KiB, Accuracy: 0.92, LatencyUs: 5000),
        new Variant("var_int8", "int8", PeakBytes: 300 * KiB, ArtifactBytes: 110 * KiB, Accuracy: 0.91, LatencyUs: 2000),
        new Variant("var_pruned", "pruned", PeakBytes: 100 * KiB, ArtifactBytes: 50 * KiB, Accuracy: 0.80, Status: "rejected"));

    private static async Task<List<Device>> DevicesAsync(TestServer s, string prefix, int n, Protocol.Devices.DeviceCapabilities caps, params string[] tags)
    {
        var list = new List<Device>();
        for (int i = 0; i < n; i++) list.Add(await DeviceAsync(s.Server.Database, P, $"{prefix}-{i:D2}", caps, tags));
        return list;
    }

    private static Protocol.Devices.DeviceCapabilities Gateway => Class("gateway", 64 * MiB, 512 * MiB, Ops);
    private static Protocol.Devices.DeviceCapabilities M4 => Class("cortex-m4", 512 * KiB, 1 * MiB, Ops);
    private static Protocol.Devices.DeviceCapabilities M0 => Class("cortex-m0", 64 * KiB, 256 * KiB, Ops);

    private static async Task<DeploymentDto> CreateAsync(HttpClient client, CreateDeploymentRequest req)
    {
        var r = await client.PostAsJsonAsync(Deployments, req, ProtocolJsonOptions.Options);
        Assert.Equal(HttpStatusCode.Created, r.StatusCode);
        return await r.ReadAsync<DeploymentDto>();
    }

    private static async Task<DeploymentDto> GetAsync(TestServer s, string id) => await (await s.Admin.GetAsync($"{Deployments}/{id}")).ReadAsync<DeploymentDto>();

    private static async Task<DeploymentDto> ActAsync(TestServer s, string id, string action)
    {
        var r = await s.Admin.PostAsync($"{Deployments}/{id}/{action}", null);
        return await r.ReadAsync<DeploymentDto>();
    }

    /// <summary>Polls until the worker has moved the deployment to where <paramref name="done"/> holds.</summary>
    private static async Task<DeploymentDto> WaitAsync(TestServer s, string id, Func<DeploymentDto, bool> done)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            var d = await GetAsync(s, id);
            if (done(d)) return d;
            if (DateTime.UtcNow > deadline) Assert.Fail($"deployment {id} did not get there in time; it is {d.Status}, stage {d.Stage}: " +
                string.Join(", ", d.Targets.Select(t => $"{t.DeviceName}={t.State}")));
            await Task.Delay(50);
        }
    }

    private static async Task<string> DetailAsync(HttpResponseMessage r) =>
        (await r.Content.ReadFromJsonAsync<ProblemDetailsDto>(ProtocolJsonOptions.Options))?.Detail ?? "";

    private static string StageKey(string id) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(id)));

    [Theory]
    [MemberData(nameof(TestServer.Backends), MemberType = typeof(TestServer))]
    public async Task PicksTheBestFittingVariantPerClassAndExplainsWhy(string backend)
    {
        await using var s = await TestServer.StartAsync(backend);
        var db = s.Server.Database;
        await SeedModelAsync(s);
        await AliasAsync(db, P, "kws", "production", "1");
        var gateways = await DevicesAsync(s, "gw", 2, Gateway, "site-a", "audio");
        var m4s = await DevicesAsync(s, "m4", 2, M4, "site-a", "audio");
        var m0 = await DeviceAsync(db, P, "m0-00", M0, "site-a", "audio");
        var elsewhere = await DeviceAsync(db, P, "other", Gateway, "site-b", "audio");

        var d = await CreateAsync(s.Admin, new CreateDeploymentRequest { Model = "kws", Version = "production", Selector = ["audio", "site-a"], CanaryPercent = 100 });
        Assert.Equal("1", d.Version);
        Assert.Equal(5, d.Targeted);
        Assert.Equal(4, d.Assigned);
        Assert.Equal(1, d.Incompatible);
        Assert.Equal("rolling", d.Status);
        Assert.DoesNotContain(d.Targets, t => t.DeviceId == elsewhere.Id);

        foreach (var g in gateways)
        {
            var t = d.Targets.Single(t => t.DeviceId == g.Id);
            Assert.Equal(("var_base", "assigned", "gateway"), (t.VariantId, t.State, t.DeviceClass));
            Assert.StartsWith("chose var_base (base): fits (accuracy 0.92, latency 5000 us", t.Reason);
            Assert.Contains("2 other variants", t.Reason);
            Assert.Contains("var_int8 (int8) fits but ranks lower (accuracy 0.91 < 0.92)", t.Reason);
            Assert.Contains("var_pruned (pruned) is rejected", t.Reason);
            Assert.Equal((d.Id, "var_base"), await DesiredAsync(db, g.Id));
        }
        foreach (var m in m4s)
        {
            var t = d.Targets.Single(t => t.DeviceId == m.Id);
            Assert.Equal(("var_int8", "assigned", "cortex-m4"), (t.VariantId, t.State, t.DeviceClass));
            Assert.StartsWith("chose var_int8 (int8): fits", t.Reason);
            Assert.Contains("var_base (base) does not fit: planned peak memory 1.2 MiB exceeds the device's RAM 512.0 KiB", t.Reason);
            Assert.Equal((d.Id, "var_int8"), await DesiredAsync(db, m.Id));
        }
        var refused = d.Targets.Single(t => t.DeviceId == m0.Id);
        Assert.Equal(("incompatible", (string?)null), (refused.State, refused.VariantId));
        Assert.Contains("no variant fits this device (cortex-m0, RAM 64.0 KiB", refused.Reason);
        Assert.Contains("var_int8 (int8) does not fit: planned peak memory 300.0 KiB exceeds the device's RAM 64.0 KiB", refused.Reason);
        Assert.Equal(((string?)null, (string?)null), await DesiredAsync(db, m0.Id));

        // The same explanation is served later, and the list shows the counts.
        var again = await GetAsync(s, d.Id);
        Assert.Equal(refused.Reason, again.Targets.Single(t => t.DeviceId == m0.Id).Reason);
        var list = await (await s.Admin.GetAsync(Deployments)).ReadAsync<List<DeploymentDto>>();
        Assert.Equal((5, 1), (list.Single().Targeted, list.Single().Incompatible));

        var audit = await (await s.Admin.GetAsync($"{ApiRoutes.Audit}?project={P}")).ReadAsync<List<AuditEntryDto>>();
        Assert.Contains(audit, a => a.Action == "deployment.create" && a.Target == d.Id);
    }

    [Theory]
    [MemberData(nameof(TestServer.Backends), MemberType = typeof(TestServer))]
    public async Task CanaryGetsCeilOfItsShareThenTheWorkerPromotesAndCompletes(string backend)
    {
        await using var s = await TestServer.StartAsync(backend);
        var db = s.Server.Database;
        await SeedModelAsync(s);
        var devices = await DevicesAsync(s, "m4", 11, M4, "audio");
        await DeviceAsync(db, P, "m0-00", M0, "audio");

        var d = await CreateAsync(s.Admin, new CreateDeploymentRequest { Model = "kws", Version = "1", Selector = ["audio"], CanaryPercent = 10 });
        Assert.Equal(("canary", 1), (d.Status, d.Stage));
        var stage1 = d.Targets.Where(t => t.Stage == 1).Select(t => t.DeviceId).Order().ToList();
        // ceil(10% of 11 compatible) = 2, the first two by SHA-256 of the device id; the incompatible device is not staged.
        Assert.Equal(devices.Select(x => x.Id).OrderBy(StageKey, StringComparer.Ordinal).Take(2).Order(), stage1);
        Assert.Equal(9, d.Targets.Count(t => t.Stage == 2 && t.State == "pending"));
        Assert.Equal(2, d.Assigned);
        foreach (var dev in devices)
            Assert.Equal(stage1.Contains(dev.Id) ? d.Id : null, (await DesiredAsync(db, dev.Id)).DeploymentId);

        // One canary installs: still canary. Both: the worker assigns everyone else.
        await InstalledAsync(db, stage1[0], d.Id, "var_int8");
        await WaitAsync(s, d.Id, x => x.Installed == 1);
        Assert.Equal("canary", (await GetAsync(s, d.Id)).Status);
        await InstalledAsync(db, stage1[1], d.Id, "var_int8");
        var rolling = await WaitAsync(s, d.Id, x => x.Status == "rolling");
        Assert.Equal((2, 2, 9), (rolling.Stage, rolling.Installed, rolling.Assigned));
        foreach (var dev in devices) Assert.Equal((d.Id, "var_int8"), await DesiredAsync(db, dev.Id));

        foreach (var dev in devices.Where(x => !stage1.Contains(x.Id))) await InstalledAsync(db, dev.Id, d.Id, "var_int8");
        var done = await WaitAsync(s, d.Id, x => x.Status == "completed");
        Assert.Equal((11, 0, 1), (done.Installed, done.Failed, done.Incompatible));

        var audit = await (await s.Admin.GetAsync($"{ApiRoutes.Audit}?project={P}")).ReadAsync<List<AuditEntryDto>>();
        Assert.Contains(audit, a => a.Action == "deployment.promote" && a.Actor == DeploymentStore.WorkerActor);
        Assert.Contains(audit, a => a.Action == "deployment.complete" && a.Target == d.Id);
    }

    [Theory]
    [MemberData(nameof(TestServer.Backends), MemberType = typeof(TestServer))]
    public async Task FailuresOverTheThresholdHaltTheDeployment(string backend)
    {
        await using var s = await TestServer.StartAsync(backend);
        var db = s.Server.Database;
        await SeedModelAsync(s);
        var devices = await DevicesAsync(s, "gw", 10, Gateway, "audio");
        var d = await CreateAsync(s.Admin, new CreateDeploymentRequest { Model = "kws", Version = "1", CanaryPercent = 50, MaxFailurePercent = 20 });
        var stage1 = d.Targets.Where(t => t.Stage == 1).Select(t => t.DeviceId).ToList();
        Assert.Equal(5, stage1.Count);

        // 1 of 5 failing is 20%: allowed. A second failure makes 40%: halt.
        await InstalledAsync(db, stage1[0], d.Id, "var_base");
        await FailedAsync(db, stage1[1], d.Id, "health check failed: output has NaN");
        await WaitAsync(s, d.Id, x => x.Failed == 1 && x.Installed == 1);
        Assert.Equal("canary", (await GetAsync(s, d.Id)).Status);
        await FailedAsync(db, stage1[2], d.Id, "download digest mismatch");
        var halted = await WaitAsync(s, d.Id, x => x.Status == "halted");

        Assert.Equal((1, 2, 0), (halted.Installed, halted.Failed, halted.Assigned));
        var failed = halted.Targets.Single(t => t.DeviceId == stage1[2]);
        Assert.StartsWith("install failed: download digest mismatch", failed.Reason);
        Assert.Contains("chose var_base", failed.Reason);
        var cancelled = halted.Targets.Single(t => t.DeviceId == stage1[3]);
        Assert.Equal("cancelled", cancelled.State);
        Assert.Contains("deployment halted: 2 of 5 devices failed (40% > 20% allowed)", cancelled.Reason);
        Assert.All(halted.Targets.Where(t => t.Stage == 2), t => Assert.Equal("cancelled", t.State));

        // The installed device keeps its model; nobody else points at the halted deployment.
        Assert.Equal((d.Id, "var_base"), await DesiredAsync(db, stage1[0]));
        foreach (var dev in devices.Where(x => x.Id != stage1[0]))
            Assert.Null((await DesiredAsync(db, dev.Id)).DeploymentId);
    }

    [Theory]
    [MemberData(nameof(TestServer.Backends), MemberType = typeof(TestServer))]
    public async Task PauseResumeAndAbort(string backend)
    {
        await using var s = await TestServer.StartAsync(backend);
        var db = s.Server.Database;
        var store = s.Server.App.Services.GetRequiredService<DeploymentStore>();
        await SeedModelAsync(s);
        var devices = await DevicesAsync(s, "gw", 4, Gateway);
        var d = await CreateAsync(s.Admin, new CreateDeploymentRequest { Model = "kws", Version = "1", CanaryPercent = 50 });
        var stage1 = d.Targets.Where(t => t.Stage == 1).Select(t => t.DeviceId).ToList();
        var stage2 = d.Targets.Where(t => t.Stage == 2).Select(t => t.DeviceId).ToList();

        Assert.Equal("paused", (await ActAsync(s, d.Id, "pause")).Status);
        foreach (var id in stage1) await InstalledAsync(db, id, d.Id, "var_base");
        await store.StepActiveAsync(); // the worker skips paused deployments: no promotion, no state change
        var paused = await GetAsync(s, d.Id);
        Assert.Equal(("paused", 1, 2, 0), (paused.Status, paused.Stage, paused.Assigned, paused.Installed));
        foreach (var id in stage2) Assert.Null((await DesiredAsync(db, id)).DeploymentId);
        var conflict = await s.Admin.PostAsync($"{Deployments}/{d.Id}/promote", null);
        Assert.Equal(HttpStatusCode.Conflict, conflict.StatusCode);
        Assert.Contains("resume it", await DetailAsync(conflict));

        Assert.Equal("canary", (await ActAsync(s, d.Id, "resume")).Status);
        var rolling = await WaitAsync(s, d.Id, x => x.Status == "rolling");
        Assert.Equal((2, 2), (rolling.Installed, rolling.Assigned));
        foreach (var id in stage2) Assert.Equal(d.Id, (await DesiredAsync(db, id)).DeploymentId);

        var aborted = await ActAsync(s, d.Id, "abort");
        Assert.Equal(("aborted", 2), (aborted.Status, aborted.Installed));
        foreach (var id in stage1) Assert.Equal((d.Id, "var_base"), await DesiredAsync(db, id)); // installed devices keep the model
        foreach (var id in stage2)
        {
            Assert.Equal(((string?)null, (string?)null), await DesiredAsync(db, id));
            Assert.StartsWith("deployment aborted by token:admin", aborted.Targets.Single(t => t.DeviceId == id).Reason);
        }
        Assert.Equal(HttpStatusCode.Conflict, (await s.Admin.PostAsync($"{Deployments}/{d.Id}/pause", null)).StatusCode);
        Assert.Equal(HttpStatusCode.Conflict, (await s.Admin.PostAsync($"{Deployments}/{d.Id}/resume", null)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await s.Admin.PostAsync($"{Deployments}/dep_nope/abort", null)).StatusCode);

        var audit = await (await s.Admin.GetAsync($"{ApiRoutes.Audit}?project={P}")).ReadAsync<List<AuditEntryDto>>();
        foreach (var action in new[] { "deployment.pause", "deployment.resume", "deployment.abort" })
            Assert.Contains(audit, a => a.Action == action && a.Target == d.Id && a.Actor == "token:admin");
        Assert.Equal(4, devices.Count);
    }

    [Theory]
    [MemberData(nameof(TestServer.Backends), MemberType = typeof(TestServer))]
    public async Task PromoteForcesStageTwoAndANewerDeploymentSupersedes(string backend)
    {
        await using var s = await TestServer.StartAsync(backend);
        var db = s.Server.Database;
        await SeedModelAsync(s);
        await ModelAsync(db, P, "kws", "2", new Variant("var2_base", "base", PeakBytes: 200 * KiB, ArtifactBytes: 100 * KiB, Accuracy: 0.95));
        var devices = await DevicesAsync(s, "gw", 4, Gateway);
        var d = await CreateAsync(s.Admin, new CreateDeploymentRequest { Model = "kws", Version = "1", CanaryPercent = 25, AutoPromote = false });
        var stage1 = d.Targets.Single(t => t.Stage == 1).DeviceId;
        await InstalledAsync(db, stage1, d.Id, "var_base");
        await WaitAsync(s, d.Id, x => x.Installed == 1);
        Assert.Equal("canary", (await GetAsync(s, d.Id)).Status); // no auto promotion

        var promoted = await ActAsync(s, d.Id, "promote");
        Assert.Equal(("rolling", 2, 3), (promoted.Status, promoted.Stage, promoted.Assigned));

        // Version 2 to everyone at once: the three open targets of the first deployment are superseded.
        var d2 = await CreateAsync(s.Admin, new CreateDeploymentRequest { Model = "kws", Version = "2", CanaryPercent = 100 });
        Assert.Equal(4, d2.Assigned);
        foreach (var dev in devices) Assert.Equal((d2.Id, "var2_base"), await DesiredAsync(db, dev.Id));
        var first = await WaitAsync(s, d.Id, x => x.Status == "completed");
        Assert.Equal(1, first.Installed);
        Assert.All(first.Targets.Where(t => t.DeviceId != stage1), t =>
        {
            Assert.Equal("superseded", t.State);
            Assert.StartsWith($"superseded by deployment {d2.Id}", t.Reason);
        });
    }

    [Theory]
    [MemberData(nameof(TestServer.Backends), MemberType = typeof(TestServer))]
    public async Task BadRequestsAreRefusedAndViewersCannotCreate(string backend)
    {
        await using var s = await TestServer.StartAsync(backend);
        await SeedModelAsync(s);
        await DevicesAsync(s, "gw", 2, Gateway, "audio");

        var r = await s.Admin.PostAsJsonAsync(Deployments, new CreateDeploymentRequest { Model = "nope", Version = "1" }, ProtocolJsonOptions.Options);
        Assert.Equal(HttpStatusCode.NotFound, r.StatusCode);
        Assert.Contains("model 'nope' does not exist in project 'default'; models: kws", await DetailAsync(r));
        r = await s.Admin.PostAsJsonAsync(Deployments, new CreateDeploymentRequest { Model = "kws", Version = "7" }, ProtocolJsonOptions.Options);
        Assert.Equal(HttpStatusCode.NotFound, r.StatusCode);
        Assert.Contains("model 'kws' has no version or alias '7'; versions: 1", await DetailAsync(r));
        r = await s.Admin.PostAsJsonAsync(Deployments, new CreateDeploymentRequest { Model = "kws", Version = "1", CanaryPercent = 101 }, ProtocolJsonOptions.Options);
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        Assert.Contains("canaryPercent 101", await DetailAsync(r));
        r = await s.Admin.PostAsJsonAsync(Deployments, new CreateDeploymentRequest { Model = "kws", Version = "1", MaxFailurePercent = -1 }, ProtocolJsonOptions.Options);
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        r = await s.Admin.PostAsJsonAsync(ApiRoutes.Project("ghost") + "/deployments", new CreateDeploymentRequest { Model = "kws", Version = "1" }, ProtocolJsonOptions.Options);
        Assert.Equal(HttpStatusCode.NotFound, r.StatusCode);

        // A selector matching nothing is fine: no targets, nothing to wait for.
        var empty = await CreateAsync(s.Admin, new CreateDeploymentRequest { Model = "kws", Version = "1", Selector = ["no-such-tag"] });
        Assert.Equal(("completed", 0), (empty.Status, empty.Targeted));

        var viewer = await (await s.Admin.PostAsJsonAsync(ApiRoutes.Tokens, new CreateTokenRequest("v", Roles.Viewer, P), ProtocolJsonOptions.Options)).ReadAsync<CreatedTokenDto>();
        var denied = await s.Client(viewer.Secret).PostAsJsonAsync(Deployments, new CreateDeploymentRequest { Model = "kws", Version = "1" }, ProtocolJsonOptions.Options);
        Assert.Equal(HttpStatusCode.Forbidden, denied.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await s.Client(viewer.Secret).GetAsync(Deployments)).StatusCode);

        // Nothing was stored by the refused requests.
        await using var c = await s.Server.Database.OpenAsync();
        Assert.Equal(1, await c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM deployments"));
        Assert.Equal(0, await c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM devices WHERE desired_deployment_id IS NOT NULL"));
    }

    [Theory]
    [MemberData(nameof(TestServer.Backends), MemberType = typeof(TestServer))]
    public async Task TwoReplicasSteppingAtOnceApplyEachTransitionOnce(string backend)
    {
        await using var a = await TestServer.StartAsync(backend);
        // A second server on the same store, as a replica would be.
        await using var b = await TestServer.StartAsync(backend, o =>
        {
            if (backend == "postgres") o.PostgresConnectionString = a.Server.Options.PostgresConnectionString;
            else o.DataDirectory = a.DataDirectory;
        });
        var db = a.Server.Database;
        await SeedModelAsync(a);
        var devices = await DevicesAsync(a, "gw", 6, Gateway);
        var d = await CreateAsync(a.Admin, new CreateDeploymentRequest { Model = "kws", Version = "1", CanaryPercent = 50 });
        foreach (var t in d.Targets.Where(t => t.Stage == 1)) await InstalledAsync(db, t.DeviceId, d.Id, "var_base");

        var stores = new[] { a.Server.App.Services.GetRequiredService<DeploymentStore>(), b.Server.App.Services.GetRequiredService<DeploymentStore>() };
        await Task.WhenAll(Enumerable.Range(0, 8).Select(i => Task.Run(() => stores[i % 2].StepActiveAsync())));
        Assert.Equal("rolling", (await GetAsync(a, d.Id)).Status);
        foreach (var dev in devices) await InstalledAsync(db, dev.Id, d.Id, "var_base");
        await Task.WhenAll(Enumerable.Range(0, 8).Select(i => Task.Run(() => stores[i % 2].StepActiveAsync())));
        var done = await WaitAsync(a, d.Id, x => x.Status == "completed");
        Assert.Equal(6, done.Installed);

        var audit = await (await a.Admin.GetAsync($"{ApiRoutes.Audit}?project={P}&limit=1000")).ReadAsync<List<AuditEntryDto>>();
        Assert.Single(audit, x => x.Action == "deployment.promote" && x.Target == d.Id);
        Assert.Single(audit, x => x.Action == "deployment.complete" && x.Target == d.Id);
    }
}
