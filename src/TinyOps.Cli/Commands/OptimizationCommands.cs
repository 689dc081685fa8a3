using System.CommandLine;
using System.Globalization;
using Spectre.Console;
using TinyOps.Cli.Api;
using TinyOps.Engine.Onnx;
using TinyOps.Protocol.Devices;
using TinyOps.Protocol.Management;
using TinyOps.Server.Fleet;
using static TinyOps.Cli.Commands.ControlPlaneCommands;

namespace TinyOps.Cli.Commands;

/// <summary>
/// Recipes, variants, jobs and evaluation sets on the control plane: `model recipe set|get|delete`, `model optimize`,
/// `model variants`, `jobs [--watch]`, `jobs show|cancel`, `eval-set add|list`.
/// </summary>
internal static class OptimizationCommands
{
    /// <summary>Subcommands of `model`.</summary>
    public static IEnumerable<Command> ModelSubcommands()
    {
        yield return Recipe();
        yield return Optimize();
        yield return Variants();
    }

    /// <summary>Root commands.</summary>
    public static IEnumerable<Command> Create()
    {
        yield return Jobs();
        yield return EvaluationSets();
    }

    private static Command Recipe()
    {
        var project = ProjectOption();
        var model = new Argument<string>("model") { Description = "model name" };
        var file = new Argument<string>("file") { Description = "a recipe (YAML or JSON; see docs/optimize.md)" };
        var set = new Command("set", "Set the model's recipe; every version pushed afterwards is optimized by it in the background");
        set.Arguments.Add(model);
        set.Arguments.Add(file);
        set.Options.Add(project);
        set.SetAction(r => CliErrors.Guard(async () =>
        {
            var cfg = CliConfig.Load();
            using var client = cfg.Client();
            string path = r.GetValue(file)!;
            string text = await File.ReadAllTextAsync(path);
            var recipe = await client.SetRecipeAsync(ProjectOf(r, project, cfg), r.GetValue(model)!, text, path.EndsWith(".json", StringComparison.OrdinalIgnoreCase) ? "application/json" : "application/yaml");
            Console.WriteLine($"recipe '{recipe.Name}' (sha256 {recipe.Sha256[..12]}) set for {recipe.Model}: {string.Join(", ", recipe.Variants.Select(v => v.Name))}; evaluation {recipe.Evaluation ?? "none"}");
            Console.WriteLine($"the next push of {recipe.Model} runs it; for an existing version: tinyops model optimize {recipe.Model} --version V");
            return 0;
        }));

        var get = Remote("get", "Print the model's recipe as stored", "model", "model name", project, async (client, p, model) =>
        {
            var recipe = await client.RecipeAsync(p, model);
            Console.Error.WriteLine($"# recipe '{recipe.Name}' of {recipe.Model}, sha256 {recipe.Sha256}, set {recipe.UpdatedAt:u} by {recipe.UpdatedBy}");
            Console.Write(recipe.Text.EndsWith('\n') ? recipe.Text : recipe.Text + "\n");
            return 0;
        });
        var delete = Remote("delete", "Remove the model's recipe (new versions are no longer optimized)", "model", "model name", project, async (client, p, model) =>
        {
            await client.DeleteRecipeAsync(p, model);
            Console.WriteLine("recipe removed");
            return 0;
        });

        var cmd = new Command("recipe", "A model's recipe: the variants built, evaluated and gated for every new version");
        cmd.Subcommands.Add(set);
        cmd.Subcommands.Add(get);
        cmd.Subcommands.Add(delete);
        return cmd;
    }

    private static Command Optimize()
    {
        var project = ProjectOption();
        var model = new Argument<string>("model") { Description = "model name" };
        var version = new Option<string>("--version", "-v") { Description = "version or alias", DefaultValueFactory = _ => "production" };
        var watch = new Option<bool>("--watch", "-w") { Description = "follow the job until it ends" };
        var cmd = new Command("optimize", "Run the model's recipe on an existing version now (a background job)");
        cmd.Arguments.Add(model);
        cmd.Options.Add(project);
        cmd.Options.Add(version);
        cmd.Options.Add(watch);
        cmd.SetAction(r => CliErrors.Guard(async () =>
        {
            var cfg = CliConfig.Load();
            using var client = cfg.Client();
            string p = ProjectOf(r, project, cfg);
            var job = await client.OptimizeAsync(p, r.GetValue(model)!, r.GetValue(version)!);
            Console.WriteLine($"job {job.Id} queued: recipe for {job.Model}:{job.Version}");
            if (!r.GetValue(watch)) return 0;
            var done = (await WatchAsync(client, p, [job])).Single();
            Console.WriteLine($"{done.State}: {done.Error ?? done.Message}");
            return done.State == JobStates.Succeeded ? 0 : 1;
        }));
        return cmd;
    }

