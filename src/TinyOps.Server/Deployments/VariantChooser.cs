using System.Globalization;
using TinyOps.Protocol.Devices;
using TinyOps.Protocol.Management;
using TinyOps.Server.Fleet;

namespace TinyOps.Server.Deployments;

/// <summary>
/// Picks, for one device, the best evaluated variant that fits: among the version's accepted variants that pass
/// <see cref="Compatibility.Check"/>, the highest metrics["accuracy"] (when present), then the lowest
/// metrics["latency_us"], then the smallest planned peak memory, then the id. The reason says why, naming what
/// was passed over and why.
/// </summary>
public static class VariantChooser
{
    public const string Accuracy = "accuracy";
    public const string LatencyUs = "latency_us";

    /// <summary>Variant null means no variant fits; the reason then lists why each one does not.</summary>
    public sealed record Choice(VariantDto? Variant, string Reason);

    public static Choice Choose(DeviceCapabilities capabilities, ReportedState? reported, IReadOnlyList<VariantDto> variants)
    {
        var caps = reported?.Capabilities ?? capabilities;
        if (variants.Count == 0) return new Choice(null, "the version has no variants");

        var fitting = new List<VariantDto>();
        var notes = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var v in variants)
        {
            if (v.Status != "accepted")
            {
                notes[v.Id] = $"{Label(v)} is {v.Status}" + (string.IsNullOrEmpty(v.StatusReason) ? "" : $" ({v.StatusReason})");
                continue;
            }
            var reasons = Compatibility.Check(caps, reported, v);
            if (reasons.Count > 0) notes[v.Id] = $"{Label(v)} does not fit: {string.Join(" and ", reasons)}";
            else fitting.Add(v);
        }
        if (fitting.Count == 0)
            return new Choice(null, $"no variant fits this device ({DeviceSummary(caps)}): {string.Join("; ", variants.Select(v => notes[v.Id]))}");

        fitting.Sort(Compare);
        var best = fitting[0];
        for (int i = 1; i < fitting.Count; i++)
            notes[fitting[i].Id] = $"{Label(fitting[i])} fits but ranks lower ({WhyLower(fitting[i], best)})";

        string reason = $"chose {Label(best)}: fits{Metrics(best)}";
        var others = variants.Where(v => v.Id != best.Id).ToList();
        if (others.Count > 0)
            reason += $"; {others.Count} other variant{(others.Count == 1 ? "" : "s")}: {string.Join("; ", others.Select(v => notes[v.Id]))}";
        return new Choice(best, reason);
    }

    /// <summary>Better variants sort first.</summary>
    public static int Compare(VariantDto a, VariantDto b)
    {
        int c = AccuracyOf(b).CompareTo(AccuracyOf(a));
        if (c != 0) return c;
        c = LatencyOf(a).CompareTo(LatencyOf(b));
        if (c != 0) return c;
        c = a.Metadata.PlannedPeakBytes.CompareTo(b.Metadata.PlannedPeakBytes);
        return c != 0 ? c : string.CompareOrdinal(a.Id, b.Id);
    }

    private static double AccuracyOf(VariantDto v) => v.Metrics.TryGetValue(Accuracy, out double a) && double.IsFinite(a) ? a : double.NegativeInfinity;

    private static double LatencyOf(VariantDto v) => v.Metrics.TryGetValue(LatencyUs, out double l) && double.IsFinite(l) ? l : double.PositiveInfinity;

    private static string WhyLower(VariantDto v, VariantDto best)
    {
        if (AccuracyOf(v) != AccuracyOf(best))
            return double.IsNegativeInfinity(AccuracyOf(v)) ? "no accuracy measured" : $"accuracy {F(AccuracyOf(v))} < {F(AccuracyOf(best))}";
        if (LatencyOf(v) != LatencyOf(best))
            return double.IsPositiveInfinity(LatencyOf(v)) ? "no latency measured" : $"latency {F(LatencyOf(v))} us > {F(LatencyOf(best))} us";
        if (v.Metadata.PlannedPeakBytes != best.Metadata.PlannedPeakBytes)
            return $"planned peak {Compatibility.Bytes(v.Metadata.PlannedPeakBytes)} > {Compatibility.Bytes(best.Metadata.PlannedPeakBytes)}";
        return "ties, ordered by id";
    }

    private static string Metrics(VariantDto v)
    {
        var parts = new List<string>();
        if (v.Metrics.TryGetValue(Accuracy, out double a)) parts.Add($"accuracy {F(a)}");
        if (v.Metrics.TryGetValue(LatencyUs, out double l)) parts.Add($"latency {F(l)} us");
        parts.Add($"planned peak {Compatibility.Bytes(v.Metadata.PlannedPeakBytes)}");
        return $" ({string.Join(", ", parts)})";
    }

    private static string DeviceSummary(DeviceCapabilities c)
    {
        var parts = new List<string>();
        if (c.DeviceClass.Length > 0) parts.Add(c.DeviceClass);
        if (c.RamBytes > 0) parts.Add($"RAM {Compatibility.Bytes(c.RamBytes)}");
        if (c.FlashBytes > 0) parts.Add($"flash {Compatibility.Bytes(c.FlashBytes)}");
        return parts.Count == 0 ? "no capabilities reported" : string.Join(", ", parts);
    }

    private static string Label(VariantDto v) => $"{v.Id} ({v.Name})";

    private static string F(double x) => x.ToString("0.####", CultureInfo.InvariantCulture);
}
