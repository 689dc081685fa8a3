using System.Security.Cryptography;
using TinyOps.Protocol.Management;
using TinyOps.Server.Hosting;

namespace TinyOps.Server.Jobs;

/// <summary>
/// Runs background jobs one at a time on this replica: recovers abandoned jobs, claims the oldest queued one (row
/// locks, so each job runs once however many replicas there are), runs its handler while a heartbeat keeps it alive,
/// writes its progress and notices cancel requests, and records how it ended. A job that fails is recorded with its
/// error and the next one runs. When the server stops, the running job is put back in the queue to resume.
/// </summary>
public sealed class JobWorker : BackgroundService
{
    private readonly JobStore _store;
    private readonly Dictionary<string, IJobHandler> _handlers;
    private readonly ServerOptions _options;
    private readonly ILogger<JobWorker> _log;

    public JobWorker(JobStore store, IEnumerable<IJobHandler> handlers, ServerOptions options, ILogger<JobWorker> log)
    {
        _store = store;
        _handlers = handlers.ToDictionary(h => h.Kind, StringComparer.Ordinal);
        _options = options;
        _log = log;
    }

    /// <summary>This replica's name in the jobs table (host, process, random suffix).</summary>
    public string Name { get; } = $"{Environment.MachineName}:{Environment.ProcessId}:{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3))}";

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!_options.RunJobs) return;
        var poll = _options.JobPollInterval > TimeSpan.Zero ? _options.JobPollInterval : TimeSpan.FromSeconds(1);
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                try
                {
                    await _store.RecoverStaleAsync(stoppingToken);
                    while (await RunOnceAsync(stoppingToken)) { }
                }
                catch (Exception e) when (!stoppingToken.IsCancellationRequested)
                {
                    // The store was unreachable (a lost connection, a deadlock victim): try again on the next tick.
                    _log.LogWarning(e, "job worker {Worker}: {Message}; retrying in {Interval}", Name, e.Message, poll);
                }
                await Task.Delay(poll, stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>Claims and runs one job; false when none was queued.</summary>
    public async Task<bool> RunOnceAsync(CancellationToken stopping = default)
    {
        var job = await _store.ClaimAsync(Name, stopping);
        if (job is null) return false;
        await RunAsync(job, stopping);
        return true;
    }

    private async Task RunAsync(ClaimedJob job, CancellationToken stopping)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        var context = new JobContext(job, cts.Token);
        bool cancelRequested = false, lost = false;
        using var heartbeatStop = new CancellationTokenSource();
        var heartbeat = Task.Run(async () =>
        {
            var interval = _options.JobHeartbeatInterval > TimeSpan.Zero ? _options.JobHeartbeatInterval : TimeSpan.FromSeconds(1);
            while (!heartbeatStop.IsCancellationRequested)
            {
                try
                {
                    await Task.Delay(interval, heartbeatStop.Token);
                    var (progress, message, changed) = context.Take();
                    var result = await _store.HeartbeatAsync(job.Id, Name, changed ? progress : null, changed ? message : null, heartbeatStop.Token);
                    if (result == HeartbeatResult.Continue) continue;
                    if (result == HeartbeatResult.CancelRequested) cancelRequested = true;
                    else lost = true;
                    await cts.CancelAsync();
                    return;
                }
                catch (OperationCanceledException) when (heartbeatStop.IsCancellationRequested)
                {
                    return;
                }
                catch (Exception e)
                {
                    _log.LogWarning(e, "job {Job}: heartbeat failed ({Message}); trying again", job.Id, e.Message);
                }
            }
        });

        string state, message;
        string? error = null;
        try
        {
            if (!_handlers.TryGetValue(job.Kind, out var handler))
                throw new JobException($"this server has no handler for jobs of kind '{job.Kind}' (it runs: {string.Join(", ", _handlers.Keys)})");
            message = await handler.RunAsync(context);
            state = JobStates.Succeeded;
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            state = JobStates.Cancelled;
            message = "";
        }
        catch (Exception e)
        {
            state = JobStates.Failed;
            message = "failed";
            error = e is JobException or ApiException || e.GetType().Namespace?.StartsWith("TinyOps", StringComparison.Ordinal) == true
                ? e.Message
                : $"{e.GetType().Name}: {e.Message}";
            _log.LogInformation("job {Job} ({Kind} for {Model}:{Version}) failed: {Error}", job.Id, job.Kind, job.Model, job.Version, error);
        }
        await heartbeatStop.CancelAsync();
        await heartbeat;

        var last = context.Take();
        if (lost) return; // another replica took it over (stale) or it was failed; nothing of ours to write
        if (state == JobStates.Cancelled && !cancelRequested)
        {
            // The server is stopping: put the job back so the next start (or another replica) resumes it.
            await _store.RequeueAsync(job.Id, Name, $"interrupted at {last.Progress}% ({last.Message}) because the server stopped; it resumes at the next start", CancellationToken.None);
            return;
        }
        if (state == JobStates.Cancelled) message = $"cancelled at {last.Progress}% ({last.Message}); what was registered before stays";
        await _store.FinishAsync(job.Id, Name, state, state == JobStates.Succeeded ? 100 : last.Progress, state == JobStates.Failed ? $"failed at {last.Progress}%: {last.Message}" : message, error, CancellationToken.None);
    }
}