    private static Command Variants()
    {
        var project = ProjectOption();
        var model = new Argument<string>("model") { Description = "model name" };
        var version = new Option<string?>("--version", "-v") { Description = "version or alias (default: the newest version)" };
        var cmd = new Command("variants", "A version's variants side by side: state, passes, accuracy, size, peak memory, latency here and per device class");
        cmd.Arguments.Add(model);
        cmd.Options.Add(project);
        cmd.Options.Add(version);
        cmd.SetAction(r => CliErrors.Guard(async () =>
        {
            var cfg = CliConfig.Load();
            using var client = cfg.Client();
            string p = ProjectOf(r, project, cfg), m = r.GetValue(model)!;
            VersionDto v = r.GetValue(version) is { } which
                ? await client.VersionAsync(p, m, which)
                : (await client.VersionsAsync(p, m)).LastOrDefault() ?? throw new InvalidOperationException($"model '{m}' has no versions yet");
            Console.WriteLine($"{v.Model} version {v.Version}: {v.Variants.Count} variants");
            AnsiConsole.Write(VariantTable(v.Variants));
            foreach (var x in v.Variants.Where(x => x.Status != "accepted"))
                Console.WriteLine($"{x.Name} is {x.Status}: {x.StatusReason}");
            var jobs = await client.JobsAsync(p, m, v.Version, limit: 5);
            foreach (var j in jobs.Where(j => !JobStates.IsFinished(j.State)))
                Console.WriteLine($"job {j.Id} is {j.State} ({j.Progress}%: {j.Message}); follow it with: tinyops jobs --watch");
            return 0;
        }));
        return cmd;
    }

    /// <summary>
    /// One row per variant; estimated latency per device-class profile as columns. Compact (the demo's): the variant's
    /// target classes instead of its id and passes.
    /// </summary>
    internal static Table VariantTable(IReadOnlyList<VariantDto> variants, bool compact = false)
    {
        var classes = DeviceProfile.All.Select(c => c.DeviceClass).ToList();
        var t = compact
            ? new Table().AddColumns("variant", "state", "targets", "accuracy", "drop", "size", "peak", "latency here")
            : new Table().AddColumns("variant", "id", "state", "passes", "accuracy", "drop", "size", "peak", "latency here");
        foreach (var c in classes) t.AddColumn(new TableColumn("est. " + c).RightAligned());
        for (int i = t.Columns.Count - classes.Count - 5; i < t.Columns.Count - classes.Count; i++) t.Columns[i].RightAligned();
        foreach (var x in variants)
        {
            var e = x.Evaluation;
            var row = new List<string> { Markup.Escape(x.Name) };
            if (!compact) row.Add(x.Id);
            row.Add(x.Status == "accepted" ? "[green]accepted[/]" : $"[red]{Markup.Escape(x.Status)}[/]");
            row.Add(Markup.Escape(compact
                ? x.Lineage is { Targets.Count: > 0 } lt ? string.Join(", ", lt.Targets) : "any"
                : x.Lineage is { } l ? string.Join(" -> ", l.Passes.Select(ps => ps.Parameters.Count == 0 ? ps.Pass : $"{ps.Pass}({string.Join(", ", ps.Parameters.Select(kv => $"{kv.Key}={kv.Value}"))})")) : x.ParentId is null ? "(base)" : x.Recipe));
            row.AddRange(
            [
                e?.Accuracy is { } a ? (a * 100).ToString("0.00", CultureInfo.InvariantCulture) + " %" : "",
                e?.AccuracyDrop is { } d ? d.ToString("0.00", CultureInfo.InvariantCulture) : "",
                Compatibility.Bytes(x.ArtifactSize),
                Compatibility.Bytes(x.Metadata.PlannedPeakBytes),
                e?.LatencyUs is { } us ? Time(us) : "",
            ]);
            foreach (var c in classes) row.Add(e is not null && e.DeviceLatencyUs.TryGetValue(c, out double est) ? Time(est) : "");
            t.AddRow(row.ToArray());
        }
        return t;
    }

    private static string Time(double us) => Server.Deployments.VariantChooser.Us(us);

