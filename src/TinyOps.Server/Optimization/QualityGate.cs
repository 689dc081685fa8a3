using System.Globalization;

namespace TinyOps.Server.Optimization;

/// <summary>
/// The accuracy gate of a recipe variant: a variant that lost more accuracy against its base model than its recipe
/// allows (max_accuracy_drop, default 1 point) is kept but rejected, with the reason, and never deployed.
/// </summary>
public static class QualityGate
{
    public const string Accepted = "accepted";
    public const string Rejected = "rejected";

    /// <param name="variant">the recipe variant's name</param>
    /// <param name="maxDrop">percentage points the variant may lose</param>
    /// <param name="drop">what it lost (base minus variant, points), null when the recipe names no evaluation set</param>
    /// <param name="baseAccuracy">the base model's accuracy (0-1)</param>
    /// <param name="accuracy">the variant's accuracy (0-1)</param>
    /// <param name="set">the evaluation set's name</param>
    public static (string Status, string Reason) Decide(string variant, double maxDrop, double? drop, double? baseAccuracy, double? accuracy, string? set)
    {
        if (drop is not { } d || baseAccuracy is not { } b || accuracy is not { } a)
            return (Accepted, "not gated: the recipe names no evaluation set, so accuracy was not measured");
        string measured = $"{P(b)} -> {P(a)} on {set}";
        if (double.IsNaN(d) || d > maxDrop + 1e-9)
            return (Rejected, $"accuracy dropped {N(d)} points ({measured}), more than the {N(maxDrop)} variant '{variant}' may lose (its max_accuracy_drop); " +
                "kept for inspection, never deployed");
        return (Accepted, $"accuracy within budget: {(d >= 0 ? "dropped " + N(d) : "rose " + N(-d))} points ({measured}; at most {N(maxDrop)} may be lost)");
    }

    private static string N(double x) => x.ToString("0.##", CultureInfo.InvariantCulture);

    private static string P(double x) => (x * 100).ToString("0.00", CultureInfo.InvariantCulture) + " %";
}
