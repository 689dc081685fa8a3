using System.Runtime.InteropServices;
using TinyOps.Agent.Telemetry;
using TinyOps.Engine;
using TinyOps.Engine.Kernels;
using TinyOps.Protocol.Devices;

namespace TinyOps.Agent;

/// <summary>How a <see cref="DeviceAgent"/> runs.</summary>
public sealed record AgentOptions
{
    /// <summary>The control plane's base URL, e.g. http://127.0.0.1:5000.</summary>
    public required Uri ServerUrl { get; init; }

    /// <summary>The agent's state directory (identity, trusted keys, slots, downloads, telemetry).</summary>
    public required string StateDirectory { get; init; }

    /// <summary>The one-time enrollment token; needed only until the device is enrolled.</summary>
    public string? EnrollmentToken { get; init; }

    public string DeviceName { get; init; } = Environment.MachineName;

    public DeviceCapabilities Capabilities { get; init; } = DefaultCapabilities();

    public IReadOnlyList<string> Tags { get; init; } = [];

    /// <summary>Bounds applied to the server's poll interval.</summary>
    public TimeSpan MinPollInterval { get; init; } = TimeSpan.FromSeconds(1);
    public TimeSpan MaxPollInterval { get; init; } = TimeSpan.FromHours(1);

    /// <summary>Backoff after a failed sync: starts here and doubles up to <see cref="MaxBackoff"/>.</summary>
    public TimeSpan InitialBackoff { get; init; } = TimeSpan.FromSeconds(1);
    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>Relative jitter applied to every wait (0.2: plus or minus 20%).</summary>
    public double Jitter { get; init; } = 0.2;

    /// <summary>An HttpClient to use (the agent does not dispose it); otherwise one is created on <see cref="HttpHandler"/> or a default handler.</summary>
    public HttpClient? HttpClient { get; init; }
    public HttpMessageHandler? HttpHandler { get; init; }

    public TimeProvider Clock { get; init; } = TimeProvider.System;

    /// <summary>Receives log lines; null for silence.</summary>
    public Action<string>? Log { get; init; }

    /// <summary>Loopback inference endpoint port: null for none, 0 for any free port.</summary>
    public int? InferencePort { get; init; }

    /// <summary>DeviceLatencyUs = LatencyUs * this (to simulate slower device classes on this machine).</summary>
    public double LatencyScale { get; init; } = 1.0;

    /// <summary>Reported with every sync; null reports free storage of the state directory only.</summary>
    public Func<DeviceConditions>? Conditions { get; init; }

    public TelemetryBufferOptions Telemetry { get; init; } = new();

    /// <summary>Records per inference are buffered only when true.</summary>
    public bool RecordTelemetry { get; init; } = true;

    /// <summary>Download chunk size (also the granularity of resume on disk).</summary>
    public int DownloadChunkBytes { get; init; } = 64 * 1024;

    /// <summary>How many times the same manifest may fail verification or its health check before the agent stops retrying it.</summary>
    public int MaxInstallAttempts { get; init; } = 3;

    /// <summary>A seed for jitter (tests); null for a random one.</summary>
    public int? RandomSeed { get; init; }

    /// <summary>This machine as a device: its architecture, memory, the engine's version and operator set.</summary>
    public static DeviceCapabilities DefaultCapabilities(string deviceClass = "host") => new()
    {
        DeviceClass = deviceClass,
        Architecture = RuntimeInformation.ProcessArchitecture switch
        {
            Architecture.X64 => "x86-64",
            Architecture.Arm64 => "arm64",
            Architecture.Arm => "armv7",
            var a => a.ToString().ToLowerInvariant(),
        },
        RamBytes = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes,
        FlashBytes = 0,
        RuntimeVersion = EngineInfo.Version,
        Operators = KernelRegistry.Default.Operators.Where(o => o.Domain.Length == 0 || o.Domain == "ai.onnx").Select(o => o.OpType).Distinct().ToList(),
        Accelerators = [],
    };
}
