namespace TinyOps.Protocol.Devices;

/// <summary>What a device can do; reported at enrollment and whenever it changes.</summary>
public sealed record DeviceCapabilities
{
    /// <summary>A device class name from the fleet's profiles, e.g. "cortex-m4", "phone", "gateway".</summary>
    public string DeviceClass { get; init; } = "";
    /// <summary>CPU architecture, e.g. "armv7e-m", "arm64", "x86-64".</summary>
    public string Architecture { get; init; } = "";
    public long RamBytes { get; init; }
    public long FlashBytes { get; init; }
    /// <summary>The TinyOps engine version the device runs.</summary>
    public string RuntimeVersion { get; init; } = "";
    /// <summary>ONNX operator types the device's runtime build supports (ai.onnx domain).</summary>
    public IReadOnlyList<string> Operators { get; init; } = [];
    public IReadOnlyList<string> Accelerators { get; init; } = [];
}
