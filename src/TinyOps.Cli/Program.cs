using System.CommandLine;
using TinyOps.Cli.Commands;

var root = new RootCommand("TinyOps: run, inspect and ship ML models to fleets of small devices");
root.Subcommands.Add(OnnxCommands.Create());
root.Subcommands.Add(ModelCommands.Create());
root.Subcommands.Add(RunCommand.Create());
root.Subcommands.Add(EvalCommand.Create());
root.Subcommands.Add(DemoCommand.Create());
return root.Parse(args).Invoke();
