using System.CommandLine;
using System.Globalization;
using TinyOps.Agent;

namespace TinyOps.Cli.Commands;

/// <summary>`tinyops agent`: runs the device agent daemon until Ctrl+C.</summary>
internal static class AgentCommand
{
    public static Command Create()
    {
        var server = new Option<string>("--server") { Description = "the control plane's URL, e.g. http://127.0.0.1:5000", Required = true };
        var state = new Option<string>("--state") { Description = "the agent's state directory (identity, keys, model slots, telemetry)", Required = true };
        var token = new Option<string?>("--token") { Description = "one-time enrollment token (needed only for the first start)" };
        var name = new Option<string?>("--name") { Description = "the device's name (default: the host name)" };
        var deviceClass = new Option<string>("--class") { Description = "the device class reported in the capabilities", DefaultValueFactory = _ => "host" };
        var ram = new Option<long?>("--ram") { Description = "RAM bytes to report (default: what this process may use)" };
        var flash = new Option<long?>("--flash") { Description = "flash/storage bytes to report" };
        var tags = new Option<string[]>("--tag") { Description = "a tag for the device (repeatable)", AllowMultipleArgumentsPerToken = true };
        var port = new Option<int?>("--port") { Description = "loopback inference endpoint port on 127.0.0.1 (0: any free port; default: none)" };
        var scale = new Option<double>("--latency-scale") { Description = "device latency = measured latency * this (simulated device classes)", DefaultValueFactory = _ => 1.0 };
        var cmd = new Command("agent", "Run the TinyOps device agent: enroll, sync, install models, serve inference, upload telemetry");
        foreach (var o in new Option[] { server, state, token, name, deviceClass, ram, flash, tags, port, scale }) cmd.Options.Add(o);
        cmd.SetAction(async (r, ct) =>
        {
            try
            {
                var caps = AgentOptions.DefaultCapabilities(r.GetValue(deviceClass) ?? "host");
                if (r.GetValue(ram) is long ramBytes) caps = caps with { RamBytes = ramBytes };
                if (r.GetValue(flash) is long flashBytes) caps = caps with { FlashBytes = flashBytes };
                string url = r.GetValue(server)!;
                if (!Uri.TryCreate(url, UriKind.Absolute, out var serverUri) || (serverUri.Scheme != "http" && serverUri.Scheme != "https"))
                    throw new ArgumentException($"--server '{url}' is not an http(s) URL");
                var options = new AgentOptions
                {
                    ServerUrl = serverUri,
                    StateDirectory = r.GetValue(state)!,
                    EnrollmentToken = r.GetValue(token),
                    DeviceName = r.GetValue(name) ?? Environment.MachineName,
                    Capabilities = caps,
                    Tags = r.GetValue(tags) ?? [],
                    InferencePort = r.GetValue(port),
                    LatencyScale = r.GetValue(scale),
                    Log = line => Console.WriteLine($"{DateTimeOffset.Now.ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture)} {line}"),
                };
                await using var agent = new DeviceAgent(options);
                await agent.StartAsync(ct);
                if (agent.InferenceUrl is { } u) Console.WriteLine($"inference endpoint: {u} (POST /infer, GET /status)");
                await agent.RunAsync(ct);
                return 0;
            }
            catch (OperationCanceledException)
            {
                return 0;
            }
            catch (Exception e) when (e is AgentException or ArgumentException or IOException or UnauthorizedAccessException or System.Net.Sockets.SocketException)
            {
                // a null or out-of-range argument is the agent's own bug, not the user's: the whole exception, stack
                // included, so it can be traced (a crash-recovery test once saw only "Value cannot be null.")
                Console.Error.WriteLine(e is ArgumentNullException or ArgumentOutOfRangeException ? $"error: {e}" : $"error: {e.Message}");
                return 2;
            }
        });
        return cmd;
    }
}
