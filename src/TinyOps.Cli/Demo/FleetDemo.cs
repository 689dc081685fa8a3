using System.Diagnostics;
using Spectre.Console;
using TinyOps.Cli.Api;
using TinyOps.Engine.Onnx;
using TinyOps.Engine.Profiling;
using TinyOps.Engine.Runtime;
using TinyOps.Engine.Tensors;
using TinyOps.Protocol.Devices;
using TinyOps.Protocol.Management;
using TinyOps.Server.Hosting;
using TinyOps.Simulator;

namespace TinyOps.Cli.Demo;

/// <summary>What the fleet part of the demo reports, for the CLI and the end-to-end test.</summary>
public sealed record FleetDemoResult(string ServerUrl, string AdminToken, string DataDirectory, DeploymentDto Deployment, TelemetrySummaryDto Telemetry, int Devices, long Inferences);

/// <summary>
/// The whole loop on the embedded defaults: start the control plane, register the model, enroll a simulated fleet of
/// several device classes, roll the model out in stages, run real inference on every device, collect telemetry.
/// </summary>
public static class FleetDemo
{
    public sealed record Options
    {
        public required byte[] Model { get; init; }
        public required Func<int, float[]> Images { get; init; }
        public string? DataDirectory { get; init; }
        public int Devices { get; init; } = 300;
        public int InferencesPerDevice { get; init; } = 20;
        public TimeSpan Timeout { get; init; } = TimeSpan.FromMinutes(5);
        /// <summary>Keep the server running after the demo until this completes (null: stop at once).</summary>
        public Func<TinyOpsServer, Task>? Serve { get; init; }
    }

