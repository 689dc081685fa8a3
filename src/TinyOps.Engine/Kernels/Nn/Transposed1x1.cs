using System.Numerics.Tensors;
using TinyOps.Engine.Kernels.Common;

namespace TinyOps.Engine.Kernels.Nn;

/// <summary>
/// A 1x1 convolution computed transposed: C'[pixel, m] = Σ_c x[c, pixel] · w[m, c], pixels as the GEMM's rows and
/// output channels as its columns (the weights packed once as B), the bias as a column bias and the activation in the
/// GEMM's epilogue (after the transpose when a residual is added); C' goes back to y[m, pixel] through 16 x 16 register
/// transposes. With threads the pixels are split in 16-row bands: each part packs only its own rows of X, multiplies
/// them by the shared packed weights, and transposes its own band back (and adds its residual), so nothing is done twice
/// and nothing waits for the calling thread.
/// </summary>
internal static unsafe class Transposed1x1
{
    private struct State
    {
        public PackedGemm.Job Job;
        public float* Y;
        public int Pixels, M;
        public FusedActivation Act;
    }

    private static State s_state;

    /// <param name="packedWT">The weights [m][k] packed as the B (k x m) of the AVX-512 path.</param>
    /// <param name="ct">Scratch of at least pixels * m floats for C'.</param>
    public static void Run(PackedMatrix packedWT, ReadOnlySpan<float> x, Span<float> y, ReadOnlySpan<float> bias, Span<float> ct,
        int m, int pixels, int k, in FusedActivation act, int threads)
    {
        if (ct.Length < pixels * m || x.Length < k * pixels || y.Length < m * pixels || !packedWT.Fits(PackedGemm.Path.Avx512, k, m))
            throw new ArgumentException("Transposed1x1: buffers do not fit the convolution shape");
        fixed (float* px = x, py = y, pb = bias, pc = ct, pw = packedWT.Data)
        {
            var st = new State
            {
                Job = new PackedGemm.Job
                {
                    M = pixels, N = m, K = k,
                    A = px, Sai = 1, Sak = pixels, // A = X^T: element (pixel, c) at x[c * pixels + pixel]
                    B = pw, Sbk = 1, Sbn = k,
                    C = pc, Ldc = m, Alpha = 1f,
                    ColBias = bias.IsEmpty ? null : pb,
                    Act = act.HasResidual ? FusedActivation.None : act,
                    Path = PackedGemm.Path.Avx512,
                    PackedB = pw,
                },
                Y = py, Pixels = pixels, M = m, Act = act,
            };
            int bands = (pixels + 15) / 16;
            if (threads > 1 && bands > 1 && (long)pixels * m * k >= 256 * 1024 && WorkerPool.TryEnter())
            {
                try
                {
                    s_state = st;
                    WorkerPool.Run(&Part, Math.Min(threads, bands));
                }
                finally
                {
                    WorkerPool.Exit();
                }
            }
            else Band(in st, 0, pixels);
        }
    }

    private static void Part(int part, int parts)
    {
        int bands = (s_state.Pixels + 15) / 16;
        int b0 = (int)((long)bands * part / parts), b1 = (int)((long)bands * (part + 1) / parts);
        Band(in s_state, b0 * 16, Math.Min(s_state.Pixels, b1 * 16));
    }

    /// <summary>Pixels [p0, p1): their rows of C', then their columns of y.</summary>
    private static void Band(in State st, int p0, int p1)
    {
        if (p1 <= p0) return;
        PackedGemm.Run(in st.Job, p0, p1, 0, st.M);
        int m = st.M, pixels = st.Pixels;
        float* c = st.Job.C;
        for (int i0 = p0; i0 < p1; i0 += 16)
        {
            int rows = Math.Min(16, p1 - i0);
            for (int g = 0; g < m; g += 16)
                Transpose16.Run(c + (long)i0 * m + g, m, rows, st.Y + (long)g * pixels + i0, pixels, rows, Math.Min(16, m - g));
        }
        if (!st.Act.HasResidual) return;
        // y = act(y + residual) over this band of every channel
        for (int g = 0; g < m; g++)
        {
            float* yr = st.Y + (long)g * pixels + p0;
            var yb = new Span<float>(yr, p1 - p0);
            TensorPrimitives.Add(yb, new ReadOnlySpan<float>(st.Act.Residual(yr), p1 - p0), yb);
            st.Act.Apply(yb);
        }
    }
}
