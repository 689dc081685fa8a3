using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using Dapper;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using TinyOps.Protocol;
using TinyOps.Protocol.Management;
using TinyOps.Server.Hosting;
using TinyOps.Server.Jobs;
using Xunit;

namespace TinyOps.Server.Tests.Jobs;

/// <summary>The jobs table and worker on both stores: claiming once, failures recorded, stale recovery, cancel, shutdown.</summary>
public sealed class JobTests
{
    private const string P = "default";
    private static readonly string Jobs = ApiRoutes.Project(P) + "/jobs";

    /// <summary>A handler of kind <paramref name="kind"/> running <paramref name="run"/>.</summary>
    private sealed class Handler(string kind, Func<JobContext, Task<string>> run) : IJobHandler
    {
        public string Kind => kind;
        public Task<string> RunAsync(JobContext context) => run(context);
    }

    /// <summary>A server whose own worker is off, so each test drives workers itself.</summary>
    private static Task<TestServer> StartAsync(string backend, Action<ServerOptions>? configure = null) =>
        TestServer.StartAsync(backend, o =>
        {
            o.RunJobs = false;
            o.JobHeartbeatInterval = TimeSpan.FromMilliseconds(50);
            configure?.Invoke(o);
        });

    private static JobStore Store(TestServer s) => s.Server.App.Services.GetRequiredService<JobStore>();

    private static JobWorker Worker(TestServer s, params IJobHandler[] handlers) =>
        new(Store(s), handlers, s.Server.Options, NullLogger<JobWorker>.Instance);

    private static Task<JobDto> EnqueueAsync(TestServer s, string kind, string model = "m") =>
        Store(s).EnqueueAsync(P, kind, model, "1", "{}", "test", "queued by a test");

