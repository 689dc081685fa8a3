using System.CommandLine;
using Spectre.Console;
using TinyOps.Cli.Api;
using TinyOps.Protocol.Management;
using TinyOps.Server.Fleet;

namespace TinyOps.Cli.Commands;

/// <summary>login, device, deploy, rollout and audit: the control plane from the command line.</summary>
internal static class ControlPlaneCommands
{
    public static IEnumerable<Command> Create()
    {
        yield return Login();
        yield return Devices();
        yield return Deploy();
        yield return Rollout();
        yield return Audit();
    }

    internal static Option<string?> ProjectOption() => new("--project", "-p") { Description = "project (default: the one saved by login, or 'default')" };

    internal static string ProjectOf(ParseResult r, Option<string?> o, CliConfig cfg) => r.GetValue(o) ?? cfg.Project;

    private static Command Login()
    {
        var url = new Option<string>("--url") { Description = "control plane URL", DefaultValueFactory = _ => "http://127.0.0.1:8080" };
        var token = new Option<string>("--token") { Description = "an API token", Required = true };
        var project = new Option<string>("--project") { Description = "default project", DefaultValueFactory = _ => "default" };
        var cmd = new Command("login", "Check a token against a server and save both for later commands");
        cmd.Options.Add(url);
        cmd.Options.Add(token);
        cmd.Options.Add(project);
        cmd.SetAction(r => CliErrors.Guard(async () =>
        {
            var cfg = new CliConfig { Url = r.GetValue(url)!, Token = r.GetValue(token), Project = r.GetValue(project)! };
            using var client = cfg.Client();
            var me = await client.WhoamiAsync();
            cfg.Save();
            Console.WriteLine($"logged in to {cfg.Url} as '{me.Name}' ({me.Role}{(me.Project is null ? "" : ", project " + me.Project)}); saved to {CliConfig.Path}");
            return 0;
        }));
        return cmd;
    }

    private static Command Devices()
    {
        var project = ProjectOption();
        var tag = new Option<string[]>("--tag") { Description = "only devices with all these tags", AllowMultipleArgumentsPerToken = true };
        var list = new Command("list", "List devices");
        list.Options.Add(project);
        list.Options.Add(tag);
        list.SetAction(r => CliErrors.Guard(async () =>
        {
            var cfg = CliConfig.Load();
            using var client = cfg.Client();
            var devices = await client.DevicesAsync(ProjectOf(r, project, cfg), r.GetValue(tag));
            var t = new Table().AddColumns("id", "name", "class", "tags", "RAM", "active model", "phase", "last seen");
            foreach (var d in devices)
                t.AddRow(d.Id, Markup.Escape(d.Name), Markup.Escape(d.Capabilities.DeviceClass), Markup.Escape(string.Join(",", d.Tags)), Compatibility.Bytes(d.Capabilities.RamBytes),
                    Markup.Escape(d.Reported?.Active is { } a ? $"{a.ModelName} v{a.Version} {a.VariantId}" : "-"), d.Reported?.Phase.ToString() ?? "-", d.LastSeenAt?.ToString("u") ?? "never");
            AnsiConsole.Write(t);
            Console.WriteLine($"{devices.Count} devices");
            return 0;
        }));

        var id = new Argument<string>("device") { Description = "device id" };
        var show = new Command("show", "Show one device: capabilities, reported state, assignment");
        show.Arguments.Add(id);
        show.Options.Add(project);
        show.SetAction(r => CliErrors.Guard(async () =>
        {
            var cfg = CliConfig.Load();
            using var client = cfg.Client();
            var d = await client.DeviceAsync(ProjectOf(r, project, cfg), r.GetValue(id)!);
            var grid = new Grid().AddColumn().AddColumn();
            void Row(string k, string v) => grid.AddRow(k, Markup.Escape(v));
            Row("id", d.Id);
            Row("name", d.Name);
            Row("tags", string.Join(", ", d.Tags));
            Row("class", $"{d.Capabilities.DeviceClass} ({d.Capabilities.Architecture}), RAM {Compatibility.Bytes(d.Capabilities.RamBytes)}, flash {Compatibility.Bytes(d.Capabilities.FlashBytes)}");
            Row("runtime", $"{d.Capabilities.RuntimeVersion}, {d.Capabilities.Operators.Count} operators");
            Row("enrolled", d.EnrolledAt.ToString("u"));
            Row("last seen", d.LastSeenAt?.ToString("u") ?? "never");
            Row("revoked", d.Revoked ? "yes" : "no");
            Row("active", d.Reported?.Active is { } a ? $"slot {d.Reported.ActiveSlot}: {a.ModelName} v{a.Version} {a.VariantId}" : "-");
            Row("standby", d.Reported?.Standby is { } s ? $"{s.ModelName} v{s.Version} {s.VariantId}" : "-");
            Row("phase", d.Reported is null ? "-" : $"{d.Reported.Phase}{(d.Reported.LastError is null ? "" : ": " + d.Reported.LastError)}");
            Row("desired", d.DesiredVariantId is null ? "-" : $"{d.DesiredVariantId} (deployment {d.DesiredDeploymentId})");
            if (d.Reported is { } rep)
                Row("conditions", $"battery {(rep.Conditions.Battery is { } b ? b.ToString("P0") : "mains")}{(rep.Conditions.Charging ? " charging" : "")}, network {rep.Conditions.NetworkType}, free storage {Compatibility.Bytes(rep.Conditions.FreeStorageBytes)}");
            AnsiConsole.Write(grid);
            return 0;
        }));

        var uses = new Option<int>("--uses") { Description = "how many devices may enroll with it", DefaultValueFactory = _ => 1 };
        var hours = new Option<int>("--hours") { Description = "hours until it expires", DefaultValueFactory = _ => 24 };
        var tokenTags = new Option<string[]>("--tag") { Description = "tags every device enrolled with it gets", AllowMultipleArgumentsPerToken = true };
        var token = new Command("token", "Create an enrollment token for devices (shown once)");
        token.Options.Add(project);
        token.Options.Add(uses);
        token.Options.Add(hours);
        token.Options.Add(tokenTags);
        token.SetAction(r => CliErrors.Guard(async () =>
        {
            var cfg = CliConfig.Load();
            using var client = cfg.Client();
            var t = await client.CreateEnrollmentTokenAsync(ProjectOf(r, project, cfg), r.GetValue(uses), r.GetValue(tokenTags), r.GetValue(hours));
            Console.WriteLine($"enrollment token: {t.Token}");
            Console.WriteLine($"project {t.Project}, {t.Uses} uses, expires {t.ExpiresAt:u}; enroll with: tinyops agent --server {cfg.Url} --token {t.Token} --state DIR --name NAME");
            return 0;
        }));

        var cmd = new Command("device", "Devices of the fleet");
        cmd.Subcommands.Add(list);
        cmd.Subcommands.Add(show);
        cmd.Subcommands.Add(token);
        return cmd;
    }

