using System.CommandLine;
using TinyOps.Server.Hosting;

namespace TinyOps.Cli.Commands;

/// <summary>`tinyops server [--urls URL] [--data DIR] [--postgres CS]`: runs the control plane until Ctrl+C.</summary>
internal static class ServerCommand
{
    public static Command Create()
    {
        var urls = new Option<string>("--urls") { Description = "where to listen", DefaultValueFactory = _ => "http://127.0.0.1:8080" };
        var data = new Option<string>("--data") { Description = "data directory (SQLite file, blobs)", DefaultValueFactory = _ => "tinyops-data" };
        var pg = new Option<string?>("--postgres") { Description = "PostgreSQL connection string (default: SQLite in the data directory); also $TINYOPS_POSTGRES" };
        var cmd = new Command("server", "Run the TinyOps control plane (REST API and dashboard)");
        cmd.Options.Add(urls);
        cmd.Options.Add(data);
        cmd.Options.Add(pg);
        cmd.SetAction(r => CliErrors.Guard(async () =>
        {
            var options = new ServerOptions
            {
                Urls = r.GetValue(urls)!,
                DataDirectory = Path.GetFullPath(r.GetValue(data)!),
                PostgresConnectionString = r.GetValue(pg) ?? Environment.GetEnvironmentVariable("TINYOPS_POSTGRES"),
            };
            using var stop = new CancellationTokenSource();
            Console.CancelKeyPress += (_, e) => { e.Cancel = true; stop.Cancel(); };
            await using var server = await TinyOpsServer.StartAsync(options, stop.Token);
            // SIGTERM (systemd, docker stop) stops the host's lifetime: stop here too, so running jobs are requeued cleanly.
            server.App.Lifetime.ApplicationStopping.Register(stop.Cancel);
            Console.WriteLine($"TinyOps control plane listening on {server.BaseUrl} (data: {options.DataDirectory}, store: {server.Database.Kind})");
            Console.WriteLine($"dashboard: {server.BaseUrl}/   API: {server.BaseUrl}/api/v1   OpenAPI: {server.BaseUrl}/openapi/v1.json");
            try { await Task.Delay(Timeout.Infinite, stop.Token); } catch (OperationCanceledException) { }
            Console.WriteLine("stopping");
            return 0;
        }));
        return cmd;
    }
}
