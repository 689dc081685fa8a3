namespace TinyOps.Server.Telemetry;

/// <summary>Nearest-rank percentiles: the smallest value with at least p% of the values at or below it.</summary>
public static class Percentiles
{
    /// <summary><paramref name="sorted"/> must be in ascending order; 0 for no values.</summary>
    public static double NearestRank(IReadOnlyList<double> sorted, double percent)
    {
        if (sorted.Count == 0) return 0;
        if (percent <= 0) return sorted[0];
        int rank = (int)Math.Ceiling(percent / 100.0 * sorted.Count);
        return sorted[Math.Clamp(rank, 1, sorted.Count) - 1];
    }
}
