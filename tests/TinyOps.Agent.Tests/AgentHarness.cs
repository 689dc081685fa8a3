using TinyOps.Protocol.Devices;

namespace TinyOps.Agent.Tests;

/// <summary>Temp state directories and agents wired to a fake control plane.</summary>
public sealed class AgentHarness : IAsyncDisposable
{
    private readonly List<DeviceAgent> _agents = [];
    private readonly List<string> _dirs = [];

    private AgentHarness(FakeControlPlane server) => Server = server;

    public FakeControlPlane Server { get; }
    public List<string> Log { get; } = [];

    public static async Task<AgentHarness> StartAsync() => new(await FakeControlPlane.StartAsync());

    public string NewStateDir()
    {
        string dir = Path.Combine(Path.GetTempPath(), "tinyops-agent-" + Guid.NewGuid().ToString("N")[..12]);
        _dirs.Add(dir);
        return dir;
    }

    public DeviceAgent Agent(string stateDir, string? token = null, Func<AgentOptions, AgentOptions>? configure = null)
    {
        if (token is null)
        {
            token = "enroll-" + Guid.NewGuid().ToString("N")[..8];
            Server.EnrollmentTokens.Add(token);
        }
        var options = new AgentOptions
        {
            ServerUrl = new Uri(Server.Url),
            StateDirectory = stateDir,
            EnrollmentToken = token,
            DeviceName = "device-" + Path.GetFileName(stateDir),
            Capabilities = AgentOptions.DefaultCapabilities("test") with { RamBytes = 64 << 20, FlashBytes = 16 << 20 },
            Tags = ["test"],
            Log = line => { lock (Log) Log.Add(line); },
            DownloadChunkBytes = 16 * 1024,
        };
        if (configure is not null) options = configure(options);
        var agent = new DeviceAgent(options);
        _agents.Add(agent);
        return agent;
    }

    /// <summary>An enrolled agent with <paramref name="model"/> installed (deployment "d-setup").</summary>
    public async Task<DeviceAgent> InstalledAsync(string stateDir, byte[] model, string name, string version)
    {
        var agent = Agent(stateDir);
        Server.Assign("d-" + name + "-" + version, Server.Publish(model, name, version));
        await agent.SyncOnceAsync();
        Assert.Equal(InstallPhase.Installed, agent.Reported().Phase);
        return agent;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var a in _agents) await a.DisposeAsync();
        await Server.DisposeAsync();
        foreach (var d in _dirs)
        {
            try { Directory.Delete(d, true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }
}
