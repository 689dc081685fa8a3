namespace TinyOps.Optimize.Quantization;

/// <summary>
/// The second calibration pass of <see cref="CalibrationMethod.Percentile"/> and <see cref="CalibrationMethod.Entropy"/>:
/// a histogram of |x| over [0, max |x|] per activation (the range from a first MinMax pass over the same data), from
/// which a clipping threshold t is chosen; the range is then [max(min, −t), min(max, t)] (so [0, t] for activations
/// that are never negative). Values beyond the first pass's range fall into the last bin. Exact zeros are not counted:
/// any range that includes 0 represents them exactly, and after a Relu they are half the values, a spike in bin 0
/// that would pull the Entropy threshold far down (fmnist_cnn: a Relu's range clipped from 2.49 to 0.26).
/// </summary>
public sealed class HistogramCalibrator : ICalibrator
{
    private readonly IReadOnlyDictionary<string, TensorRange> _first;
    private readonly Dictionary<string, long[]> _hist = new(StringComparer.Ordinal);
    private readonly Func<long[], double, double> _threshold;

    /// <param name="firstPass">The MinMax ranges of the first pass.</param>
    /// <param name="threshold">Chooses t from a histogram (counts per bin) and the histogram's upper end.</param>
    /// <param name="bins">Histogram bins (default 2048).</param>
    public HistogramCalibrator(IReadOnlyDictionary<string, TensorRange> firstPass, Func<long[], double, double> threshold, int bins = 2048)
    {
        if (bins < 16) throw new QuantizationException($"a calibration histogram needs at least 16 bins, {bins} were asked for");
        _first = firstPass;
        _threshold = threshold;
        Bins = bins;
    }

    public int Bins { get; }

    public void Observe(string name, ReadOnlySpan<float> values)
    {
        if (values.IsEmpty || !_first.TryGetValue(name, out var r) || r.IsEmpty) return;
        double top = MaxAbs(r);
        if (!(top > 0)) return;
        if (!_hist.TryGetValue(name, out var h)) _hist[name] = h = new long[Bins];
        double perBin = Bins / top;
        foreach (float v in values)
        {
            if (v == 0f) continue; // exact zeros (half of a Relu's outputs) are exact in every range including 0, and would swamp bin 0
            double a = Math.Abs((double)v);
            if (double.IsNaN(a)) throw new QuantizationException($"activation '{name}' contains NaN during calibration; check the model and the calibration inputs");
            h[(int)Math.Min(a * perBin, Bins - 1)]++;
        }
    }

    public TensorRange Range(string name)
    {
        if (!_first.TryGetValue(name, out var r) || r.IsEmpty) return TensorRange.Empty;
        if (!_hist.TryGetValue(name, out var h)) return r;
        double top = MaxAbs(r);
        float t = (float)Math.Min(top, _threshold(h, top));
        return new TensorRange(Math.Max(r.Min, -t), Math.Min(r.Max, t));
    }

    public IEnumerable<string> Names => _first.Keys;

    private static double MaxAbs(TensorRange r) => Math.Max(Math.Abs((double)r.Min), Math.Abs((double)r.Max));

    /// <summary>The upper edge of the bin where the cumulative count reaches <paramref name="percentile"/> % of all values.</summary>
    public static double PercentileThreshold(long[] hist, double top, double percentile)
    {
        long total = 0;
        foreach (long c in hist) total += c;
        if (total == 0) return top;
        double target = total * (percentile / 100.0);
        long cum = 0;
        for (int i = 0; i < hist.Length; i++)
        {
            cum += hist[i];
            if (cum >= target) return (i + 1) * top / hist.Length;
        }
        return top;
    }

    /// <summary>
    /// The threshold minimizing the KL divergence between the clipped histogram P (bins [0, i), the mass beyond added
    /// to the last one) and Q, the bins [0, i) without that outlier mass quantized to <paramref name="levels"/> levels
    /// (each level's mass spread evenly over the bins where P is non-zero), over i from <paramref name="levels"/> to all
    /// bins (TensorRT's calibration); returns the upper edge of bin i − 1. Clipping hard moves mass into P's last bin
    /// that Q lacks, which is what makes small thresholds expensive.
    /// </summary>
    public static double EntropyThreshold(long[] hist, double top, int levels)
    {
        int n = hist.Length;
        if (levels >= n) return top;
        double best = double.PositiveInfinity;
        int bestI = n;
        var p = new double[n];
        var q = new double[n];
        long tail = 0;
        for (int i = 0; i < n; i++) tail += hist[i];
        long inside = 0;
        for (int i = 0; i < levels - 1; i++) inside += hist[i];
        for (int i = levels; i <= n; i++)
        {
            inside += hist[i - 1];
            long outliers = tail - inside;
            for (int j = 0; j < i; j++) p[j] = hist[j];
            p[i - 1] += outliers;
            double pSum = inside + outliers;
            if (pSum == 0) continue;
            // quantize [0, i) into `levels` groups
            for (int g = 0; g < levels; g++)
            {
                int start = (int)((long)g * i / levels), end = (int)((long)(g + 1) * i / levels);
                double mass = 0;
                int nonzero = 0;
                for (int j = start; j < end; j++) { mass += hist[j]; if (p[j] != 0) nonzero++; }
                for (int j = start; j < end; j++)
                    q[j] = nonzero == 0 || p[j] == 0 ? 0 : mass / nonzero;
            }
            double qSum = 0;
            for (int j = 0; j < i; j++) qSum += q[j];
            double kl = 0;
            for (int j = 0; j < i; j++)
            {
                if (p[j] == 0) continue;
                double pj = p[j] / pSum, qj = q[j] / qSum;
                kl += qj == 0 ? 1e3 * pj : pj * Math.Log(pj / qj);
            }
            if (kl < best) { best = kl; bestI = i; }
        }
        return bestI * top / n;
    }
}
