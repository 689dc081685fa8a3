using TinyOps.Agent;
using TinyOps.Engine;
using TinyOps.Engine.Kernels;
using TinyOps.Protocol.Devices;

namespace TinyOps.Simulator;

/// <summary>How many devices of which classes to simulate, and where they connect.</summary>
public sealed record FleetOptions
{
    public required Uri ServerUrl { get; init; }
    /// <summary>Each device keeps its state directory below this folder.</summary>
    public required string StateRoot { get; init; }
    /// <summary>A multi-use enrollment token for the project.</summary>
    public required string EnrollmentToken { get; init; }
    public required IReadOnlyList<(DeviceProfile Profile, int Count)> Devices { get; init; }
    public IReadOnlyList<string> Tags { get; init; } = [];
    /// <summary>This machine's effective multiply-accumulates per second on the workload (for scaling latency to each class).</summary>
    public double HostMacsPerSecond { get; init; } = 5e9;
    /// <summary>How many devices act at once.</summary>
    public int Parallelism { get; init; } = 16;
    public Action<string>? Log { get; init; }
}

/// <summary>One simulated device: a real <see cref="DeviceAgent"/> with a class profile.</summary>
public sealed record SimulatedDevice(DeviceProfile Profile, DeviceAgent Agent, string Name);

/// <summary>
/// A virtual fleet in one process: many real agents (their own keys, state directories, A/B slots, telemetry buffers)
/// talking to a real control plane over HTTP, each reporting its class's memory and scaling measured latency to it.
/// </summary>
public sealed class FleetSimulator : IAsyncDisposable
{
    private readonly HttpClient _http;

    private FleetSimulator(FleetOptions options, HttpClient http, List<SimulatedDevice> devices)
    {
        Options = options;
        _http = http;
        Devices = devices;
    }

    public FleetOptions Options { get; }
    public IReadOnlyList<SimulatedDevice> Devices { get; }

    /// <summary>Creates and enrolls every device; <paramref name="progress"/> gets the number enrolled so far.</summary>
    public static async Task<FleetSimulator> EnrollAsync(FleetOptions options, Action<int>? progress = null, CancellationToken ct = default)
    {
        var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = Math.Max(4, options.Parallelism) }) { Timeout = TimeSpan.FromMinutes(2) };
        var operators = KernelRegistry.Default.Operators.Where(o => o.Domain.Length == 0).Select(o => o.OpType).ToList();
        var devices = new List<SimulatedDevice>();
        int serial = 0;
        foreach (var (profile, count) in options.Devices)
        {
            for (int i = 0; i < count; i++)
            {
                string name = $"{profile.DeviceClass}-{++serial:D4}";
                var agent = new DeviceAgent(new AgentOptions
                {
                    ServerUrl = options.ServerUrl,
                    StateDirectory = Path.Combine(options.StateRoot, name),
                    EnrollmentToken = options.EnrollmentToken,
                    DeviceName = name,
                    Tags = [.. options.Tags, "class:" + profile.DeviceClass],
                    Capabilities = new DeviceCapabilities
                    {
                        DeviceClass = profile.DeviceClass,
                        Architecture = profile.Architecture,
                        RamBytes = profile.RamBytes,
                        FlashBytes = profile.FlashBytes,
                        RuntimeVersion = EngineInfo.Version,
                        Operators = operators,
                    },
                    Conditions = () => Conditions(profile, name),
                    HttpClient = http,
                    LatencyScale = profile.LatencyScale(options.HostMacsPerSecond),
                    InitialBackoff = TimeSpan.FromMilliseconds(200),
                    MaxBackoff = TimeSpan.FromSeconds(5),
                });
                devices.Add(new SimulatedDevice(profile, agent, name));
            }
        }
        var sim = new FleetSimulator(options, http, devices);
        int done = 0;
        await sim.ForEachAsync(async d =>
        {
            await d.Agent.EnrollAsync(ct);
            progress?.Invoke(Interlocked.Increment(ref done));
        }, ct);
        return sim;
    }

    /// <summary>One sync round for every device (report state, receive and install assignments).</summary>
    public async Task<int> SyncAllAsync(Action<int>? progress = null, CancellationToken ct = default)
    {
        int done = 0, failed = 0;
        await ForEachAsync(async d =>
        {
            try { await d.Agent.SyncOnceAsync(ct); }
            catch (Exception e) when (e is HttpRequestException or AgentException or TaskCanceledException)
            {
                Interlocked.Increment(ref failed);
                Options.Log?.Invoke($"{d.Name}: sync failed: {e.Message}");
            }
            progress?.Invoke(Interlocked.Increment(ref done));
        }, ct);
        return failed;
    }

    /// <summary>Runs <paramref name="perDevice"/> inferences on every device that has a model, on inputs from <paramref name="input"/>.</summary>
    public async Task<long> RunInferenceAsync(int perDevice, Func<int, float[]> input, CancellationToken ct = default)
    {
        long total = 0;
        await ForEachAsync(d =>
        {
            if (d.Agent.Status().Model is null) return Task.CompletedTask;
            for (int i = 0; i < perDevice; i++)
            {
                d.Agent.Infer(input(i));
                Interlocked.Increment(ref total);
            }
            return Task.CompletedTask;
        }, ct);
        return total;
    }

    /// <summary>Uploads every device's buffered telemetry; returns the records acknowledged.</summary>
    public async Task<long> UploadTelemetryAsync(CancellationToken ct = default)
    {
        long total = 0;
        await ForEachAsync(async d => Interlocked.Add(ref total, await d.Agent.UploadTelemetryAsync(ct)), ct);
        return total;
    }

    private static DeviceConditions Conditions(DeviceProfile profile, string name)
    {
        int h = name.GetHashCode(StringComparison.Ordinal) & 0x7fffffff;
        return new DeviceConditions
        {
            Battery = profile.BatteryPowered ? 0.2 + (h % 80) / 100.0 : null,
            Charging = profile.BatteryPowered && h % 3 == 0,
            NetworkType = profile.Network,
            FreeStorageBytes = profile.FlashBytes / 2,
        };
    }

    private async Task ForEachAsync(Func<SimulatedDevice, Task> action, CancellationToken ct)
    {
        using var gate = new SemaphoreSlim(Math.Max(1, Options.Parallelism));
        var tasks = Devices.Select(async d =>
        {
            await gate.WaitAsync(ct);
            try { await Task.Run(() => action(d), ct); }
            finally { gate.Release(); }
        }).ToList();
        await Task.WhenAll(tasks);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var d in Devices) await d.Agent.DisposeAsync();
        _http.Dispose();
    }
}
