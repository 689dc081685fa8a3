using Microsoft.Playwright;
using TinyOps.Cli.Api;
using TinyOps.Cli.Demo;
using TinyOps.Server.Hosting;
using Xunit;

namespace TinyOps.EndToEnd.Tests;

/// <summary>
/// The demo runs to completion on a small fleet (its recipe's variants registered with lineage, the Cortex-M0 devices
/// running the int8 one: <see cref="DemoTests"/>), and while its server still runs, Debian's Chromium driven by
/// Microsoft.Playwright loads every dashboard page, checks what it shows against the API, and saves screenshots
/// (TestResults/screenshots).
/// </summary>
[Collection(E2E.RecipeJobs)]
public sealed class DashboardTests
{
    [Fact]
    public async Task DemoCompletesAndTheDashboardShowsWhatTheApiSays()
    {
        string shots = E2E.ScreenshotFolder();
        var checkedPages = new List<string>();

        var result = await DemoTests.RunDemoAsync(20, null, server => CheckDashboardAsync(server, shots, checkedPages));

        DemoTests.AssertTheLoopClosed(result, DemoRecipe.FashionMnistSet, DemoRecipe.FashionMnistCount, "fashion-mnist");
        Assert.Equal(["fleet", "models", "deployments", "telemetry", "audit"], checkedPages);
    }

    private static async Task CheckDashboardAsync(TinyOpsServer server, string shots, List<string> checkedPages)
    {
        using var client = new TinyOpsClient(server.BaseUrl, server.AdminToken);
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await E2E.ChromiumAsync(playwright);
        var page = await browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 1400, Height = 900 } });
        var errors = new List<string>();
        page.PageError += (_, e) => errors.Add(e);

        async Task Open(string name)
        {
            await page.GotoAsync($"{server.BaseUrl}/#/{name}");
            await page.WaitForSelectorAsync($"#view[data-loaded='{name}']", new PageWaitForSelectorOptions { Timeout = 30_000 });
            await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(shots, $"dashboard-{name}.png"), FullPage = true });
            checkedPages.Add(name);
        }

        // Sign in through the login form, as a person would.
        await page.GotoAsync($"{server.BaseUrl}/");
        await page.FillAsync("#token", server.AdminToken!);
        await page.ClickAsync("#login-form button");
        await page.WaitForSelectorAsync("#view[data-loaded='fleet']", new PageWaitForSelectorOptions { Timeout = 30_000 });

        await Open("fleet");
        var devices = await client.DevicesAsync("default");
        Assert.Equal(devices.Count.ToString(), await page.InnerTextAsync("[data-testid=device-count]"));
        Assert.Equal(devices.Count, await page.Locator("#devices tbody tr").CountAsync());
        var someDevice = devices.First(d => d.Reported?.Active is not null);
        Assert.Contains(someDevice.Reported!.Active!.VariantId, await page.InnerTextAsync($"tr[data-device='{someDevice.Id}']"));

        await Open("models");
        var versions = await client.VersionsAsync("default", "fmnist-cnn");
        var variant = versions[0].Variants[0];
        Assert.Contains("fmnist-cnn", await page.InnerTextAsync("#models"));
        Assert.Contains(variant.Metadata.Parameters.ToString("N0", System.Globalization.CultureInfo.InvariantCulture), await page.InnerTextAsync($"tr[data-variant='{variant.Id}']"));
        Assert.Contains(variant.Id, await page.InnerTextAsync("[data-lineage]"));

        await Open("deployments");
        var deployment = (await client.DeploymentsAsync("default"))[0];
        var row = page.Locator($"tr[data-deployment='{deployment.Id}']");
        Assert.Equal(deployment.Installed.ToString(), await row.Locator("[data-field=installed]").InnerTextAsync());
        Assert.Equal(deployment.Targeted.ToString(), await row.Locator("[data-field=targeted]").InnerTextAsync());
        Assert.Contains("completed", await row.InnerTextAsync());

        await Open("telemetry");
        var summary = await client.TelemetrySummaryAsync("default");
        Assert.Equal(summary.Inferences.ToString("N0", System.Globalization.CultureInfo.InvariantCulture), await page.InnerTextAsync("[data-testid=inference-count]"));
        foreach (var c in summary.ByClass)
            Assert.Equal(c.Inferences.ToString("N0", System.Globalization.CultureInfo.InvariantCulture), await page.Locator($"tr[data-class='{c.DeviceClass}'] [data-field=inferences]").InnerTextAsync());
        Assert.Equal(summary.ByClass.Count, await page.Locator("#latency-chart rect").CountAsync());

        await Open("audit");
        Assert.Contains("deployment.create", await page.InnerTextAsync("#audit"));

        Assert.Empty(errors);
    }
}
