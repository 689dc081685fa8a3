using TinyOps.Server.Hosting;

namespace TinyOps.Server.Deployments;

/// <summary>
/// Steps every active deployment each <see cref="ServerOptions.RolloutInterval"/>. Deployments are claimed with row
/// locks (FOR UPDATE SKIP LOCKED on PostgreSQL), so several replicas can run it side by side. Stops with the host.
/// </summary>
public sealed class RolloutWorker(DeploymentStore store, ServerOptions options, ILogger<RolloutWorker> log) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.RolloutInterval > TimeSpan.Zero ? options.RolloutInterval : TimeSpan.FromSeconds(2));
        try
        {
            do
            {
                try
                {
                    await store.StepActiveAsync(stoppingToken);
                }
                catch (Exception e) when (!stoppingToken.IsCancellationRequested)
                {
                    // A failed step (e.g. a deadlock victim, a lost connection) is retried on the next tick.
                    log.LogWarning(e, "rollout step failed; retrying in {Interval}", options.RolloutInterval);
                }
            }
            while (await timer.WaitForNextTickAsync(stoppingToken));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }
}
