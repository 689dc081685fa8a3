using System.Numerics;
using System.Runtime.CompilerServices;

namespace TinyOps.Engine.Kernels.Quantized;

/// <summary>
/// Integer matrix multiplication with zero points, accumulating in int32:
/// C[m, n] = Σ_k (A[m, k] − aZero[m]) · (B[k, n] − bZero[n]).
/// A and B hold uint8 or int8 elements; row-major with leading dimensions lda, ldb, ldc.
/// Zero-point spans hold one value (shared by every row / column) or one per row of A / column of B.
/// This is the reference routine; vectorized (VNNI) variants plug in here.
/// </summary>
internal static class IntGemm
{
    public static void Multiply<TA, TB>(int m, int n, int k,
        ReadOnlySpan<TA> a, int lda, ReadOnlySpan<int> aZero,
        ReadOnlySpan<TB> b, int ldb, ReadOnlySpan<int> bZero,
        Span<int> c, int ldc)
        where TA : unmanaged, INumberBase<TA>
        where TB : unmanaged, INumberBase<TB>
    {
        if (m == 0 || n == 0) return;
        bool aPerRow = aZero.Length > 1;
        bool bPerCol = bZero.Length > 1;
        int zbShared = bZero.Length == 0 ? 0 : bZero[0];
        int za0 = aZero.Length == 0 ? 0 : aZero[0];
        for (int i = 0; i < m; i++)
        {
            var crow = c.Slice(i * ldc, n);
            crow.Clear();
            var arow = a.Slice(i * lda, k);
            int za = aPerRow ? aZero[i] : za0;
            int rowSum = 0; // Σ_k (A[i,k] − za), for the B zero-point correction
            for (int p = 0; p < k; p++)
            {
                int av = Widen(arow[p]) - za;
                if (av == 0) continue;
                rowSum += av;
                AddScaledRow(crow, b.Slice(p * ldb, n), av);
            }
            // Σ_k av·(B − zb) = Σ_k av·B − zb·Σ_k av
            if (bPerCol)
            {
                for (int j = 0; j < n; j++) crow[j] -= bZero[j] * rowSum;
            }
            else if (zbShared != 0)
            {
                int corr = zbShared * rowSum;
                for (int j = 0; j < n; j++) crow[j] -= corr;
            }
        }
    }

    /// <summary>c[j] += s · b[j] over a contiguous row.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddScaledRow<TB>(Span<int> c, ReadOnlySpan<TB> b, int s) where TB : unmanaged, INumberBase<TB>
    {
        for (int j = 0; j < c.Length; j++) c[j] += s * Widen(b[j]);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Widen<T>(T v) where T : unmanaged, INumberBase<T>
    {
        if (typeof(T) == typeof(byte)) return Unsafe.As<T, byte>(ref v);
        if (typeof(T) == typeof(sbyte)) return Unsafe.As<T, sbyte>(ref v);
        return int.CreateTruncating(v);
    }
}