    private static async Task<JobDto> WaitAsync(TestServer s, string id, Func<JobDto, bool> done)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            var j = await Store(s).GetAsync(P, id);
            if (done(j)) return j;
            if (DateTime.UtcNow > deadline) Assert.Fail($"job {id} did not get there in time; it is {j.State} at {j.Progress}%: {j.Message}");
            await Task.Delay(20);
        }
    }

    [Theory]
    [MemberData(nameof(TestServer.Backends), MemberType = typeof(TestServer))]
    public async Task EachJobIsClaimedOnceHoweverManyWorkersCompete(string backend)
    {
        await using var s = await StartAsync(backend);
        var queued = new List<string>();
        for (int i = 0; i < 24; i++) queued.Add((await EnqueueAsync(s, "test", $"m{i}")).Id);

        var claims = new ConcurrentBag<(string Worker, string Job)>();
        var workers = Enumerable.Range(0, 4).Select(w => Task.Run(async () =>
        {
            while (await Store(s).ClaimAsync($"worker-{w}") is { } job) claims.Add(($"worker-{w}", job.Id));
        })).ToArray();
        await Task.WhenAll(workers);

        Assert.Equal(queued.Order(), claims.Select(c => c.Job).Order());
        var list = await (await s.Admin.GetAsync($"{Jobs}?state=running&limit=100")).ReadAsync<List<JobDto>>();
        Assert.Equal(24, list.Count);
        Assert.All(list, j => Assert.Equal(1, j.Attempts));
        Assert.All(list, j => Assert.Equal(claims.Single(c => c.Job == j.Id).Worker, j.Worker));
        Assert.Null(await Store(s).ClaimAsync("late"));
    }

    [Theory]
    [MemberData(nameof(TestServer.Backends), MemberType = typeof(TestServer))]
    public async Task AFailingJobIsRecordedAndTheNextOneStillRuns(string backend)
    {
        await using var s = await StartAsync(backend);
        var worker = Worker(s,
            new Handler("fail", ctx =>
            {
                ctx.Report(40, "step 2 of 5");
                throw new InvalidOperationException("the disk is full");
            }),
            new Handler("ok", ctx =>
            {
                ctx.Report(50, "half way");
                return Task.FromResult("built 3 things");
            }));
        var failing = await EnqueueAsync(s, "fail");
        var unknown = await EnqueueAsync(s, "no-such-kind");
        var ok = await EnqueueAsync(s, "ok");

        Assert.True(await worker.RunOnceAsync());
        Assert.True(await worker.RunOnceAsync());
        Assert.True(await worker.RunOnceAsync());
        Assert.False(await worker.RunOnceAsync());

        var f = await Store(s).GetAsync(P, failing.Id);
        Assert.Equal(JobStates.Failed, f.State);
        Assert.Equal("InvalidOperationException: the disk is full", f.Error);
        Assert.Equal(40, f.Progress);
        Assert.Equal("failed at 40%: step 2 of 5", f.Message);
        Assert.NotNull(f.FinishedAt);

        var u = await Store(s).GetAsync(P, unknown.Id);
        Assert.Equal(JobStates.Failed, u.State);
        Assert.Contains("no handler for jobs of kind 'no-such-kind' (it runs: fail, ok)", u.Error);

        var good = await Store(s).GetAsync(P, ok.Id);
        Assert.Equal(JobStates.Succeeded, good.State);
        Assert.Equal(100, good.Progress);
        Assert.Equal("built 3 things", good.Message);
        Assert.Null(good.Error);

        var audit = await (await s.Admin.GetAsync($"{ApiRoutes.Audit}?project={P}&limit=50")).ReadAsync<List<AuditEntryDto>>();
        Assert.Contains(audit, e => e.Action == "job.failed" && e.Target == failing.Id && e.Detail.Contains("the disk is full", StringComparison.Ordinal));
        Assert.Contains(audit, e => e.Action == "job.succeeded" && e.Target == ok.Id);
    }

    [Theory]
    [MemberData(nameof(TestServer.Backends), MemberType = typeof(TestServer))]
    public async Task AnAbandonedJobIsRequeuedToResumeAndFailedWhenItsAttemptsAreSpent(string backend)
    {
        await using var s = await StartAsync(backend, o =>
        {
            o.JobStaleAfter = TimeSpan.FromMilliseconds(300);
            o.JobMaxAttempts = 2;
        });
        var store = Store(s);
        var job = await EnqueueAsync(s, "test");

        // A replica claims it and dies (no heartbeat, no finish).
        Assert.Equal(job.Id, (await store.ClaimAsync("replica-a"))?.Id);
        Assert.Equal(0, await store.RecoverStaleAsync()); // still fresh
        await Task.Delay(400);
        Assert.Equal(1, await store.RecoverStaleAsync());
        var requeued = await store.GetAsync(P, job.Id);
        Assert.Equal(JobStates.Queued, requeued.State);
        Assert.StartsWith("requeued to resume: worker replica-a stopped sending heartbeats", requeued.Message);
        Assert.Equal(HeartbeatResult.Lost, await store.HeartbeatAsync(job.Id, "replica-a", 10, "late")); // the old owner learns it lost the job
        Assert.False(await store.FinishAsync(job.Id, "replica-a", JobStates.Succeeded, 100, "late", null));

        // The second attempt dies too: no attempts left, so it fails with the reason.
        var second = await store.ClaimAsync("replica-b");
        Assert.Equal(2, second?.Attempts);
        await Task.Delay(400);
        Assert.Equal(1, await store.RecoverStaleAsync());
        var failed = await store.GetAsync(P, job.Id);
        Assert.Equal(JobStates.Failed, failed.State);
        Assert.Contains("abandoned: worker replica-b stopped sending heartbeats", failed.Error);
        Assert.Contains("attempt 2 of 2", failed.Error);
    }

    [Theory]
    [MemberData(nameof(TestServer.Backends), MemberType = typeof(TestServer))]
    public async Task JobsCanBeCancelledQueuedOrRunning(string backend)
    {
        await using var s = await StartAsync(backend);
        var started = new TaskCompletionSource();
        var worker = Worker(s, new Handler("slow", async ctx =>
        {
            for (int step = 1; ; step++)
            {
                ctx.Report(step, $"step {step}");
                started.TrySetResult();
                await Task.Delay(20, ctx.Cancellation);
            }
        }));

        var queued = await EnqueueAsync(s, "slow");
        var r = await s.Admin.PostAsync($"{Jobs}/{queued.Id}/cancel", null);
        var cancelled = await r.ReadAsync<JobDto>();
        Assert.Equal(JobStates.Cancelled, cancelled.State);
        Assert.Contains("before it started", cancelled.Message);
        Assert.False(await worker.RunOnceAsync()); // nothing left to claim

        var running = await EnqueueAsync(s, "slow");
        var run = worker.RunOnceAsync();
        await started.Task;
        var asked = await (await s.Admin.PostAsync($"{Jobs}/{running.Id}/cancel", null)).ReadAsync<JobDto>();
        Assert.True(asked.CancelRequested);
        Assert.True(await run);
        var done = await Store(s).GetAsync(P, running.Id);
        Assert.Equal(JobStates.Cancelled, done.State);
        Assert.StartsWith("cancelled at ", done.Message);

        var again = await s.Admin.PostAsync($"{Jobs}/{running.Id}/cancel", null);
        Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);
        Assert.Contains("already cancelled", (await Optimization.OptimizationApi.ProblemAsync(again)).Detail);
    }

    [Theory]
    [MemberData(nameof(TestServer.Backends), MemberType = typeof(TestServer))]
    public async Task StoppingTheServerPutsTheRunningJobBackToResume(string backend)
    {
        await using var s = await StartAsync(backend);
        var started = new TaskCompletionSource();
        var worker = Worker(s, new Handler("slow", async ctx =>
        {
            ctx.Report(30, "building variant 2 of 5");
            started.TrySetResult();
            await Task.Delay(Timeout.Infinite, ctx.Cancellation);
            return "never";
        }), new Handler("ok", _ => Task.FromResult("resumed and done")));
        var job = await EnqueueAsync(s, "slow");
        using var stopping = new CancellationTokenSource();
        var run = worker.RunOnceAsync(stopping.Token);
        await started.Task;
        await WaitAsync(s, job.Id, j => j.Progress == 30); // the heartbeat wrote the progress
        await stopping.CancelAsync();
        await run;

        var back = await Store(s).GetAsync(P, job.Id);
        Assert.Equal(JobStates.Queued, back.State);
        Assert.Equal(0, back.Attempts); // an orderly stop does not use up an attempt
        Assert.Contains("interrupted at 30% (building variant 2 of 5) because the server stopped", back.Message);

        // The next start picks it up again.
        await using (var c = await s.Server.Database.OpenAsync())
            await c.ExecuteAsync("UPDATE jobs SET kind = 'ok' WHERE id = @id", new { id = job.Id });
        Assert.True(await worker.RunOnceAsync());
        Assert.Equal(JobStates.Succeeded, (await Store(s).GetAsync(P, job.Id)).State);
    }

    [Fact]
    public async Task TheApiListsFiltersAndExplainsUnknownJobs()
    {
        await using var s = await StartAsync("sqlite");
        var a = await EnqueueAsync(s, "test", "alpha");
        await EnqueueAsync(s, "test", "beta");
        var onlyAlpha = await (await s.Admin.GetAsync($"{Jobs}?model=alpha")).ReadAsync<List<JobDto>>();
        Assert.Equal([a.Id], onlyAlpha.Select(j => j.Id));
        Assert.Equal(2, (await (await s.Admin.GetAsync(Jobs)).ReadAsync<List<JobDto>>()).Count);
        Assert.Equal(a.Id, (await (await s.Admin.GetAsync($"{Jobs}/{a.Id}")).ReadAsync<JobDto>()).Id);

        var missing = await s.Admin.GetAsync($"{Jobs}/job_nope");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        var badState = await s.Admin.GetAsync($"{Jobs}?state=done");
        Assert.Equal(HttpStatusCode.BadRequest, badState.StatusCode);
        var problem = await Optimization.OptimizationApi.ProblemAsync(badState);
        Assert.Equal("state", problem.Field);
        Assert.Contains("queued, running, succeeded, failed, cancelled", problem.Detail);
    }
}
