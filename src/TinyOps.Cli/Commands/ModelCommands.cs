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

        var cmd = new Command("model", "Model tools");
        cmd.Subcommands.Add(inspect);
        cmd.Subcommands.Add(ops);
        return cmd;
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
