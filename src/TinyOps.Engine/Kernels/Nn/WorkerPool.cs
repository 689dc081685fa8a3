namespace TinyOps.Engine.Kernels.Nn;

/// <summary>
/// A small process-wide pool of background threads for intra-operator parallelism, used without allocation:
/// the caller takes the pool with <see cref="TryEnter"/> (false when another session holds it: run serially),
/// stores its state in static fields, calls <see cref="Run"/> with a static function pointer and releases it with
/// <see cref="Exit"/>. Part 0 runs on the calling thread, parts 1.. on workers. A worker keeps spinning for
/// <see cref="SpinMicroseconds"/> after its last part before it sleeps, so the operators of one inference, often tens
/// of microseconds each, hand work over without a thread wake-up (which costs as much as a small operator).
/// TINYOPS_SPIN_US overrides the spin (0: sleep at once, for devices where a spinning core costs battery).
/// A share whose thread has not started it when another is done with its own is taken over (see
/// <see cref="Run(delegate*{int, int, void}, int, int)"/>), so a thread asleep, slow to wake or descheduled delays an
/// operation by at most that share.
/// </summary>
internal static unsafe class WorkerPool
{
    /// <summary>Most threads a single operator uses (one bit each in <see cref="s_claims"/>).</summary>
    public const int MaxThreads = 32;

    private static readonly object s_gate = new();
    private static readonly Worker?[] s_workers = new Worker?[MaxThreads];
    private static delegate*<int, int, void> s_body;
    private static int s_parts;
    /// <summary>Chunks of the current operation not finished yet.</summary>
    private static int s_pending;
    /// <summary>Chunk count of the current operation (<see cref="s_parts"/> is its thread count).</summary>
    private static int s_chunks;
    private static long s_generation;
    /// <summary>
    /// The chunks of the current operation already taken: (low 32 bits of its generation) &lt;&lt; 32 | one bit per chunk
    /// (the bits past its chunk count set from the start). Whoever sets a chunk's bit, with a compare-exchange that
    /// names the generation, runs it; see <see cref="Run(delegate*{int, int, void}, int, int)"/>.
    /// </summary>
    private static long s_claims;

    /// <summary>
    /// Whether a thread done with its own share takes the chunks others have not started (on by default); off, every
    /// thread runs exactly its own share. A switch for in-process A/B comparisons with <c>bench/TinyOps.Bench.Kernels ab</c>.
    /// </summary>
    internal static bool TakeOver = true;

    /// <summary>
    /// Chunks per thread for the kernels that can cut their work finer at no cost (see <see cref="Chunks"/>); 1 gives
    /// each thread one share. Settable for in-process A/B comparisons with <c>bench/TinyOps.Bench.Kernels ab</c>.
    /// </summary>
    internal static int ChunksPerThread = 2;

    /// <summary>Chunks for an operation of <paramref name="units"/> indivisible units on <paramref name="threads"/> threads.</summary>
    public static int Chunks(int threads, int units) =>
        (int)Math.Clamp((long)Math.Max(1, threads) * Math.Max(1, ChunksPerThread), 1, Math.Clamp(units, 1, MaxThreads));

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

    /// <summary>Runs body(part, parts) for every part in [0, parts), one part a thread (part 0 on this one); returns when all are done.</summary>
    public static void Run(delegate*<int, int, void> body, int parts) => Run(body, parts, parts);

