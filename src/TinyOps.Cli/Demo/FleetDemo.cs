using System.Text.RegularExpressions;
using Spectre.Console;
using TinyOps.Cli.Api;
using TinyOps.Cli.Commands;
using TinyOps.Engine.Onnx;
using TinyOps.Engine.Profiling;
using TinyOps.Engine.Runtime;
using TinyOps.Optimize.Evaluation;
using TinyOps.Protocol.Devices;
using TinyOps.Protocol.Management;
using TinyOps.Server.Hosting;
using TinyOps.Simulator;

namespace TinyOps.Cli.Demo;

/// <summary>
/// What the fleet part of the demo reports, for the CLI and the end-to-end test: the evaluation set the recipe gates
/// on, the recipe job, the pushed version with its variants, the deployment and the telemetry.
/// </summary>
public sealed record FleetDemoResult(string ServerUrl, string AdminToken, string DataDirectory, EvaluationSetDto EvaluationSet, JobDto Job, VersionDto Version,
    DeploymentDto Deployment, TelemetrySummaryDto Telemetry, int Devices, long Inferences);

/// <summary>
/// The whole loop on the embedded defaults: start the control plane, give the model a recipe, push it (the recipe job
/// builds, evaluates, gates and registers its variants), enroll a simulated fleet of several device classes, roll it
/// out in stages (each device gets the best accepted variant that fits it), run real inference on every device,
/// collect telemetry.
/// </summary>
public static partial class FleetDemo
{
    public const string Project = "default";
    public const string ModelName = "fmnist-cnn";