    private static Command Jobs()
    {
        var project = ProjectOption();
        var watch = new Option<bool>("--watch", "-w") { Description = "follow queued and running jobs with progress bars until they end" };
        var model = new Option<string?>("--model", "-m") { Description = "only this model's jobs" };
        var state = new Option<string?>("--state") { Description = "only jobs in this state (queued, running, succeeded, failed, cancelled)" };
        var limit = new Option<int>("--limit") { Description = "jobs", DefaultValueFactory = _ => 20 };
        var cmd = new Command("jobs", "Background jobs (recipe runs): list, follow with --watch, show, cancel");
        cmd.Options.Add(project);
        cmd.Options.Add(watch);
        cmd.Options.Add(model);
        cmd.Options.Add(state);
        cmd.Options.Add(limit);
        cmd.SetAction(r => CliErrors.Guard(async () =>
        {
            var cfg = CliConfig.Load();
            using var client = cfg.Client();
            string p = ProjectOf(r, project, cfg);
            var jobs = await client.JobsAsync(p, r.GetValue(model), state: r.GetValue(state), limit: r.GetValue(limit));
            if (r.GetValue(watch))
            {
                var active = jobs.Where(j => !JobStates.IsFinished(j.State)).ToList();
                if (active.Count > 0) await WatchAsync(client, p, active);
                jobs = await client.JobsAsync(p, r.GetValue(model), state: r.GetValue(state), limit: r.GetValue(limit));
            }
            var t = new Table().AddColumns("id", "kind", "model", "state", "progress", "message / error", "attempts", "created", "finished");
            foreach (var j in jobs)
                t.AddRow(j.Id, j.Kind, Markup.Escape($"{j.Model}:{j.Version}"), StateMarkup(j.State), $"{j.Progress}%", Markup.Escape(j.Error ?? j.Message),
                    $"{j.Attempts}/{j.MaxAttempts}", j.CreatedAt.ToString("u"), j.FinishedAt?.ToString("u") ?? "");
            AnsiConsole.Write(t);
            return 0;
        }));

        var show = Remote("show", "Show one job", "job", "job id", project, async (client, p, id) =>
        {
            var j = await client.JobAsync(p, id);
            var grid = new Grid().AddColumn().AddColumn();
            void Row(string k, string v) => grid.AddRow(k, Markup.Escape(v));
            Row("id", j.Id);
            Row("kind", $"{j.Kind} for {j.Model}:{j.Version}");
            Row("state", $"{j.State}{(j.CancelRequested && !JobStates.IsFinished(j.State) ? " (cancel requested)" : "")}, {j.Progress}%");
            Row("message", j.Message);
            if (j.Error is not null) Row("error", j.Error);
            Row("attempts", $"{j.Attempts} of {j.MaxAttempts}{(j.Worker is null ? "" : ", worker " + j.Worker)}");
            Row("created", $"{j.CreatedAt:u} by {j.CreatedBy}");
            Row("started", j.StartedAt?.ToString("u") ?? "-");
            Row("finished", j.FinishedAt is { } f ? $"{f:u} ({(f - (j.StartedAt ?? f)).TotalSeconds:0.0} s)" : "-");
            AnsiConsole.Write(grid);
            return j.State == JobStates.Failed ? 1 : 0;
        });
        var cancel = Remote("cancel", "Cancel a queued job, or ask a running one to stop at its next step", "job", "job id", project, async (client, p, id) =>
        {
            var j = await client.CancelJobAsync(p, id);
            Console.WriteLine(j.State == JobStates.Cancelled ? $"job {j.Id} cancelled" : $"job {j.Id} asked to stop; it is {j.State} at {j.Progress}% ({j.Message})");
            return 0;
        });
        cmd.Subcommands.Add(show);
        cmd.Subcommands.Add(cancel);
        return cmd;
    }

    /// <summary>A command of one argument and --project that calls the control plane: run(client, project, argument).</summary>
    private static Command Remote(string name, string description, string argument, string argumentDescription, Option<string?> project,
        Func<TinyOpsClient, string, string, Task<int>> run)
    {
        var arg = new Argument<string>(argument) { Description = argumentDescription };
        var cmd = new Command(name, description);
        cmd.Arguments.Add(arg);
        cmd.Options.Add(project);
        cmd.SetAction(r => CliErrors.Guard(async () =>
        {
            var cfg = CliConfig.Load();
            using var client = cfg.Client();
            return await run(client, ProjectOf(r, project, cfg), r.GetValue(arg)!);
        }));
        return cmd;
    }