    /// <summary>
    /// Runs body(chunk, chunks) for every chunk in [0, chunks) on up to <paramref name="threads"/> threads (this one
    /// included); returns when all are done. Thread t's own chunks are the t-th equal share, taken front to back, so
    /// with threads of equal speed each works on the same part of the data as with one fixed share each (what the
    /// operations before and after left in its core's cache). A thread done with its own then takes the chunks no one
    /// has started, from the back of the others' shares: a worker asleep, slow to wake or descheduled (a busy host, a
    /// phone's loaded core) costs at most its chunks' serial time instead of stalling the operation, and with several
    /// chunks a thread a slower core (a little core beside a big one, a host sharing it) leaves its last chunks to the
    /// others. A chunk runs exactly once: it is taken by setting its bit in <see cref="s_claims"/> (at most 32 chunks).
    /// </summary>
    public static void Run(delegate*<int, int, void> body, int threads, int chunks)
    {
        chunks = Math.Clamp(chunks, 1, MaxThreads);
        threads = Math.Clamp(Math.Min(threads, chunks), 1, MaxThreads);
        if (threads == 1)
        {
            for (int c = 0; c < chunks; c++) body(c, chunks);
            return;
        }
        s_body = body;
        s_parts = threads;
        s_chunks = chunks;
        Volatile.Write(ref s_pending, chunks);
        for (int p = 1; p < threads; p++) s_workers[p] ??= Start(p);
        long generation = s_generation + 1; // only this thread (holding the gate) moves the generation
        // bits of chunks this operation does not have are set, so no one takes them
        uint none = chunks >= 32 ? 0u : ~((1u << chunks) - 1);
        Volatile.Write(ref s_claims, (generation << 32) | none);
        Interlocked.Increment(ref s_generation); // publishes body, counts and claims; spinning workers start now
        for (int p = 1; p < threads; p++)
        {
            var w = s_workers[p]!;
            if (Interlocked.Exchange(ref w.Sleeping, 0) == 1) w.Go.Release();
        }
        Exception? error = Work(generation, 0, threads, chunks);
        var spin = new SpinWait();
        while (Volatile.Read(ref s_pending) > 0) spin.SpinOnce(sleep1Threshold: -1);
        if (error is not null) throw error;
    }

    /// <summary>Chunks [t * chunks / threads, (t + 1) * chunks / threads) are thread t's own.</summary>
    private static int ShareStart(int t, int threads, int chunks) => (int)((long)chunks * t / threads);

    /// <summary>
    /// Thread <paramref name="t"/>'s run through an operation: its own chunks, then (with <see cref="TakeOver"/>) the
    /// unstarted chunks of the other shares, each from its back. Returns the first exception a chunk threw.
    /// </summary>
    private static Exception? Work(long generation, int t, int threads, int chunks)
    {
        Exception? error = null;
        for (int c = ShareStart(t, threads, chunks), end = ShareStart(t + 1, threads, chunks); c < end; c++)
            if (TryClaim(generation, c)) error ??= RunChunk(c, chunks);
        if (!TakeOver) return error;
        for (int k = 1; k < threads && Volatile.Read(ref s_pending) > 0; k++)
        {
            int u = (t + k) % threads;
            for (int c = ShareStart(u + 1, threads, chunks) - 1, lo = ShareStart(u, threads, chunks); c >= lo; c--)
                if (TryClaim(generation, c)) error ??= RunChunk(c, chunks);
        }
        return error;
    }

    /// <summary>Runs one claimed chunk (the body is read only now that the claim holds the operation open) and counts it done.</summary>
    private static Exception? RunChunk(int chunk, int chunks)
    {
        try
        {
            s_body(chunk, chunks);
            return null;
        }
        catch (Exception e)
        {
            return e;
        }
        finally
        {
            Interlocked.Decrement(ref s_pending);
        }
    }

    /// <summary>Takes chunk <paramref name="chunk"/> of the operation of <paramref name="generation"/>; false when it is taken or that operation is over.</summary>
    private static bool TryClaim(long generation, int chunk)
    {
        long bit = 1L << chunk;
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
            // The counts may already be the next operation's when this worker is late; then every claim below fails
            // (the generation in s_claims has moved on, or all of this one's chunks are taken), so nothing runs.
            int threads = s_parts, chunks = s_chunks;
            if (w.Part >= threads) continue; // an operation on fewer threads: not ours
            // Chunks only compute into preallocated memory; a failure here leaves that chunk's output unset.
            Work(generation, w.Part, threads, chunks);
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
