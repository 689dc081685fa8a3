using System.CommandLine;
using Spectre.Console;
using TinyOps.Cli.Commands;

// Piped output has no terminal width; keep tables readable instead of folding them at 80 columns.
if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = 200;

var root = new RootCommand("TinyOps: run, inspect and ship ML models to fleets of small devices");
root.Subcommands.Add(ServerCommand.Create());
foreach (var c in ControlPlaneCommands.Create()) root.Subcommands.Add(c);
root.Subcommands.Add(OnnxCommands.Create());
root.Subcommands.Add(ModelCommands.Create());
root.Subcommands.Add(RunCommand.Create());
root.Subcommands.Add(EvalCommand.Create());
root.Subcommands.Add(BenchCommand.Create());
root.Subcommands.Add(OptimizeCommand.Create());
foreach (var c in OptimizationCommands.Create()) root.Subcommands.Add(c);
root.Subcommands.Add(DemoCommand.Create());
root.Subcommands.Add(AgentCommand.Create());
return root.Parse(args).Invoke();