    /// <summary>Progress bars for <paramref name="jobs"/> until each has ended (on <paramref name="console"/>, default the terminal); returns their final state.</summary>
    internal static async Task<List<JobDto>> WatchAsync(TinyOpsClient client, string project, IReadOnlyList<JobDto> jobs, IAnsiConsole? console = null)
    {
        var current = jobs.ToList();
        await (console ?? AnsiConsole.Console).Progress().AutoClear(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .StartAsync(async ctx =>
            {
                var tasks = current.ToDictionary(j => j.Id, j => ctx.AddTask(Describe(j), maxValue: 100));
                while (true)
                {
                    for (int i = 0; i < current.Count; i++)
                    {
                        var j = current[i] = await client.JobAsync(project, current[i].Id);
                        var task = tasks[j.Id];
                        task.Description = Describe(j);
                        task.Value = j.State == JobStates.Succeeded ? 100 : j.Progress;
                        if (JobStates.IsFinished(j.State)) task.StopTask();
                    }
                    if (current.All(j => JobStates.IsFinished(j.State))) return;
                    await Task.Delay(500);
                }
            });
        foreach (var j in current.Where(j => j.State == JobStates.Failed)) Console.Error.WriteLine($"job {j.Id} failed: {j.Error}");
        return current;
    }

    private static string Describe(JobDto j)
    {
        string text = $"{j.Id} {j.Model}:{j.Version} {j.State}: {j.Message}";
        return Markup.Escape(text.Length > 90 ? text[..87] + "..." : text);
    }

    private static string StateMarkup(string state) => state switch
    {
        JobStates.Succeeded => "[green]succeeded[/]",
        JobStates.Failed => "[red]failed[/]",
        JobStates.Cancelled => "[yellow]cancelled[/]",
        _ => state,
    };

    private static Command EvaluationSets()
    {
        var project = ProjectOption();
        var name = new Argument<string>("name") { Description = "the set's name, as recipes will use it (evaluation: NAME, calibration: NAME)" };
        var fmnist = new Option<bool>("--fashion-mnist") { Description = "a reference to the server's Fashion-MNIST test images (no upload)" };
        var count = new Option<int?>("--count") { Description = "use only the first N samples" };
        var inputs = new Option<string?>("--inputs") { Description = "ONNX TensorProto file: float32 [N, ...] inputs" };
        var labels = new Option<string?>("--labels") { Description = "ONNX TensorProto file: integer [N] class labels" };
        var description = new Option<string?>("--description") { Description = "what the set is" };
        var add = new Command("add", "Register a labelled evaluation set for recipes' accuracy gates");
        add.Arguments.Add(name);
        foreach (var o in new Option[] { project, fmnist, count, inputs, labels, description }) add.Options.Add(o);
        add.SetAction(r => CliErrors.Guard(async () =>
        {
            var cfg = CliConfig.Load();
            using var client = cfg.Client();
            CreateEvaluationSetRequest req;
            if (r.GetValue(fmnist))
            {
                if (r.GetValue(inputs) is not null || r.GetValue(labels) is not null) throw new ArgumentException("--fashion-mnist takes no --inputs or --labels");
                req = new CreateEvaluationSetRequest { Name = r.GetValue(name)!, Kind = EvaluationSetKinds.FashionMnist, Count = r.GetValue(count), Description = r.GetValue(description) ?? "" };
            }
            else
            {
                string inputPath = r.GetValue(inputs) ?? throw new ArgumentException("give --inputs FILE and --labels FILE (ONNX TensorProto files), or --fashion-mnist");
                string labelPath = r.GetValue(labels) ?? throw new ArgumentException("--labels FILE is missing (an integer TensorProto of class indexes)");
                byte[] x = await File.ReadAllBytesAsync(inputPath), y = await File.ReadAllBytesAsync(labelPath);
                OnnxTensors.ReadPb(x, inputPath); // a clear local error before uploading
                OnnxTensors.ReadPb(y, labelPath);
                req = new CreateEvaluationSetRequest
                {
                    Name = r.GetValue(name)!, Kind = EvaluationSetKinds.Tensors, Count = r.GetValue(count), Description = r.GetValue(description) ?? "",
                    Inputs = Convert.ToBase64String(x), Labels = Convert.ToBase64String(y),
                };
            }
            var set = await client.CreateEvaluationSetAsync(ProjectOf(r, project, cfg), req);
            Console.WriteLine($"evaluation set '{set.Name}' ({set.Kind}): {set.Count} samples of shape [{string.Join(",", set.SampleShape)}], {set.Classes} classes; name it in a recipe with evaluation: {set.Name}");
            return 0;
        }));

        var list = new Command("list", "List the project's evaluation sets");
        list.Options.Add(project);
        list.SetAction(r => CliErrors.Guard(async () =>
        {
            var cfg = CliConfig.Load();
            using var client = cfg.Client();
            var t = new Table().AddColumns("name", "kind", "samples", "sample shape", "classes", "description", "created");
            foreach (var e in await client.EvaluationSetsAsync(ProjectOf(r, project, cfg)))
                t.AddRow(Markup.Escape(e.Name), e.Kind, e.Count.ToString(CultureInfo.InvariantCulture), $"[[{string.Join(",", e.SampleShape)}]]", e.Classes.ToString(CultureInfo.InvariantCulture),
                    Markup.Escape(e.Description), e.CreatedAt.ToString("u"));
            AnsiConsole.Write(t);
            return 0;
        }));

        var cmd = new Command("eval-set", "Labelled evaluation sets recipes name for their accuracy gate (built-in: fashion-mnist)");
        cmd.Subcommands.Add(add);
        cmd.Subcommands.Add(list);
        return cmd;
    }
}
