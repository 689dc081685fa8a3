using TinyOps.Engine.Kernels.Nn;
using Xunit;

namespace TinyOps.Engine.Tests.Kernels;

/// <summary>
/// The intra-operator thread pool: every part or chunk of an operation runs exactly once, whoever runs it (the thread
/// whose share it is, or one taking over chunks a late or slow thread has not started), and a late worker never runs
/// a chunk of an operation that is over. Runs in a collection that runs alone, so nothing else holds the pool.
/// </summary>
[Collection("SGemmScalarSwitch")]
public unsafe class WorkerPoolTests
{
    private static int[] s_runs = [];
    private static int[] s_threads = [];
    private static int s_delayPart = -1;

    private static void Count(int part, int parts)
    {
        if (part == s_delayPart) Thread.SpinWait(2000);
        Interlocked.Increment(ref s_runs[part]);
        s_threads[part] = Environment.CurrentManagedThreadId;
    }

    private static void RunCounted(int parts, int chunks = 0)
    {
        Assert.True(WorkerPool.TryEnter());
        try
        {
            if (chunks == 0) WorkerPool.Run(&Count, parts);
            else WorkerPool.Run(&Count, parts, chunks);
        }
        finally
        {
            WorkerPool.Exit();
        }
    }

    [Fact]
    public void EveryPartRunsExactlyOnceAcrossManyOperations()
    {
        var r = new Random(5);
        for (int op = 0; op < 3000; op++)
        {
            int parts = r.Next(1, 5);
            s_runs = new int[parts];
            s_threads = new int[parts];
            s_delayPart = r.Next(-1, parts); // sometimes one part is slow, so the others finish first
            if (op % 200 == 0) Thread.Sleep(2); // let the workers go to sleep now and then: they must be woken again
            RunCounted(parts);
            for (int p = 0; p < parts; p++) Assert.True(s_runs[p] == 1, $"operation {op}: part {p} of {parts} ran {s_runs[p]} times");
        }
        s_delayPart = -1;
    }

    [Fact]
    public void EveryChunkRunsExactlyOnceWhateverTheThreadsAndChunks()
    {
        var r = new Random(9);
        for (int op = 0; op < 3000; op++)
        {
            int threads = r.Next(1, 5), chunks = r.Next(1, 33);
            s_runs = new int[chunks];
            s_threads = new int[chunks];
            s_delayPart = r.Next(-1, chunks);
            if (op % 200 == 0) Thread.Sleep(2);
            RunCounted(threads, chunks);
            for (int c = 0; c < chunks; c++) Assert.True(s_runs[c] == 1, $"operation {op}: chunk {c} of {chunks} on {threads} threads ran {s_runs[c]} times");
        }
        s_delayPart = -1;
    }

    [Fact]
    public void AThreadDoneEarlyTakesTheChunksASlowOneHasNotStarted()
    {
        // Two threads, eight chunks; the calling thread's own four are instant, the worker's first one is slow: the
        // calling thread then runs the worker's unstarted chunks from the back of its share.
        int caller = Environment.CurrentManagedThreadId;
        bool tookOver = false;
        for (int attempt = 0; attempt < 20 && !tookOver; attempt++)
        {
            s_runs = new int[8];
            s_threads = new int[8];
            s_delayPart = 4;
            RunCounted(2, 8);
            s_delayPart = -1;
            Assert.All(s_runs, n => Assert.Equal(1, n));
            tookOver = s_threads[7] == caller;
        }
        Assert.True(tookOver, "the calling thread never took a chunk of the slow thread's share");
    }

    [Fact]
    public void TheCallingThreadTakesOverAWorkerThatHasNotStarted()
    {
        // After a pause longer than the workers' spin, they sleep; waking one takes far longer than the empty part 0,
        // so the calling thread finds part 1 unclaimed and runs it itself.
        int caller = Environment.CurrentManagedThreadId;
        bool tookOver = false;
        for (int attempt = 0; attempt < 20 && !tookOver; attempt++)
        {
            Thread.Sleep(5);
            s_runs = new int[2];
            s_threads = new int[2];
            RunCounted(2);
            Assert.Equal([1, 1], s_runs);
            tookOver = s_threads[1] == caller;
        }
        Assert.True(tookOver, "the calling thread never ran a part left by a sleeping worker");
    }

    [Fact]
    public void WithoutTakeOverTheWorkerRunsItsPart()
    {
        WorkerPool.TakeOver = false;
        try
        {
            int caller = Environment.CurrentManagedThreadId;
            for (int attempt = 0; attempt < 5; attempt++)
            {
                Thread.Sleep(5);
                s_runs = new int[2];
                s_threads = new int[2];
                RunCounted(2);
                Assert.Equal([1, 1], s_runs);
                Assert.NotEqual(caller, s_threads[1]);
            }
        }
        finally
        {
            WorkerPool.TakeOver = true;
        }
    }
}
