namespace TinyOps.Engine.Kernels.Nn;

/// <summary>Splits one <see cref="PackedGemm.Job"/> across <see cref="WorkerPool"/> threads, by columns or by rows.</summary>
internal static unsafe class GemmThreads
{
    private static PackedGemm.Job s_job;
    private static bool s_byColumns;
    private static int s_unit;

    public static void Run(in PackedGemm.Job job, int threads)
    {
        var (mr, nr) = PackedGemm.Tile(job.Path);
        int tilesM = (job.M + mr - 1) / mr, tilesN = (job.N + nr - 1) / nr;
        // Too little work per thread: stay serial.
        if ((long)job.M * job.N * job.K < 64 * 1024 || (tilesM < 2 && tilesN < 2) || !WorkerPool.TryEnter())
        {
            PackedGemm.Run(in job, 0, job.M, 0, job.N);
            return;
        }
        try
        {
            s_job = job;
            // By rows (each part packs all of B, a small share of its work) whenever every thread gets two row
            // tiles: a column split leaves the ragged last column tile, which costs more than a full one, to one part
            // (MobileNetV2's 1x1 convolutions over 196 and 784 pixels had one thread waiting a third of the time).
            s_byColumns = tilesM < 2 * threads;
            s_unit = s_byColumns ? nr : mr;
            int tiles = s_byColumns ? tilesN : tilesM;
            WorkerPool.Run(&Part, Math.Min(threads, tiles));
        }
        finally
        {
            WorkerPool.Exit();
        }
    }

    private static void Part(int part, int parts)
    {
        int total = s_byColumns ? s_job.N : s_job.M;
        int tiles = (total + s_unit - 1) / s_unit;
        int t0 = (int)((long)tiles * part / parts), t1 = (int)((long)tiles * (part + 1) / parts);
        int lo = t0 * s_unit, hi = Math.Min(total, t1 * s_unit);
        if (s_byColumns) PackedGemm.Run(in s_job, 0, s_job.M, lo, hi);
        else PackedGemm.Run(in s_job, lo, hi, 0, s_job.N);
    }
}
