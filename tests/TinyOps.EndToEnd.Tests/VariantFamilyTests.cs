using System.Globalization;
using Microsoft.Playwright;
using TinyOps.Cli.Api;
using TinyOps.Engine.Data;
using TinyOps.Protocol.Devices;
using TinyOps.Protocol.Management;
using TinyOps.Server.Tests;
using Xunit;

namespace TinyOps.EndToEnd.Tests;

/// <summary>
/// Issue 5 end to end: a model with a recipe; pushing a new base version through the API runs the recipe as a
/// background job on a real server (Kestrel on 127.0.0.1:0, SQLite), which registers evaluated, gated variants with
/// their lineage; a deployment then gives real agents of two device classes different variants (the 16 KiB Cortex-M0
/// the int8 one its RAM can hold, the phone an fp32 one), they install and run them; the dashboard shows the variants
/// side by side and the job.
/// </summary>
[Collection(E2E.RecipeJobs)]
public sealed class VariantFamilyTests
{
    private const string Recipe = """
        name: fmnist-fleet
        evaluation: fmnist-500
        latency_runs: 100
        variants:
          - name: fp32-folded
            targets: [phone, gateway]
            passes: [fold-constants, remove-dead-nodes]
          - name: int8
            targets: [cortex-m4, cortex-m0]
            passes:
              - fold-constants
              - quantize: { mode: static-int8, calibration: fashion-mnist, samples: 200 }
          - name: pruned-90
            targets: [cortex-m0]
            passes:
              - prune: { sparsity: 0.9, scope: layer }
        """;