    public sealed record Options
    {
        public required byte[] Model { get; init; }
        /// <summary>The devices infer on its images; without Fashion-MNIST it is the recipe's evaluation set.</summary>
        public required SampleBatch Samples { get; init; }
        public string? DataDirectory { get; init; }
        /// <summary>The server's Fashion-MNIST folder (null: $TINYOPS_FASHION_MNIST or Debian's); a folder without it makes the demo gate on <see cref="Samples"/>.</summary>
        public string? FashionMnistDirectory { get; init; }
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
            JobPollInterval = TimeSpan.FromMilliseconds(200),
            JobHeartbeatInterval = TimeSpan.FromMilliseconds(250),
            FashionMnistDirectory = o.FashionMnistDirectory,
            Announce = _ => { },
        }, ct);
        string token = server.AdminToken ?? throw new InvalidOperationException($"{data} already holds a TinyOps store; give the demo an empty --data folder");
        console.MarkupLine($"[bold]control plane[/] listening on {server.BaseUrl} (SQLite in {Markup.Escape(data)})");
        using var client = new TinyOpsClient(server.BaseUrl, token);

        // Before the first push: an evaluation set and the model's recipe.
        await client.CreateModelAsync(Project, ModelName, "Fashion-MNIST CNN (embedded demo model)");
        var (evaluationSet, fallback) = await DemoRecipe.RegisterEvaluationSetAsync(client, Project, o.Samples);
        if (fallback is not null)
            console.MarkupLine($"[yellow]no Fashion-MNIST here[/] ({Markup.Escape(fallback)}): the accuracy gate uses the {evaluationSet.Count} embedded test images, labelled with PyTorch's predictions, " +
                $"and int8 calibrates on them; with {evaluationSet.Count} images one image is {100.0 / evaluationSet.Count:0.#} points, so the gate only catches gross losses (apt-get install dataset-fashion-mnist for a real one)");
        console.MarkupLine($"[bold]evaluation set[/] '{Markup.Escape(evaluationSet.Name)}': {Markup.Escape(evaluationSet.Description)} ({evaluationSet.Count:N0} samples, {evaluationSet.Classes} classes)");
        var recipe = await client.SetRecipeAsync(Project, ModelName, DemoRecipe.Text(evaluationSet));
        console.MarkupLine($"[bold]recipe[/] '{recipe.Name}' set on {ModelName} (sha256 {recipe.Sha256[..12]}; accuracy gate on '{Markup.Escape(recipe.Evaluation ?? "none")}'), every pushed version becomes:");
        foreach (var v in recipe.Variants)
            console.MarkupLine(Markup.Escape($"  {v.Name,-13} for {string.Join(", ", v.Targets),-20} may lose {v.MaxAccuracyDrop:0.#} point{(v.MaxAccuracyDrop == 1 ? "" : "s")}: {string.Join(" -> ", v.Passes)}"));

        // Push the model: the recipe runs as a background job that registers the variants.
        var version = await client.PushVersionAsync(Project, ModelName, o.Model, alias: "production", notes: "Fashion-MNIST CNN (embedded demo model)");
        var baseVariant = version.Variants[0];
        var job = (await client.JobsAsync(Project, ModelName, version.Version)).Single();
        console.MarkupLine($"[bold]registry[/]: {ModelName} v{version.Version} ({baseVariant.Metadata.Parameters:N0} parameters, {baseVariant.Metadata.Macs:N0} MACs, planned peak {Server.Fleet.Compatibility.Bytes(baseVariant.Metadata.PlannedPeakBytes)}), signed with key {baseVariant.SigningKeyId}; the push queued recipe job {job.Id}");
        job = (await OptimizationCommands.WatchAsync(client, Project, [job], console)).Single();
        version = await client.VersionAsync(Project, ModelName, version.Version);
        console.MarkupLine(job.State == JobStates.Succeeded
            ? $"[bold]variants[/]: {Markup.Escape(job.Message)} in {(job.FinishedAt - job.StartedAt)?.TotalSeconds:0.0} s; each has its lineage (base {baseVariant.Id}, recipe sha256 {recipe.Sha256[..12]}, job {job.Id})"
            : $"[red]recipe job {job.State}[/]: {Markup.Escape(job.Error ?? job.Message)}");
        console.Write(OptimizationCommands.VariantTable(version.Variants, compact: true));
        foreach (var v in version.Variants.Where(v => v.Status != "accepted"))
            console.MarkupLine($"  [red]{Markup.Escape(v.Name)} is {Markup.Escape(v.Status)}[/]: {Markup.Escape(v.StatusReason ?? "")}");
        var names = version.Variants.ToDictionary(v => v.Id, v => $"{v.Name} ({v.Id})");

        // This machine's effective MAC rate, which scales the devices' latency to their class: the one the recipe job
        // measured (so telemetry and the variants' estimates scale alike), else measured here.
        double hostRate = version.Variants.Single(v => v.Id == baseVariant.Id).Evaluation?.HostMacsPerSecond ?? MeasureHostRate(o.Model);

        // Enroll the fleet.
        int n = Math.Max(4, o.Devices);
        var mix = new List<(DeviceProfile, int)>
        {
            (DeviceProfile.CortexM4, n * 35 / 100),
            (DeviceProfile.CortexM0, n * 15 / 100),
            (DeviceProfile.Phone, n * 30 / 100),
        };
        mix.Add((DeviceProfile.Gateway, n - mix.Sum(m => m.Item2)));
        var enrollment = await client.CreateEnrollmentTokenAsync(Project, n, ["demo"]);
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
        var deployment = await client.DeployAsync(Project, new CreateDeploymentRequest { Model = ModelName, Version = "production", Selector = ["demo"], CanaryPercent = 10 });
        console.MarkupLine($"[bold]deployment[/] {deployment.Id}: {deployment.Targeted} devices targeted, {deployment.Incompatible} refused as incompatible, canary {deployment.CanaryPercent}%");
        var deadline = DateTime.UtcNow + o.Timeout;
        await console.Progress().AutoClear(false).StartAsync(async p =>
        {
            var task = p.AddTask("rolling out", maxValue: Math.Max(1, deployment.Targeted - deployment.Incompatible));
            while (deployment.Status is "canary" or "rolling" && DateTime.UtcNow < deadline)
            {
                await fleet!.SyncAllAsync(ct: ct);
                await Task.Delay(400, ct);
                deployment = await client.DeploymentAsync(Project, deployment.Id);
                task.Value = deployment.Installed + deployment.Failed;
                task.Description = $"rolling out ({(deployment.Stage == 1 ? "canary" : "all devices")})";
            }
            task.Value = task.MaxValue;
        });
        deployment = await client.DeploymentAsync(Project, deployment.Id);
        console.MarkupLine($"[bold]rollout {deployment.Status}[/]: {deployment.Installed} installed, {deployment.Failed} failed, {deployment.Incompatible} incompatible; per device class, what the control plane chose and why:");
        foreach (var cls in deployment.Targets.GroupBy(t => t.DeviceClass).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            foreach (var chosen in cls.GroupBy(t => t.VariantId))
            {
                int installed = chosen.Count(t => t.State == "installed");
                console.MarkupLine(chosen.Key is null
                    ? $"  [yellow]{Markup.Escape(cls.Key)}: {chosen.Count()} of {cls.Count()} devices refused[/]"
                    : $"  [bold]{Markup.Escape(cls.Key)}[/]: {installed} of {cls.Count()} devices installed [green]{Markup.Escape(names.GetValueOrDefault(chosen.Key, chosen.Key))}[/]");
                console.MarkupLine($"[grey]      {Markup.Escape(Readable(chosen.First().Reason))}[/]");
            }
        }

        // Real inference on every device, then telemetry.
        long inferences = await fleet!.RunInferenceAsync(o.InferencesPerDevice, o.Samples.Image, ct);
        await fleet.UploadTelemetryAsync(ct);
        await fleet.SyncAllAsync(ct: ct);
        var summary = await client.TelemetrySummaryAsync(Project);
        console.MarkupLine($"[bold]telemetry[/]: {summary.Inferences:N0} inferences in {summary.Batches:N0} batches");
        var table = new Table().AddColumns("device class", "variant", "inferences", "p50 here", "p50 on the device class").Border(TableBorder.Rounded);
        foreach (var c in summary.ByClass)
            table.AddRow(c.DeviceClass, Markup.Escape(names.GetValueOrDefault(c.VariantId, c.VariantId)), c.Inferences.ToString("N0"), $"{c.P50Us:F0} us", c.DeviceP50Us >= 1000 ? $"{c.DeviceP50Us / 1000:F2} ms" : $"{c.DeviceP50Us:F0} us");
        console.Write(table);

        var result = new FleetDemoResult(server.BaseUrl, token, data, evaluationSet, job, version, deployment, summary, n, inferences);
        console.MarkupLine($"[bold]look here[/]: dashboard {server.BaseUrl}/#token={Uri.EscapeDataString(token)}");
        console.MarkupLine($"            CLI: tinyops login --url {server.BaseUrl} --token {token}; tinyops model variants {ModelName}; tinyops jobs; tinyops rollout status {deployment.Id}");
        console.MarkupLine($"            data: {Markup.Escape(data)} (run 'tinyops server --data {Markup.Escape(data)}' to browse it later; the admin token stays valid)");
        if (o.Serve is not null) await o.Serve(server);
        return result;
    }

    /// <summary>
    /// The model's MACs over its median batch-1 latency here (200 runs), timed by <see cref="ModelEvaluator.MedianLatency"/>,
    /// the probe the recipe job times with (one thread, pseudo-random input, 20 runs and 1 s of warm-up).
    /// </summary>
    private static double MeasureHostRate(byte[] bytes)
    {
        var model = OnnxLoader.Load(bytes);
        long macs = ModelProfiler.Profile(new InferenceSession(model)).TotalMacs;
        return DeviceProfile.HostMacsPerSecond(macs, ModelEvaluator.MedianLatency(model, 200));
    }

    /// <summary>A chooser's reason with each other variant (and the count of them) on its own line; a "; " separator goes, a ":" stays.</summary>
    private static string Readable(string reason) => OtherVariant().Replace(reason, m => (m.Value[0] == ':' ? ":" : "") + "\n        ");

    [GeneratedRegex(@"[;:] (?=var_\w+ \()|; (?=\d+ other variants?:)")]
    private static partial Regex OtherVariant();
}
