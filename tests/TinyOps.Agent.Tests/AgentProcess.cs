using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using TinyOps.Agent.Install;

namespace TinyOps.Agent.Tests;

/// <summary>`dotnet tinyops.dll agent ...` in a child process (the CLI built from src/TinyOps.Cli).</summary>
public sealed class AgentProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private AgentProcess(Process process) => _process = process;

    public string Output { get { lock (_output) return _output.ToString(); } }
    public bool HasExited => _process.HasExited;
    public int ExitCode => _process.ExitCode;

    public static string TinyopsDll
    {
        get
        {
            var bin = new DirectoryInfo(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory)); // tests/TinyOps.Agent.Tests/bin/<config>/<tfm>
            string tfm = bin.Name, config = bin.Parent!.Name;
            var dir = bin;
            while (dir is not null && !Directory.Exists(Path.Combine(dir.FullName, "src", "TinyOps.Cli"))) dir = dir.Parent;
            if (dir is null) throw new InvalidOperationException($"no src/TinyOps.Cli above {AppContext.BaseDirectory}");
            string dll = Path.Combine(dir.FullName, "src", "TinyOps.Cli", "bin", config, tfm, "tinyops.dll");
            if (!File.Exists(dll)) throw new InvalidOperationException($"{dll} is missing; build src/TinyOps.Cli (the test project builds it)");
            return dll;
        }
    }

    public static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    public static AgentProcess Start(string server, string stateDir, int port, InstallStep? crashAt)
    {
        var psi = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { TinyopsDll, "agent", "--server", server, "--state", stateDir, "--name", "crash-test", "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture) })
            psi.ArgumentList.Add(a);
        psi.Environment.Remove(CrashPoints.Variable);
        if (crashAt is { } step) psi.Environment[CrashPoints.Variable] = CrashPoints.Name(step);
        psi.Environment["DOTNET_DbgEnableMiniDump"] = "0";
        psi.Environment["DOTNET_EnableCrashReport"] = "0";
        var p = new Process { StartInfo = psi };
        var ap = new AgentProcess(p);
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (ap._output) ap._output.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (ap._output) ap._output.AppendLine("! " + e.Data); };
        p.Start();
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return ap;
    }

    public async Task<bool> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException)
        {
        }
        _process.Dispose();
    }
}
