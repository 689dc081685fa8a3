using System.CommandLine;
using Spectre.Console;
using TinyOps.Engine.Kernels;
using TinyOps.Engine.Profiling;
using TinyOps.Engine.Runtime;

namespace TinyOps.Cli.Commands;

/// <summary>`tinyops model inspect MODEL`: operators, parameters, MACs, activation bytes and planned peak memory.</summary>
internal static class ModelCommands
{
    public static Command Create()
    {
        var model = new Argument<string>("model") { Description = "an ONNX model file" };
        var batch = new Option<int>("--batch") { Description = "batch size bound to symbolic dimensions", DefaultValueFactory = _ => 1 };
        var inspect = new Command("inspect", "Show a model's inputs, outputs, operators, per-node cost and planned peak memory");
        inspect.Arguments.Add(model);
        inspect.Options.Add(batch);
        inspect.SetAction(r => CliErrors.Guard(() => Inspect(r.GetValue(model)!, r.GetValue(batch))));

        var ops = new Command("operators", "List the operators this build supports");
        ops.SetAction(_ =>
        {
            foreach (var (domain, op) in KernelRegistry.Default.Operators)
                Console.WriteLine(domain.Length == 0 ? op : $"{domain}:{op}");
            return 0;
        });

        var cmd = new Command("model", "Models: inspect files locally, push to and read from the registry");
        cmd.Subcommands.Add(inspect);
        cmd.Subcommands.Add(ops);
        foreach (var c in RegistryCommands()) cmd.Subcommands.Add(c);
        foreach (var c in OptimizationCommands.ModelSubcommands()) cmd.Subcommands.Add(c);
        return cmd;
    }

    private static IEnumerable<Command> RegistryCommands()
    {
        var project = ControlPlaneCommands.ProjectOption();
        var file = new Argument<string>("file") { Description = "an ONNX model file" };
        var name = new Option<string>("--name", "-n") { Description = "model name (default: the file name)" };
        var version = new Option<string?>("--version", "-v") { Description = "version (default: the next number)" };
        var alias = new Option<string?>("--alias", "-a") { Description = "point this alias (e.g. production) at the new version" };
        var notes = new Option<string?>("--notes") { Description = "release notes" };
        var push = new Command("push", "Upload a model file as a new version; the registry validates it and extracts its metadata");
        push.Arguments.Add(file);
        push.Options.Add(project);
        push.Options.Add(name);
        push.Options.Add(version);
        push.Options.Add(alias);
        push.Options.Add(notes);
        push.SetAction(r => CliErrors.Guard(async () =>
        {
            var cfg = Api.CliConfig.Load();
            using var client = cfg.Client();
            string path = r.GetValue(file)!;
            var bytes = await File.ReadAllBytesAsync(path);
            string modelName = r.GetValue(name) ?? Path.GetFileNameWithoutExtension(path);
            var v = await AnsiConsole.Status().StartAsync($"uploading {bytes.Length:N0} bytes", _ =>
                client.PushVersionAsync(ControlPlaneCommands.ProjectOf(r, project, cfg), modelName, bytes, r.GetValue(version), r.GetValue(alias), r.GetValue(notes)));
            var b = v.Variants[0];
            Console.WriteLine($"{v.Model} version {v.Version}: variant {b.Id}, sha256 {b.ArtifactSha256[..16]}..., {b.Metadata.Parameters:N0} parameters, {b.Metadata.Macs:N0} MACs, planned peak {Server.Fleet.Compatibility.Bytes(b.Metadata.PlannedPeakBytes)}");
            foreach (var j in await client.JobsAsync(v.Project, v.Model, v.Version))
                Console.WriteLine($"{j.Kind} job {j.Id} {j.State}: {j.Message}; follow it with: tinyops jobs --watch");
            return 0;
        }));
        yield return push;

        var list = new Command("list", "List the registry's models");
        list.Options.Add(project);
        list.SetAction(r => CliErrors.Guard(async () =>
        {
            var cfg = Api.CliConfig.Load();
            using var client = cfg.Client();
            var t = new Table().AddColumns("model", "versions", "aliases", "created");
            foreach (var m in await client.ModelsAsync(ControlPlaneCommands.ProjectOf(r, project, cfg)))
                t.AddRow(Markup.Escape(m.Name), m.VersionCount.ToString(), Markup.Escape(string.Join(", ", m.Aliases.Select(a => $"{a.Key}->{a.Value}"))), m.CreatedAt.ToString("u"));
            AnsiConsole.Write(t);
            return 0;
        }));
        yield return list;

        var modelArg = new Argument<string>("model") { Description = "model name" };
        var show = new Command("show", "Show a model's versions and variants with their lineage and metrics");
        show.Arguments.Add(modelArg);
        show.Options.Add(project);
        show.SetAction(r => CliErrors.Guard(async () =>
        {
            var cfg = Api.CliConfig.Load();
            using var client = cfg.Client();
            string p = ControlPlaneCommands.ProjectOf(r, project, cfg);
            var m = await client.ModelAsync(p, r.GetValue(modelArg)!);
            Console.WriteLine($"{m.Name}: {m.VersionCount} versions; aliases: {string.Join(", ", m.Aliases.Select(a => $"{a.Key} -> {a.Value}"))}");
            foreach (var v in await client.VersionsAsync(p, m.Name))
            {
                var tree = new Tree($"version {Markup.Escape(v.Version)} [grey]({v.CreatedAt:u}, {Markup.Escape(v.CreatedBy)})[/]");
                var nodes = new Dictionary<string, TreeNode>();
                foreach (var x in v.Variants.OrderBy(x => x.CreatedAt))
                {
                    string label = Markup.Escape($"{x.Name} {x.Id} [{x.Recipe}] {x.Status} {Server.Fleet.Compatibility.Bytes(x.ArtifactSize)}, peak {Server.Fleet.Compatibility.Bytes(x.Metadata.PlannedPeakBytes)}"
                        + string.Concat(x.Metrics.Select(kv => $" {kv.Key}={kv.Value:G4}")));
                    nodes[x.Id] = x.ParentId is not null && nodes.TryGetValue(x.ParentId, out var parent) ? parent.AddNode(label) : tree.AddNode(label);
                }
                AnsiConsole.Write(tree);
            }
            return 0;
        }));
        yield return show;
    }