    private static Command Deploy()
    {
        var project = ProjectOption();
        var model = new Argument<string>("model") { Description = "model name" };
        var version = new Option<string>("--version", "-v") { Description = "version or alias", DefaultValueFactory = _ => "production" };
        var selector = new Option<string[]>("--tag", "-t") { Description = "devices must carry all these tags", AllowMultipleArgumentsPerToken = true };
        var canary = new Option<int>("--canary") { Description = "percent of devices in the canary stage", DefaultValueFactory = _ => 10 };
        var manual = new Option<bool>("--manual-promote") { Description = "wait for 'rollout promote' after the canary stage" };
        var budget = new Option<string[]>("--latency-budget") { Description = "CLASS=TIME: largest estimated latency on a device class (e.g. cortex-m4=20ms, phone=500us, *=50ms)", AllowMultipleArgumentsPerToken = true };
        var cmd = new Command("deploy", "Roll a model version out to the devices matching the tags, in stages");
        cmd.Arguments.Add(model);
        cmd.Options.Add(project);
        cmd.Options.Add(version);
        cmd.Options.Add(selector);
        cmd.Options.Add(canary);
        cmd.Options.Add(manual);
        cmd.Options.Add(budget);
        cmd.SetAction(r => CliErrors.Guard(async () =>
        {
            var cfg = CliConfig.Load();
            using var client = cfg.Client();
            var d = await client.DeployAsync(ProjectOf(r, project, cfg), new CreateDeploymentRequest
            {
                Model = r.GetValue(model)!,
                Version = r.GetValue(version)!,
                Selector = r.GetValue(selector) ?? [],
                CanaryPercent = r.GetValue(canary),
                AutoPromote = !r.GetValue(manual),
                LatencyBudgetsUs = ParseBudgets(r.GetValue(budget) ?? []),
            });
            Console.WriteLine($"deployment {d.Id}: {d.Model} v{d.Version} to {d.Targeted} devices ({d.Incompatible} incompatible), status {d.Status}");
            foreach (var g in d.Targets.GroupBy(t => (t.DeviceClass, t.VariantId)))
                Console.WriteLine($"  {g.Count()} {g.Key.DeviceClass}: {(g.Key.VariantId is null ? "none" : g.Key.VariantId)}: {g.First().Reason}");
            Console.WriteLine($"follow it with: tinyops rollout status {d.Id}");
            return 0;
        }));
        return cmd;
    }

