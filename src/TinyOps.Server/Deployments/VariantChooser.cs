using System.Globalization;
using TinyOps.Protocol.Devices;
using TinyOps.Protocol.Management;
using TinyOps.Server.Fleet;

namespace TinyOps.Server.Deployments;

/// <summary>
/// Picks, for one device, the best evaluated variant that fits: among the version's accepted variants meant for the
/// device's class (a recipe variant lists the classes it targets; the base and hand-registered variants are for any) that pass
/// <see cref="Compatibility.Check"/> (operators, RAM, storage) and the deployment's latency budget for the device's
/// class (the variant's estimated latency on that class, from its evaluation), the highest metrics["accuracy"] (when
/// present), then the lowest metrics["latency_us"] (measured here; a recipe job scales every variant of a version to a
/// class by the same factor, so the order is the class's too), then the smallest planned peak memory, then the id. Rejected and pending
/// variants are never chosen. The reason says why this one, and why each other one (better ranked first) was not.
/// </summary>
public static class VariantChooser
{
    public const string Accuracy = "accuracy";
    public const string LatencyUs = "latency_us";
    /// <summary>The budget key that applies to every device class not named.</summary>
    public const string AnyClass = "*";

    /// <summary>Variant null means no variant fits; the reason then lists why each one does not.</summary>
    public sealed record Choice(VariantDto? Variant, string Reason);

    public static Choice Choose(DeviceCapabilities capabilities, ReportedState? reported, IReadOnlyList<VariantDto> variants,
        IReadOnlyDictionary<string, double>? latencyBudgetsUs = null)
    {
        var caps = reported?.Capabilities ?? capabilities;
        if (variants.Count == 0) return new Choice(null, "the version has no variants");
        string cls = caps.DeviceClass;
        double? budget = BudgetFor(latencyBudgetsUs, cls);

        var fitting = new List<VariantDto>();
        var notes = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var v in variants)
        {
            if (v.Status != "accepted")
            {
                notes[v.Id] = $"{Label(v)} is {v.Status}" + (string.IsNullOrEmpty(v.StatusReason) ? "" : $" ({v.StatusReason})");
                continue;
            }
            if (v.Lineage?.Targets is { Count: > 0 } targets && !targets.Contains(cls, StringComparer.Ordinal))
            {
                notes[v.Id] = $"{Label(v)} is not meant for this class: its recipe targets {string.Join(", ", targets)}, not {(cls.Length == 0 ? "(no class)" : cls)}";
                continue;
            }
            var reasons = Compatibility.Check(caps, reported, v);
            if (budget is { } b)
            {
                if (DeviceLatencyOf(v, cls) is not { } est)
                    reasons.Add($"it has no latency estimate for device class '{(cls.Length == 0 ? "(none)" : cls)}' to hold against the {Us(b)} budget (run the model's recipe to evaluate it)");
                else if (est > b)
                    reasons.Add($"its estimated latency on {cls} {Us(est)} exceeds the budget {Us(b)}");
            }
            if (reasons.Count > 0) notes[v.Id] = $"{Label(v)} does not fit: {string.Join(" and ", reasons)}";
            else fitting.Add(v);
        }
        var ranked = variants.OrderBy(v => v, Comparer<VariantDto>.Create(Compare)).ToList();
        if (fitting.Count == 0)
            return new Choice(null, $"no variant fits this device ({DeviceSummary(caps, budget)}): {string.Join("; ", ranked.Select(v => notes[v.Id]))}");

        fitting.Sort(Compare);
        var best = fitting[0];
        for (int i = 1; i < fitting.Count; i++)
            notes[fitting[i].Id] = $"{Label(fitting[i])} fits but ranks lower ({WhyLower(fitting[i], best)})";

        string reason = $"chose {Label(best)}: fits{Metrics(best, cls, budget)}";
        var others = ranked.Where(v => v.Id != best.Id).ToList();
        if (others.Count > 0)
            reason += $"; {others.Count} other variant{(others.Count == 1 ? "" : "s")}: {string.Join("; ", others.Select(v => notes[v.Id]))}";
        return new Choice(best, reason);
    }

    /// <summary>The budget for a class: its own, else the "*" one, else none.</summary>
    public static double? BudgetFor(IReadOnlyDictionary<string, double>? budgets, string deviceClass) =>
        budgets is null ? null
        : budgets.TryGetValue(deviceClass, out double own) ? own
        : budgets.TryGetValue(AnyClass, out double any) ? any
        : null;

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

    /// <summary>The variant's estimated latency on a device class (µs), from its evaluation; null when it has none.</summary>
    public static double? DeviceLatencyOf(VariantDto v, string deviceClass) =>
        v.Evaluation?.DeviceLatencyUs is { } d && d.TryGetValue(deviceClass, out double us) && double.IsFinite(us) ? us : null;

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

    private static string Metrics(VariantDto v, string cls, double? budget)
    {
        var parts = new List<string>();
        if (v.Metrics.TryGetValue(Accuracy, out double a)) parts.Add($"accuracy {F(a)}");
        if (v.Metrics.TryGetValue(LatencyUs, out double l)) parts.Add($"latency {F(l)} us");
        if (DeviceLatencyOf(v, cls) is { } est) parts.Add($"estimated {Us(est)} on {cls}" + (budget is { } b ? $" within the {Us(b)} budget" : ""));
        parts.Add($"planned peak {Compatibility.Bytes(v.Metadata.PlannedPeakBytes)}");
        return $" ({string.Join(", ", parts)})";
    }

    private static string DeviceSummary(DeviceCapabilities c, double? budget)
    {
        var parts = new List<string>();
        if (c.DeviceClass.Length > 0) parts.Add(c.DeviceClass);
        if (c.RamBytes > 0) parts.Add($"RAM {Compatibility.Bytes(c.RamBytes)}");
        if (c.FlashBytes > 0) parts.Add($"flash {Compatibility.Bytes(c.FlashBytes)}");
        if (budget is { } b) parts.Add($"latency budget {Us(b)}");
        return parts.Count == 0 ? "no capabilities reported" : string.Join(", ", parts);
    }

    private static string Label(VariantDto v) => $"{v.Id} ({v.Name})";

    private static string F(double x) => x.ToString("0.####", CultureInfo.InvariantCulture);

    /// <summary>Microseconds as "850 us" or "12.7 ms".</summary>
    public static string Us(double us) => us >= 1000
        ? (us / 1000).ToString("0.##", CultureInfo.InvariantCulture) + " ms"
        : us.ToString("0.#", CultureInfo.InvariantCulture) + " us";
}