    private static int Inspect(string path, int batch)
    {
        if (batch < 1) throw new ArgumentException("--batch must be at least 1");
        var session = InferenceSession.Load(path);
        var m = session.Model;
        var console = AnsiConsole.Console;
        console.WriteLine($"model: {path}");
        console.WriteLine($"producer: {m.ProducerName} {m.ProducerVersion}; IR version {m.IrVersion}; opsets: {string.Join(", ", m.Opsets.Select(o => $"{(o.Key.Length == 0 ? "ai.onnx" : o.Key)} {o.Value}"))}");
        foreach (var i in session.Inputs) console.WriteLine($"input:  {i}");
        foreach (var o in session.Outputs) console.WriteLine($"output: {o}");
        var p = ModelProfiler.Profile(session, batch);
        var table = new Table().AddColumns("node", "op", "output shape", "MACs", "params", "activation bytes");
        foreach (var n in p.Nodes)
            table.AddRow(Markup.Escape(n.Node), n.OpType + (n.Folded ? " (folded)" : n.Dynamic ? " (run-time shape)" : ""), Markup.Escape(n.OutputShapes), n.Macs.ToString("N0"), n.Parameters.ToString("N0"), n.ActivationBytes.ToString("N0"));
        console.Write(table);
        var counts = p.Nodes.GroupBy(n => n.OpType).OrderByDescending(g => g.Count()).Select(g => $"{g.Key} x{g.Count()}");
        console.WriteLine($"operators: {string.Join(", ", counts)}");
        console.WriteLine($"parameters: {p.TotalParameters:N0} ({p.WeightBytes:N0} bytes of weights)");
        console.WriteLine($"MACs at batch {batch}: {p.TotalMacs:N0}");
        console.WriteLine($"largest live activations: {p.LiveLowerBound:N0} bytes");
        console.WriteLine($"planned peak memory: {p.PlannedArenaBytes:N0} bytes ({p.PlannerOverhead:P1} above the live bound)");
        return 0;
    }
}
