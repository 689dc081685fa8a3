namespace TinyOps.Engine.Kernels.Nn;

/// <summary>
/// A small process-wide pool of background threads for intra-operator parallelism, used without allocation:
/// the caller takes the pool with <see cref="TryEnter"/> (false when another session holds it: run serially),
/// stores its state in static fields, calls <see cref="Run"/> with a static function pointer and releases it with
/// <see cref="Exit"/>. Part 0 runs on the calling thread, parts 1.. on workers, which spin briefly then sleep.
/// </summary>
internal static unsafe class WorkerPool
{
    /// <summary>Most threads a single operator uses.</summary>
    public const int MaxThreads = 64;

    private static readonly object s_gate = new();
    private static readonly Worker?[] s_workers = new Worker?[MaxThreads];
    private static delegate*<int, int, void> s_body;
    private static int s_parts;
    private static int s_pending;

    private sealed class Worker
    {
        public readonly SemaphoreSlim Go = new(0);
        public int Part;
    }

    /// <summary>Takes the pool for one parallel operation; false when it is busy (the caller then runs serially).</summary>
    public static bool TryEnter() => Monitor.TryEnter(s_gate);

    public static void Exit() => Monitor.Exit(s_gate);

    /// <summary>Runs body(part, parts) for every part in [0, parts), part 0 on this thread; returns when all are done.</summary>
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
        for (int p = 1; p < parts; p++)
        {
            var w = s_workers[p] ??= Start(p);
            w.Go.Release();
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
        var spin = new SpinWait();
        while (Volatile.Read(ref s_pending) > 0) spin.SpinOnce(sleep1Threshold: -1);
        if (error is not null) throw error;
    }

    private static Worker Start(int part)
    {
        var w = new Worker { Part = part };
        var t = new Thread(Loop, 256 * 1024) { IsBackground = true, Name = $"TinyOps worker {part}" };
        t.Start(w);
        return w;
    }

    private static void Loop(object? state)
    {
        var w = (Worker)state!;
        while (true)
        {
            w.Go.Wait();
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
}
