using Microsoft.Extensions.DependencyInjection.Extensions;
using TinyOps.Protocol;
using TinyOps.Protocol.Management;
using TinyOps.Server.Access;
using TinyOps.Server.Registry;

namespace TinyOps.Server.Deployments;

/// <summary>
/// The Deployments feature: a model version (or alias) rolled out to the devices matching a tag selector, with the
/// best fitting variant per device, a canary stage and then all; pause, resume, abort, promote; the rollout worker.
/// </summary>
public static class DeploymentsFeature
{
    public static void AddServices(IServiceCollection services)
    {
        services.TryAddSingleton<VariantQueries>();
        services.AddSingleton<DeploymentStore>();
        services.AddSingleton<RolloutWorker>();
        services.AddHostedService(sp => sp.GetRequiredService<RolloutWorker>());
    }

    public static void Map(WebApplication app)
    {
        var g = app.MapGroup(ApiRoutes.Projects + "/{project}/deployments").WithTags("deployments");

        g.MapPost("", async (HttpContext http, string project, CreateDeploymentRequest req, DeploymentStore store) =>
        {
            var created = await store.CreateAsync(UserContext.From(http), project, req, http.RequestAborted);
            return Results.Created($"{ApiRoutes.Project(project)}/deployments/{created.Id}", created);
        });

        g.MapGet("", async (HttpContext http, string project, string? status, int? limit, DeploymentStore store) =>
            await store.ListAsync(UserContext.From(http), project, status, Math.Clamp(limit ?? 100, 1, 1000), http.RequestAborted));

        g.MapGet("/{id}", async (HttpContext http, string project, string id, DeploymentStore store) =>
            await store.GetAsync(UserContext.From(http), project, id, http.RequestAborted));

        g.MapPost("/{id}/pause", async (HttpContext http, string project, string id, DeploymentStore store) =>
            await store.PauseAsync(UserContext.From(http), project, id, http.RequestAborted));

        g.MapPost("/{id}/resume", async (HttpContext http, string project, string id, DeploymentStore store) =>
            await store.ResumeAsync(UserContext.From(http), project, id, http.RequestAborted));

        g.MapPost("/{id}/abort", async (HttpContext http, string project, string id, DeploymentStore store) =>
            await store.AbortAsync(UserContext.From(http), project, id, http.RequestAborted));

        g.MapPost("/{id}/promote", async (HttpContext http, string project, string id, DeploymentStore store) =>
            await store.PromoteAsync(UserContext.From(http), project, id, http.RequestAborted));
    }

    /// <summary>The rollout worker is a hosted service: the host starts it with the app and stops it on shutdown.</summary>
    public static Task StartAsync(IServiceProvider services, CancellationToken ct)
    {
        _ = services;
        return Task.CompletedTask;
    }
}