    [Fact]
    public async Task ANewBaseVersionBecomesEvaluatedVariantsAndEachClassGetsTheOneThatFits()
    {
        await using var s = await TestServer.StartAsync("sqlite", o =>
        {
            o.JobPollInterval = TimeSpan.FromMilliseconds(100);
            o.JobHeartbeatInterval = TimeSpan.FromMilliseconds(200);
        });
        using var client = new TinyOpsClient(s.BaseUrl, s.Server.AdminToken);
        const string p = "default";
        await client.CreateEvaluationSetAsync(p, new CreateEvaluationSetRequest { Name = "fmnist-500", Kind = EvaluationSetKinds.FashionMnist, Count = 500 });
        await client.PushVersionAsync(p, "fmnist", E2E.CnnModel);
        var refused = await Assert.ThrowsAsync<ApiCallException>(() => client.SetRecipeAsync(p, "fmnist", Recipe.Replace("sparsity: 0.9", "sparsity: 1.5", StringComparison.Ordinal)));
        Assert.Equal(400, refused.Status);
        Assert.Equal("variants[2].passes[0].sparsity", refused.Field);
        var recipe = await client.SetRecipeAsync(p, "fmnist", Recipe);

        // A new base version: the recipe runs as a job.
        var v2 = await client.PushVersionAsync(p, "fmnist", E2E.CnnModel, alias: "production");
        var job = Assert.Single(await client.JobsAsync(p, "fmnist", v2.Version));
        var seen = new SortedSet<int>();
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(3);
        while (!JobStates.IsFinished(job.State))
        {
            Assert.True(DateTime.UtcNow < deadline, $"job {job.Id} still {job.State} at {job.Progress}%: {job.Message}");
            seen.Add(job.Progress);
            await Task.Delay(100);
            job = await client.JobAsync(p, job.Id);
        }
        Assert.True(job.State == JobStates.Succeeded, $"{job.State}: {job.Error}");
        // The side-by-side latency measurement alone takes over 4 s (1 s of warm-up per model), so progress is seen on the way.
        Assert.True(seen.Any(x => x is > 0 and < 100), $"progress seen: {string.Join(", ", seen)}");
        Assert.NotNull(job.StartedAt);
        Assert.NotNull(job.FinishedAt);

        // Lineage and metrics of every variant.
        var version = await client.VersionAsync(p, "fmnist", v2.Version);
        var byName = version.Variants.ToDictionary(v => v.Name);
        Assert.Equal(["base", "fp32-folded", "int8", "pruned-90"], byName.Keys.Order());
        var baseVariant = byName["base"];
        foreach (var v in version.Variants.Where(v => v.Name != "base"))
        {
            Assert.Equal(baseVariant.Id, v.ParentId);
            Assert.Equal(baseVariant.Id, v.Lineage!.BaseVariantId);
            Assert.Equal(v2.Version, v.Lineage.BaseVersion);
            Assert.Equal(("fmnist-fleet", recipe.Sha256, job.Id), (v.Lineage.Recipe, v.Lineage.RecipeSha256, v.Lineage.JobId));
            Assert.Equal(recipe.Variants.Single(r => r.Name == v.Name).Passes, v.Lineage.Passes.Select(x => x.Parameters.Count == 0 ? x.Pass : $"{x.Pass}({string.Join(", ", x.Parameters.Select(kv => $"{kv.Key}={kv.Value}"))})"));
            var e = v.Evaluation!;
            Assert.Equal(("fmnist-500", 500), (e.EvaluationSet, e.EvaluatedSamples));
            Assert.Equal(v.ArtifactSize, e.FileBytes);
            Assert.True(e.LatencyUs > 0);
            Assert.Equal(DeviceProfile.All.Select(c => c.DeviceClass), e.DeviceLatencyUs.Keys);
            Assert.Equal(v.Metadata.PlannedPeakBytes, e.PlannedPeakBytes);
        }
        Assert.Equal(0, byName["fp32-folded"].Evaluation!.AccuracyDrop); // folding computes the same
        Assert.Equal("accepted", byName["int8"].Status);
        Assert.True(byName["int8"].ArtifactSize * 3 < baseVariant.ArtifactSize);
        Assert.Equal("rejected", byName["pruned-90"].Status);
        Assert.Contains("never deployed", byName["pruned-90"].StatusReason);

        // The same through the CLI.
        string url = s.BaseUrl, admin = s.Server.AdminToken!;
        var variants = await E2E.CliAsync(url, admin, "model", "variants", "fmnist");
        Assert.True(variants.Exit == 0, variants.Err);
        foreach (var v in version.Variants) Assert.Contains(v.Id, variants.Out);
        Assert.Contains("est. cortex-m0", variants.Out);
        Assert.Contains($"pruned-90 is rejected: {byName["pruned-90"].StatusReason}", variants.Out);
        var jobs = await E2E.CliAsync(url, admin, "jobs");
        Assert.True(jobs.Exit == 0, jobs.Err);
        Assert.Contains(job.Id, jobs.Out);
        Assert.Contains("succeeded", jobs.Out);
        var get = await E2E.CliAsync(url, admin, "model", "recipe", "get", "fmnist");
        Assert.Equal(Recipe + "\n", get.Out);
        string badFile = Path.Combine(s.DataDirectory, "bad.yaml");
        await File.WriteAllTextAsync(badFile, Recipe.Replace("fold-constants, remove-dead-nodes", "fold-constants, sharpen", StringComparison.Ordinal));
        var bad = await E2E.CliAsync(url, admin, "model", "recipe", "set", "fmnist", badFile);
        Assert.Equal(2, bad.Exit);
        Assert.Contains("unknown pass 'sharpen'", bad.Err);
        Assert.Contains("[field: variants[0].passes[1]]", bad.Err);
        var budgeted = await E2E.CliAsync(url, admin, "deploy", "fmnist", "--tag", "nobody", "--latency-budget", "cortex-m4=20ms", "--latency-budget", "*=0.5s");
        Assert.True(budgeted.Exit == 0, budgeted.Err);
        var recorded = (await client.DeploymentsAsync(p)).Single();
        Assert.Equal(new Dictionary<string, double> { ["cortex-m4"] = 20_000, ["*"] = 500_000 }, recorded.LatencyBudgetsUs);

        // Two device classes, real agents: each gets the variant that fits it.
        var token = await client.CreateEnrollmentTokenAsync(p, 4, ["e2e"]);
        string states = Path.Combine(s.DataDirectory, "agents");
        var phones = Enumerable.Range(0, 2).Select(i => E2E.Agent(s.BaseUrl, states, token.Token, DeviceProfile.Phone, $"phone-{i}")).ToList();
        var sensors = Enumerable.Range(0, 2).Select(i => E2E.Agent(s.BaseUrl, states, token.Token, DeviceProfile.CortexM0, $"m0-{i}")).ToList();
        var all = phones.Concat(sensors).ToList();
        try
        {
            foreach (var a in all) await a.EnrollAsync();
            var d = await client.DeployAsync(p, new CreateDeploymentRequest { Model = "fmnist", Version = "production", Selector = ["e2e"], CanaryPercent = 50 });
            Assert.Equal(0, d.Incompatible);
            foreach (var t in d.Targets.Where(t => t.DeviceClass == "cortex-m0"))
            {
                Assert.Equal(byName["int8"].Id, t.VariantId);
                Assert.Contains($"{baseVariant.Id} (base) does not fit: planned peak memory 30.6 KiB exceeds the device's RAM 16.0 KiB", t.Reason);
                Assert.Contains($"{byName["pruned-90"].Id} (pruned-90) is rejected", t.Reason);
            }
            string[] fp32 = [baseVariant.Id, byName["fp32-folded"].Id];
            foreach (var t in d.Targets.Where(t => t.DeviceClass == "phone"))
            {
                Assert.Contains(t.VariantId, fp32);
                Assert.Contains($"{byName["int8"].Id} (int8) is not meant for this class: its recipe targets cortex-m4, cortex-m0, not phone", t.Reason);
            }

            d = await E2E.RollOutAsync(client, d.Id, all);
            Assert.Equal("completed", d.Status);
            Assert.Equal(4, d.Installed);
            var images = FashionMnist.LoadTest();
            foreach (var a in all)
            {
                string expected = sensors.Contains(a) ? byName["int8"].Id : d.Targets.Single(t => t.DeviceId == a.DeviceId).VariantId!;
                Assert.Equal(expected, a.Status().Model?.VariantId);
                int correct = 0;
                for (int i = 0; i < 20; i++) correct += a.Infer(images.Image(i).ToArray()).PredictedClass == images.Labels[i] ? 1 : 0;
                Assert.True(correct >= 15, $"{a.DeviceId}: {correct} of 20 right");
            }
            Assert.NotEqual(sensors[0].Status().Model?.VariantId, phones[0].Status().Model?.VariantId);

            await CheckDashboardAsync(s, client, version, job);
        }
        finally
        {
            foreach (var a in all) await a.DisposeAsync();
        }
    }