    public static async Task<FleetDemoResult> RunAsync(Options o, IAnsiConsole console, CancellationToken ct = default)
    {
        string data = o.DataDirectory ?? Path.Combine(Path.GetTempPath(), "tinyops-demo-" + DateTime.UtcNow.ToString("yyyyMMdd-HHmmss"));
        await using var server = await TinyOpsServer.StartAsync(new ServerOptions
        {
            DataDirectory = data,
            Urls = "http://127.0.0.1:0",
            DevicePollSeconds = 2,
            RolloutInterval = TimeSpan.FromMilliseconds(300),
            Announce = _ => { },
        }, ct);
        string token = server.AdminToken ?? throw new InvalidOperationException($"{data} already holds a TinyOps store; give the demo an empty --data folder");
        console.MarkupLine($"[bold]control plane[/] listening on {server.BaseUrl} (SQLite in {Markup.Escape(data)})");
        using var client = new TinyOpsClient(server.BaseUrl, token);

        // Register the model.
        var version = await client.PushVersionAsync("default", "fmnist-cnn", o.Model, alias: "production", notes: "Fashion-MNIST CNN (embedded demo model)");
        var baseVariant = version.Variants[0];
        console.MarkupLine($"[bold]registry[/]: fmnist-cnn v{version.Version} ({baseVariant.Metadata.Parameters:N0} parameters, {baseVariant.Metadata.Macs:N0} MACs, planned peak {Server.Fleet.Compatibility.Bytes(baseVariant.Metadata.PlannedPeakBytes)}), signed with key {baseVariant.SigningKeyId}");

        // Calibrate this machine's effective MAC rate on the model, to scale latency to each device class.
        var session = InferenceSession.Load(o.Model);
        var x = Tensor.Zeros(DataType.Float32, 1, 1, 28, 28);
        var outs = new Tensor[1];
        for (int i = 0; i < 20; i++) session.Run([x], outs);
        var times = new double[200];
        for (int i = 0; i < times.Length; i++) { long t0 = Stopwatch.GetTimestamp(); session.Run([x], outs); times[i] = Stopwatch.GetElapsedTime(t0).TotalSeconds; }
        Array.Sort(times);
        double hostRate = DeviceProfile.HostMacsPerSecond(ModelProfiler.Profile(session).TotalMacs, times[times.Length / 2] * 1e6);

        // Enroll the fleet.
        int n = Math.Max(4, o.Devices);
        var mix = new List<(DeviceProfile, int)>
        {
            (DeviceProfile.CortexM4, n * 35 / 100),
            (DeviceProfile.CortexM0, n * 15 / 100),
            (DeviceProfile.Phone, n * 30 / 100),
        };
        mix.Add((DeviceProfile.Gateway, n - mix.Sum(m => m.Item2)));
        var enrollment = await client.CreateEnrollmentTokenAsync("default", n, ["demo"]);
        FleetSimulator? fleet = null;
        await console.Progress().AutoClear(false).StartAsync(async p =>
        {
            var task = p.AddTask("enrolling devices", maxValue: n);
            fleet = await FleetSimulator.EnrollAsync(new FleetOptions
            {
                ServerUrl = new Uri(server.BaseUrl),
                StateRoot = Path.Combine(data, "devices"),
                EnrollmentToken = enrollment.Token,
                Devices = mix,
                Tags = ["demo"],
                HostMacsPerSecond = hostRate,
            }, done => task.Value = done, ct);
        });
        await using var _ = fleet!;
        console.MarkupLine($"[bold]fleet[/]: {n} simulated devices enrolled: {string.Join(", ", mix.Select(m => $"{m.Item2} {m.Item1.DeviceClass}"))}");

        // Roll out in stages.
        var deployment = await client.DeployAsync("default", new CreateDeploymentRequest { Model = "fmnist-cnn", Version = "production", Selector = ["demo"], CanaryPercent = 10 });
        console.MarkupLine($"[bold]deployment[/] {deployment.Id}: {deployment.Targeted} devices targeted, {deployment.Incompatible} refused as incompatible, canary {deployment.CanaryPercent}%");
        var deadline = DateTime.UtcNow + o.Timeout;
        await console.Progress().AutoClear(false).StartAsync(async p =>
        {
            var task = p.AddTask("rolling out", maxValue: Math.Max(1, deployment.Targeted - deployment.Incompatible));
            while (deployment.Status is "canary" or "rolling" && DateTime.UtcNow < deadline)
            {
                await fleet!.SyncAllAsync(ct: ct);
                await Task.Delay(400, ct);
                deployment = await client.DeploymentAsync("default", deployment.Id);
                task.Value = deployment.Installed + deployment.Failed;
                task.Description = $"rolling out ({(deployment.Stage == 1 ? "canary" : "all devices")})";
            }
            task.Value = task.MaxValue;
        });
        deployment = await client.DeploymentAsync("default", deployment.Id);
        console.MarkupLine($"[bold]rollout {deployment.Status}[/]: {deployment.Installed} installed, {deployment.Failed} failed, {deployment.Incompatible} incompatible");
        foreach (var reason in deployment.Targets.Where(t => t.State == "incompatible").GroupBy(t => t.DeviceClass).Select(g => (g.Key, g.First().Reason, g.Count())))
            console.MarkupLine($"  [yellow]{reason.Item3} {Markup.Escape(reason.Key)} devices refused[/]: {Markup.Escape(reason.Item2)}");

        // Real inference on every device, then telemetry.
        long inferences = await fleet!.RunInferenceAsync(o.InferencesPerDevice, o.Images, ct);
        await fleet.UploadTelemetryAsync(ct);
        await fleet.SyncAllAsync(ct: ct);
        var summary = await client.TelemetrySummaryAsync("default");
        console.MarkupLine($"[bold]telemetry[/]: {summary.Inferences:N0} inferences in {summary.Batches:N0} batches");
        var table = new Table().AddColumns("device class", "variant", "inferences", "p50 here", "p50 on the device class").Border(TableBorder.Rounded);
        foreach (var c in summary.ByClass)
            table.AddRow(c.DeviceClass, c.VariantId, c.Inferences.ToString("N0"), $"{c.P50Us:F0} us", c.DeviceP50Us >= 1000 ? $"{c.DeviceP50Us / 1000:F2} ms" : $"{c.DeviceP50Us:F0} us");
        console.Write(table);

        var result = new FleetDemoResult(server.BaseUrl, token, data, deployment, summary, n, inferences);
        console.MarkupLine($"[bold]look here[/]: dashboard {server.BaseUrl}/#token={Uri.EscapeDataString(token)}");
        console.MarkupLine($"            CLI: tinyops login --url {server.BaseUrl} --token {token}; tinyops rollout status {deployment.Id}");
        console.MarkupLine($"            data: {Markup.Escape(data)} (run 'tinyops server --data {Markup.Escape(data)}' to browse it later; the admin token stays valid)");
        if (o.Serve is not null) await o.Serve(server);
        return result;
    }
}
