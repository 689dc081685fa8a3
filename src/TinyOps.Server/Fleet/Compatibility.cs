using TinyOps.Protocol.Devices;
using TinyOps.Protocol.Management;

namespace TinyOps.Server.Fleet;

/// <summary>
/// Whether a variant can run on a device: every operator supported by its runtime, the planned peak memory within
/// its RAM, the artifact within its free storage (or its flash when storage is not reported). Reasons say what
/// does not fit and by how much.
/// </summary>
public static class Compatibility
{
    public static List<string> Check(DeviceCapabilities device, ReportedState? reported, VariantDto variant)
    {
        var reasons = new List<string>();
        if (device.Operators.Count > 0)
        {
            var supported = new HashSet<string>(device.Operators, StringComparer.Ordinal);
            var missing = variant.Metadata.Operators.Where(op => !supported.Contains(op)).ToList();
            if (missing.Count > 0)
                reasons.Add($"operators not supported by the device runtime: {string.Join(", ", missing)}");
        }
        if (device.RamBytes > 0 && variant.Metadata.PlannedPeakBytes > device.RamBytes)
            reasons.Add($"planned peak memory {Bytes(variant.Metadata.PlannedPeakBytes)} exceeds the device's RAM {Bytes(device.RamBytes)}");
        long storage = reported?.Conditions.FreeStorageBytes > 0 ? reported.Conditions.FreeStorageBytes : device.FlashBytes;
        string storageName = reported?.Conditions.FreeStorageBytes > 0 ? "free storage" : "flash";
        if (storage > 0 && variant.ArtifactSize > storage)
            reasons.Add($"artifact {Bytes(variant.ArtifactSize)} exceeds the device's {storageName} {Bytes(storage)}");
        return reasons;
    }

    public static string Bytes(long b) => b switch
    {
        >= 1L << 30 => $"{b / (double)(1L << 30):F1} GiB",
        >= 1L << 20 => $"{b / (double)(1L << 20):F1} MiB",
        >= 1L << 10 => $"{b / 1024.0:F1} KiB",
        _ => $"{b} B",
    };
}
