namespace TinyOps.Engine.Kernels.Elementwise;

/// <summary>The error function in double precision (Taylor series near zero, Abramowitz-Stegun 7.1.26 elsewhere).</summary>
internal static class ErfMath
{
    public static double Erf(double x)
    {
        if (double.IsNaN(x)) return double.NaN;
        double ax = Math.Abs(x);
        if (ax < 0.5)
        {
            // erf(x) = 2/sqrt(pi) * sum (-1)^n x^(2n+1) / (n! (2n+1))
            double x2 = x * x, term = x, sum = x;
            for (int n = 1; n < 12; n++)
            {
                term *= -x2 / n;
                sum += term / (2 * n + 1);
            }
            return sum * 1.1283791670955126;
        }
        if (ax >= 6.0) return x > 0 ? 1.0 : -1.0;
        // Abramowitz & Stegun 7.1.26: absolute error below 1.5e-7
        double t = 1.0 / (1.0 + 0.3275911 * ax);
        double poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
        double r = 1.0 - poly * Math.Exp(-ax * ax);
        return x < 0 ? -r : r;
    }
}
