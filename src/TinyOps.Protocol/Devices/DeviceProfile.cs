namespace TinyOps.Protocol.Devices;

/// <summary>
/// A device class: memory, storage, effective compute rate and links. The engine runs on this machine; a profile
/// turns its measured cost into the device's time by the ratio of effective multiply-accumulate rates
/// (<see cref="LatencyScale"/>, <see cref="EstimateLatencyMicros"/>: the one place that estimate is made, used by the
/// simulator's devices and by the server's variant evaluation). Shared by the simulator and the control plane.
/// </summary>
public sealed record DeviceProfile(
    string DeviceClass,
    string Architecture,
    long RamBytes,
    long FlashBytes,
    double EffectiveMacsPerSecond,
    string Network,
    double UplinkMbps,
    bool BatteryPowered,
    string Source)
{
    /// <summary>
    /// Cortex-M4F at 120 MHz. MLPerf Tiny v0.5 reference: anomaly detection (AD01, a fully connected autoencoder
    /// 640-128-128-128-128-8-128-128-128-128-640, 264,192 MACs) runs in 10.05 ms: about 26.3 million MACs/s.
    /// </summary>
    public static readonly DeviceProfile CortexM4 = new("cortex-m4", "armv7e-m", 256 * 1024, 1024 * 1024, 264_192 / 0.01005, "lte", 5.9, true,
        "MLPerf Tiny reference latency, Cortex-M4F @120 MHz: AD01 10.05 ms (KWS 181.9 ms); uplink LTE 5.9 Mbps (Neurosurgeon)");

    /// <summary>A Cortex-M0+ class sensor node: 16 KiB of RAM (assumed), too small for most CNNs; same rate scaled by clock (48 MHz, no FPU: assumed 1/8).</summary>
    public static readonly DeviceProfile CortexM0 = new("cortex-m0", "armv6-m", 16 * 1024, 256 * 1024, 264_192 / 0.01005 / 8, "3g", 1.1, true,
        "assumed: 1/8 of the Cortex-M4F rate (48 MHz, no FPU); uplink 3G 1.1 Mbps (Neurosurgeon)");

    /// <summary>A phone-class SoC (one big core): assumed 2 GMAC/s effective for small fp32 CNNs.</summary>
    public static readonly DeviceProfile Phone = new("phone", "arm64", 4L << 30, 64L << 30, 2e9, "wifi", 18.9, true,
        "assumed 2 GMAC/s on one core; uplink Wi-Fi 18.9 Mbps (Neurosurgeon)");

    /// <summary>A gateway (Raspberry Pi 4 class, Cortex-A72): assumed 1 GMAC/s effective on one core.</summary>
    public static readonly DeviceProfile Gateway = new("gateway", "arm64", 2L << 30, 16L << 30, 1e9, "ethernet", 100, false,
        "assumed 1 GMAC/s on one Cortex-A72 core; wired uplink");

    public static IReadOnlyList<DeviceProfile> All { get; } = [CortexM4, CortexM0, Phone, Gateway];

    /// <summary>This machine's effective rate on a model: its multiply-accumulates over its measured latency.</summary>
    public static double HostMacsPerSecond(long macs, double latencyMicros) =>
        macs > 0 && latencyMicros > 0 && double.IsFinite(latencyMicros) ? macs / (latencyMicros * 1e-6) : throw new ArgumentException($"cannot derive a MAC rate from {macs} MACs in {latencyMicros} us");

    /// <summary>How much longer a run takes on this class than here, where the engine runs at <paramref name="hostMacsPerSecond"/>.</summary>
    public double LatencyScale(double hostMacsPerSecond) => hostMacsPerSecond / EffectiveMacsPerSecond;

    /// <summary>A latency measured here (µs) scaled to this class.</summary>
    public double EstimateLatencyMicros(double measuredMicros, double hostMacsPerSecond) => measuredMicros * LatencyScale(hostMacsPerSecond);

    public static DeviceProfile? TryFind(string deviceClass) => All.FirstOrDefault(p => p.DeviceClass == deviceClass);

    public static DeviceProfile Find(string deviceClass) =>
        TryFind(deviceClass) ?? throw new ArgumentException($"unknown device class '{deviceClass}'; known: {string.Join(", ", All.Select(p => p.DeviceClass))}");
}