    /// <summary>The Variants page shows the version's variants side by side with the API's figures; the Jobs page the job.</summary>
    private static async Task CheckDashboardAsync(TestServer s, TinyOpsClient client, VersionDto version, JobDto job)
    {
        string shots = E2E.ScreenshotFolder();
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await E2E.ChromiumAsync(playwright);
        var page = await browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 1600, Height = 900 } });
        var errors = new List<string>();
        page.PageError += (_, e) => errors.Add(e);
        await page.GotoAsync($"{s.BaseUrl}/#token={Uri.EscapeDataString(s.Server.AdminToken!)}");
        await page.WaitForSelectorAsync("#view[data-loaded='fleet']", new PageWaitForSelectorOptions { Timeout = 30_000 });

        await page.GotoAsync($"{s.BaseUrl}/#/variants");
        await page.WaitForSelectorAsync("#view[data-loaded='variants']", new PageWaitForSelectorOptions { Timeout = 30_000 });
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(shots, "dashboard-variants.png"), FullPage = true });
        var table = page.Locator($"table[data-model='fmnist'][data-version='{version.Version}']");
        Assert.Equal(version.Variants.Count, await table.Locator("tbody tr").CountAsync());
        foreach (var v in version.Variants)
        {
            var row = table.Locator($"tr[data-variant='{v.Id}']");
            Assert.Equal((v.Evaluation!.Accuracy!.Value * 100).ToString("0.00", CultureInfo.InvariantCulture) + " %", await row.Locator("[data-field=accuracy]").InnerTextAsync());
            Assert.Contains(v.Status, await row.InnerTextAsync());
            Assert.NotEqual("", await row.Locator("[data-class='cortex-m0']").InnerTextAsync());
        }
        var rejected = version.Variants.Single(v => v.Status == "rejected");
        Assert.Equal(rejected.StatusReason, await table.Locator($"tr[data-variant='{rejected.Id}'] [data-field=reason]").InnerTextAsync());

        await page.GotoAsync($"{s.BaseUrl}/#/jobs");
        await page.WaitForSelectorAsync("#view[data-loaded='jobs']", new PageWaitForSelectorOptions { Timeout = 30_000 });
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(shots, "dashboard-jobs.png"), FullPage = true });
        var jobRow = page.Locator($"tr[data-job='{job.Id}']");
        Assert.Equal("succeeded", await jobRow.Locator("[data-field=state]").InnerTextAsync());
        Assert.Equal("100%", await jobRow.Locator("[data-field=progress]").InnerTextAsync());
        Assert.Equal((await client.JobsAsync("default")).Count, await page.Locator("#jobs tbody tr").CountAsync());
        Assert.Empty(errors);
    }
}
