using TinyOps.Protocol;
using TinyOps.Server.Access;

namespace TinyOps.Server.Jobs;

/// <summary>
/// The Jobs feature: the jobs table, the worker that runs queued jobs (handlers come from other features, e.g. recipe
/// runs), and the API to follow and cancel them: GET /projects/{p}/jobs, GET /projects/{p}/jobs/{id}, POST .../cancel.
/// </summary>
public static class JobsFeature
{
    public static void AddServices(IServiceCollection services)
    {
        services.AddSingleton<JobStore>();
        services.AddSingleton<JobWorker>();
        services.AddHostedService(sp => sp.GetRequiredService<JobWorker>());
    }

    public static void Map(WebApplication app)
    {
        var g = app.MapGroup(ApiRoutes.Projects + "/{project}/jobs").WithTags("jobs");

        g.MapGet("", async (HttpContext http, string project, string? state, string? model, string? version, int? limit, JobStore store) =>
        {
            UserContext.From(http).RequireRead(project);
            return await store.ListAsync(project, state, model, version, Math.Clamp(limit ?? 100, 1, 1000), http.RequestAborted);
        });

        g.MapGet("/{id}", async (HttpContext http, string project, string id, JobStore store) =>
        {
            UserContext.From(http).RequireRead(project);
            return await store.GetAsync(project, id, http.RequestAborted);
        });

        g.MapPost("/{id}/cancel", async (HttpContext http, string project, string id, JobStore store) =>
            await store.CancelAsync(UserContext.From(http), project, id, http.RequestAborted));
    }

    /// <summary>The worker is a hosted service: the host starts it with the app and stops it on shutdown.</summary>
    public static Task StartAsync(IServiceProvider services, CancellationToken ct)
    {
        _ = services;
        return Task.CompletedTask;
    }
}
