using TinyOps.Agent;
using TinyOps.Cli.Api;
using TinyOps.Engine;
using TinyOps.Engine.Kernels;
using TinyOps.Protocol.Devices;

namespace TinyOps.EndToEnd.Tests;

/// <summary>Shared pieces of the end-to-end tests: the model, agents of a class, polling.</summary>
internal static class E2E
{
    public static string RepoRoot { get; } = FindRoot();

    /// <summary>
    /// The xunit collection of the tests whose servers run recipe jobs (the demo's too), run one at a time: their jobs
    /// time models side by side, and with three of them at once on a 2-core machine VariantFamilyTests saw no job
    /// progress before its job ended.
    /// </summary>
    public const string RecipeJobs = "recipe jobs";

    public static byte[] CnnModel => File.ReadAllBytes(Path.Combine(RepoRoot, "samples", "fmnist_cnn", "model.onnx"));

    public static byte[] MlpModel => File.ReadAllBytes(Path.Combine(RepoRoot, "..", "shared", "models", "fmnist_mlp.onnx"));

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "TinyOps.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("no TinyOps.sln above the test binaries");
    }

    public static DeviceAgent Agent(string serverUrl, string stateRoot, string token, DeviceProfile profile, string name, HttpMessageHandler? handler = null) =>
        new(new AgentOptions
        {
            ServerUrl = new Uri(serverUrl),
            StateDirectory = Path.Combine(stateRoot, name),
            EnrollmentToken = token,
            DeviceName = name,
            Tags = ["e2e"],
            Capabilities = new DeviceCapabilities
            {
                DeviceClass = profile.DeviceClass,
                Architecture = profile.Architecture,
                RamBytes = profile.RamBytes,
                FlashBytes = profile.FlashBytes,
                RuntimeVersion = EngineInfo.Version,
                Operators = KernelRegistry.Default.Operators.Where(o => o.Domain.Length == 0).Select(o => o.OpType).ToList(),
            },
            HttpHandler = handler,
            LatencyScale = 10,
            InitialBackoff = TimeSpan.FromMilliseconds(100),
        });

    /// <summary>Debian's Chromium, headless, driven by Microsoft.Playwright (no downloaded browser).</summary>
    public static async Task<Microsoft.Playwright.IBrowser> ChromiumAsync(Microsoft.Playwright.IPlaywright playwright)
    {
        const string chromium = "/usr/bin/chromium";
        Xunit.Assert.True(File.Exists(chromium), $"{chromium} is missing: apt-get install chromium (.ci/run does)");
        return await playwright.Chromium.LaunchAsync(new Microsoft.Playwright.BrowserTypeLaunchOptions
        {
            ExecutablePath = chromium,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        });
    }

    /// <summary>Runs the `tinyops` CLI (this test's copy of tinyops.dll) against a server; returns its exit code and output.</summary>
    public static async Task<(int Exit, string Out, string Err)> CliAsync(string url, string token, params string[] args)
    {
        var psi = new System.Diagnostics.ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "tinyops.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["TINYOPS_URL"] = url;
        psi.Environment["TINYOPS_TOKEN"] = token;
        psi.Environment["TINYOPS_CONFIG"] = Path.Combine(Path.GetTempPath(), "tinyops-e2e-no-config.json");
        psi.Environment["NO_COLOR"] = "1";
        using var p = System.Diagnostics.Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        return (p.ExitCode, await stdout, await stderr);
    }

    /// <summary>Where the dashboard tests save their screenshots (TestResults/screenshots).</summary>
    public static string ScreenshotFolder()
    {
        string shots = Path.Combine(RepoRoot, "TestResults", "screenshots");
        Directory.CreateDirectory(shots);
        return shots;
    }

    /// <summary>Syncs every agent until the deployment settles or the deadline passes.</summary>
    public static async Task<Protocol.Management.DeploymentDto> RollOutAsync(TinyOpsClient client, string deploymentId, IReadOnlyList<DeviceAgent> agents, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(90));
        var d = await client.DeploymentAsync("default", deploymentId);
        while (d.Status is "canary" or "rolling" && DateTime.UtcNow < deadline)
        {
            foreach (var a in agents) await a.SyncOnceAsync();
            await Task.Delay(150);
            d = await client.DeploymentAsync("default", deploymentId);
        }
        foreach (var a in agents) await a.SyncOnceAsync();
        return await client.DeploymentAsync("default", deploymentId);
    }
}

/// <summary>Forwards requests; the first telemetry upload reaches the server but its response is "lost".</summary>
internal sealed class LoseFirstTelemetryResponse() : DelegatingHandler(new SocketsHttpHandler())
{
    public int TelemetryPosts;

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken ct)
    {
        var response = await base.SendAsync(request, ct);
        if (request.RequestUri!.AbsolutePath.EndsWith("/device/telemetry", StringComparison.Ordinal) && Interlocked.Increment(ref TelemetryPosts) == 1)
        {
            response.Dispose();
            throw new HttpRequestException("connection reset after the request was sent (simulated)");
        }
        return response;
    }
}
