namespace TinyOps.Engine.Kernels.Nn;

/// <summary>
/// A small process-wide pool of background threads for intra-operator parallelism, used without allocation:
/// the caller takes the pool with <see cref="TryEnter"/> (false when another session holds it: run serially),
/// stores its state in static fields, calls <see cref="Run"/> with a static function pointer and releases it with
/// <see cref="Exit"/>. Part 0 runs on the calling thread, parts 1.. on workers. A worker keeps spinning for
/// <see cref="SpinMicroseconds"/> after its last part before it sleeps, so the operators of one inference, often tens
/// of microseconds each, hand work over without a thread wake-up (which costs as much as a small operator).
/// TINYOPS_SPIN_US overrides the spin (0: sleep at once, for devices where a spinning core costs battery).
/// A part whose worker has not started it when the calling thread is done with its own is run by the calling thread
/// (see <see cref="Run"/>), so a worker that is asleep, slow to wake or descheduled delays an operation by at most that part.
/// </summary>
internal static unsafe class WorkerPool
{
    /// <summary>Most threads a single operator uses (one bit each in <see cref="s_claims"/>).</summary>
    public const int MaxThreads = 32;

    private static readonly object s_gate = new();
    private static readonly Worker?[] s_workers = new Worker?[MaxThreads];
    private static delegate*<int, int, void> s_body;
    private static int s_parts;
    private static int s_pending;
    private static long s_generation;
    /// <summary>
    /// The parts of the current operation already taken: (low 32 bits of its generation) &lt;&lt; 32 | one bit per part.
    /// Whoever sets a part's bit (with a compare-exchange naming the generation) runs it; see <see cref="Run"/>.
    /// </summary>
    private static long s_claims;

    /// <summary>
    /// Whether the calling thread, its own part done, runs the parts of workers that have not started theirs (on by
    /// default); a switch for in-process A/B comparisons with <c>bench/TinyOps.Bench.Kernels ab</c>.
    /// </summary>
    internal static bool TakeOver = true;

    /// <summary>How long an idle worker spins, watching for the next operation, before it blocks.</summary>
    public const int SpinMicroseconds = 200;
    private static readonly long s_spinTicks = System.Diagnostics.Stopwatch.Frequency
        * int.Parse(Environment.GetEnvironmentVariable("TINYOPS_SPIN_US") ?? SpinMicroseconds.ToString()) / 1_000_000;

    private sealed class Worker
    {
        public readonly SemaphoreSlim Go = new(0);
        public int Part;
        /// <summary>1 while the worker is blocked (or about to block) on <see cref="Go"/>.</summary>
        public int Sleeping;
        /// <summary>The last generation this worker has handled (or skipped).</summary>
        public long Seen;
    }

    /// <summary>Takes the pool for one parallel operation; false when it is busy (the caller then runs serially).</summary>
    public static bool TryEnter() => Monitor.TryEnter(s_gate);

    public static void Exit() => Monitor.Exit(s_gate);

    /// <summary>
    /// Runs body(part, parts) for every part in [0, parts), part 0 on this thread; returns when all are done. Worker p
    /// takes part p; this thread, once part 0 is done, takes any part whose worker has not started it yet (a worker
    /// still waking, or descheduled on a busy host or a phone's loaded core), so one late thread costs at most the
    /// serial time of its part instead of stalling the operation until it is scheduled again. A part runs exactly once:
    /// it is taken by setting its bit in <see cref="s_claims"/>.
    /// </summary>
    public static void Run(delegate*<int, int, void> body, int parts)
    {
        parts = Math.Clamp(parts, 1, MaxThreads);
        if (parts == 1)
        {
            body(0, 1);
            return;
        }
        s_body = body;
        s_parts = parts;
        Volatile.Write(ref s_pending, parts - 1);
        for (int p = 1; p < parts; p++) s_workers[p] ??= Start(p);
        long generation = s_generation + 1; // only this thread (holding the gate) moves the generation
        // part 0 is this thread's; bits of parts this operation does not have are set, so no worker takes them
        uint taken = parts >= 32 ? 1u : ~((1u << parts) - 1) | 1u;
        Volatile.Write(ref s_claims, (generation << 32) | taken);
        Interlocked.Increment(ref s_generation); // publishes body, parts and claims; spinning workers start now
        for (int p = 1; p < parts; p++)
        {
            var w = s_workers[p]!;
            if (Interlocked.Exchange(ref w.Sleeping, 0) == 1) w.Go.Release();
        }
        Exception? error = null;
        try
        {
            body(0, parts);
        }
        catch (Exception e)
        {
            error = e;
        }
        if (TakeOver)
            for (int p = 1; p < parts && Volatile.Read(ref s_pending) > 0; p++)
            {
                if (!TryClaim(generation, p)) continue;
                try
                {
                    body(p, parts);
                }
                catch (Exception e)
                {
                    error ??= e;
                }
                finally
                {
                    Interlocked.Decrement(ref s_pending);
                }
            }
        var spin = new SpinWait();
        while (Volatile.Read(ref s_pending) > 0) spin.SpinOnce(sleep1Threshold: -1);
        if (error is not null) throw error;
    }

    /// <summary>Takes part <paramref name="part"/> of the operation of <paramref name="generation"/>; false when it is taken or that operation is over.</summary>
    private static bool TryClaim(long generation, int part)
    {
        long bit = 1L << part;
        while (true)
        {
            long seen = Volatile.Read(ref s_claims);
            if ((int)(seen >> 32) != (int)generation || (seen & bit) != 0) return false;
            if (Interlocked.CompareExchange(ref s_claims, seen | bit, seen) == seen) return true;
        }
    }

    private static Worker Start(int part)
    {
        var w = new Worker { Part = part, Seen = Volatile.Read(ref s_generation) };
        var t = new Thread(Loop, 256 * 1024) { IsBackground = true, Name = $"TinyOps worker {part}" };
        t.Start(w);
        return w;
    }

    private static void Loop(object? state)
    {
        var w = (Worker)state!;
        while (true)
        {
            WaitForWork(w);
            long generation = Volatile.Read(ref s_generation);
            w.Seen = generation;
            // an operation with fewer parts is not ours; a part already taken over by the calling thread neither
            // (then its operation may be over and the statics below may belong to the next one: read them only after the claim)
            if (!TryClaim(generation, w.Part)) continue;
            try
            {
                s_body(w.Part, s_parts);
            }
            catch
            {
                // Parts only compute into preallocated memory; a failure here leaves that part's output unset.
            }
            finally
            {
                Interlocked.Decrement(ref s_pending);
            }
        }
    }

    /// <summary>Spins until the generation moves past <see cref="Worker.Seen"/>; after the spin budget, sleeps.</summary>
    private static void WaitForWork(Worker w)
    {
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        int n = 0;
        while (Volatile.Read(ref s_generation) == w.Seen)
        {
            if ((++n & 63) != 0 || System.Diagnostics.Stopwatch.GetTimestamp() - start < s_spinTicks)
            {
                Thread.SpinWait(4);
                continue;
            }
            Interlocked.Exchange(ref w.Sleeping, 1); // a full fence: the generation read below must not pass this store
            if (Volatile.Read(ref s_generation) != w.Seen)
            {
                // Work arrived while going to sleep: take the flag back, or consume the release Run already made.
                if (Interlocked.CompareExchange(ref w.Sleeping, 0, 1) != 1) w.Go.Wait();
                return;
            }
            w.Go.Wait();
            return;
        }
    }
}