    /// <summary>"cortex-m4=20ms", "phone=500us", "*=0.05s" (a bare number is microseconds).</summary>
    internal static Dictionary<string, double> ParseBudgets(IEnumerable<string> items)
    {
        var budgets = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var item in items)
        {
            int eq = item.IndexOf('=');
            if (eq <= 0) throw new ArgumentException($"--latency-budget '{item}' is not CLASS=TIME, e.g. cortex-m4=20ms");
            string value = item[(eq + 1)..].Trim();
            (string number, double scale) = value.EndsWith("ms", StringComparison.Ordinal) ? (value[..^2], 1000.0)
                : value.EndsWith("us", StringComparison.Ordinal) ? (value[..^2], 1.0)
                : value.EndsWith('s') ? (value[..^1], 1e6)
                : (value, 1.0);
            if (!double.TryParse(number, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double x) || !(x > 0))
                throw new ArgumentException($"--latency-budget '{item}': '{value}' is not a positive time such as 20ms, 500us or 0.5s");
            budgets[item[..eq].Trim()] = x * scale;
        }
        return budgets;
    }

    private static Command Rollout()
    {
        var project = ProjectOption();
        var id = new Argument<string?>("deployment") { Description = "deployment id (default: list all)", Arity = ArgumentArity.ZeroOrOne };
        var watch = new Option<bool>("--watch", "-w") { Description = "follow progress until the rollout settles" };
        var status = new Command("status", "Show deployments, or one deployment's progress and targets");
        status.Arguments.Add(id);
        status.Options.Add(project);
        status.Options.Add(watch);
        status.SetAction(r => CliErrors.Guard(async () =>
        {
            var cfg = CliConfig.Load();
            using var client = cfg.Client();
            string p = ProjectOf(r, project, cfg);
            string? which = r.GetValue(id);
            if (which is null)
            {
                var t = new Table().AddColumns("id", "model", "status", "stage", "installed", "failed", "incompatible", "targeted");
                foreach (var d in await client.DeploymentsAsync(p))
                    t.AddRow(d.Id, $"{d.Model} v{d.Version}", d.Status, d.Stage.ToString(), d.Installed.ToString(), d.Failed.ToString(), d.Incompatible.ToString(), d.Targeted.ToString());
                AnsiConsole.Write(t);
                return 0;
            }
            var dep = await client.DeploymentAsync(p, which);
            if (r.GetValue(watch))
            {
                await AnsiConsole.Progress().StartAsync(async ctx =>
                {
                    var task = ctx.AddTask($"{dep.Model} v{dep.Version}", maxValue: Math.Max(1, dep.Targeted - dep.Incompatible));
                    while (dep.Status is "canary" or "rolling")
                    {
                        task.Value = dep.Installed + dep.Failed;
                        task.Description = $"{dep.Model} v{dep.Version} [{dep.Status}]";
                        await Task.Delay(1000);
                        dep = await client.DeploymentAsync(p, which);
                    }
                    task.Value = task.MaxValue;
                });
            }
            Console.WriteLine($"deployment {dep.Id}: {dep.Model} v{dep.Version}, status {dep.Status}, stage {dep.Stage}, canary {dep.CanaryPercent}%");
            Console.WriteLine($"installed {dep.Installed}, failed {dep.Failed}, incompatible {dep.Incompatible}, assigned {dep.Assigned}, targeted {dep.Targeted}");
            var states = new Table().AddColumns("state", "reason", "devices");
            foreach (var g in dep.Targets.GroupBy(t => (t.State, Reason: t.State == "incompatible" || t.State == "failed" ? t.Reason : "")).OrderByDescending(g => g.Count()))
                states.AddRow(g.Key.State, Markup.Escape(g.Key.Reason), g.Count().ToString());
            AnsiConsole.Write(states);
            return 0;
        }));

        var cmd = new Command("rollout", "Follow and steer deployments");
        cmd.Subcommands.Add(status);
        foreach (var action in new[] { "pause", "resume", "abort", "promote" })
        {
            var a = new Argument<string>("deployment") { Description = "deployment id" };
            var sub = new Command(action, $"{char.ToUpperInvariant(action[0])}{action[1..]} a deployment");
            sub.Arguments.Add(a);
            sub.Options.Add(project);
            sub.SetAction(r => CliErrors.Guard(async () =>
            {
                var cfg = CliConfig.Load();
                using var client = cfg.Client();
                await client.DeploymentActionAsync(ProjectOf(r, project, cfg), r.GetValue(a)!, action);
                Console.WriteLine($"{action}: done");
                return 0;
            }));
            cmd.Subcommands.Add(sub);
        }
        return cmd;
    }

    private static Command Audit()
    {
        var project = new Option<string?>("--project", "-p") { Description = "only this project" };
        var limit = new Option<int>("--limit") { Description = "entries", DefaultValueFactory = _ => 50 };
        var cmd = new Command("audit", "Show who changed what, newest first");
        cmd.Options.Add(project);
        cmd.Options.Add(limit);
        cmd.SetAction(r => CliErrors.Guard(async () =>
        {
            var cfg = CliConfig.Load();
            using var client = cfg.Client();
            var t = new Table().AddColumns("when", "who", "action", "target", "project", "detail");
            foreach (var e in await client.AuditAsync(r.GetValue(project), r.GetValue(limit)))
                t.AddRow(e.At.ToString("u"), Markup.Escape(e.Actor), e.Action, Markup.Escape(e.Target), Markup.Escape(e.Project ?? ""), Markup.Escape(e.Detail));
            AnsiConsole.Write(t);
            return 0;
        }));
        return cmd;
    }
}
