using TinyOps.Engine.Kernels.Nn;
using Xunit;

namespace TinyOps.Engine.Tests.Kernels;

/// <summary>
/// The intra-operator thread pool: every part of an operation runs exactly once, whoever runs it (the worker it is
/// meant for, or the calling thread taking over a worker that has not started), and a late worker never runs a part
/// of an operation that is over. Runs in a collection that runs alone, so nothing else holds the pool.
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

    private static void RunCounted(int parts)
    {
        Assert.True(WorkerPool.TryEnter());
        try
        {
            WorkerPool.Run(&Count, parts);
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
