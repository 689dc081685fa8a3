using System.Text;
using TinyOps.Protocol;
using TinyOps.Protocol.Management;
using TinyOps.Server.Access;
using TinyOps.Server.Hosting;
using TinyOps.Server.Jobs;
using TinyOps.Server.Registry;

namespace TinyOps.Server.Optimization;

/// <summary>
/// The Optimization feature (issue 5): a recipe per model, evaluation sets per project, and the recipe job that turns
/// every pushed version into evaluated, gated variants with lineage.
/// <code>
/// PUT|GET|DELETE /projects/{p}/models/{m}/recipe          YAML or JSON body; 400 naming the field when it does not validate
/// POST           /projects/{p}/models/{m}/versions/{v}/optimize   queue the recipe for an existing version (202, the job)
/// POST|GET       /projects/{p}/evaluation-sets            register (fashion-mnist reference or uploaded tensors), list
/// GET            /projects/{p}/evaluation-sets/{name}
/// </code>
/// </summary>
public static class OptimizationFeature
{
    public static void AddServices(IServiceCollection services)
    {
        services.AddSingleton<EvaluationSetStore>();
        services.AddSingleton<RecipeStore>();
        services.AddSingleton<IVersionPushedHook>(sp => sp.GetRequiredService<RecipeStore>());
        services.AddSingleton<IJobHandler, RecipeJob>();
    }

    public static void Map(WebApplication app)
    {
        var g = app.MapGroup(ApiRoutes.Projects + "/{project}").WithTags("optimization");

        g.MapGet("/models/{model}/recipe", async (HttpContext http, string project, string model, RecipeStore recipes) =>
        {
            UserContext.From(http).RequireRead(project);
            return await recipes.GetAsync(project, model, http.RequestAborted);
        });

        g.MapPut("/models/{model}/recipe", async (HttpContext http, string project, string model, RecipeStore recipes) =>
        {
            string text = await ReadTextAsync(http, RecipeStore.MaxRecipeBytes);
            return await recipes.SetAsync(UserContext.From(http), project, model, text, http.RequestAborted);
        }).Accepts<string>("application/yaml", "application/json", "text/plain").Produces<RecipeDto>();

        g.MapDelete("/models/{model}/recipe", async (HttpContext http, string project, string model, RecipeStore recipes) =>
        {
            await recipes.DeleteAsync(UserContext.From(http), project, model, http.RequestAborted);
            return Results.NoContent();
        });

        g.MapPost("/models/{model}/versions/{version}/optimize", async (HttpContext http, string project, string model, string version, RecipeStore recipes) =>
        {
            var job = await recipes.RunAsync(UserContext.From(http), project, model, version, http.RequestAborted);
            return Results.Accepted($"{ApiRoutes.Project(project)}/jobs/{job.Id}", job);
        }).Produces<JobDto>(StatusCodes.Status202Accepted);

        g.MapGet("/evaluation-sets", async (HttpContext http, string project, EvaluationSetStore sets) =>
        {
            UserContext.From(http).RequireRead(project);
            return await sets.ListAsync(project, http.RequestAborted);
        });

        g.MapGet("/evaluation-sets/{name}", async (HttpContext http, string project, string name, EvaluationSetStore sets) =>
        {
            UserContext.From(http).RequireRead(project);
            return await sets.GetAsync(project, name, http.RequestAborted);
        });

        g.MapPost("/evaluation-sets", async (HttpContext http, string project, CreateEvaluationSetRequest req, EvaluationSetStore sets) =>
        {
            var created = await sets.CreateAsync(UserContext.From(http), project, req, http.RequestAborted);
            return Results.Created($"{ApiRoutes.Project(project)}/evaluation-sets/{Uri.EscapeDataString(created.Name)}", created);
        });
    }

    public static Task StartAsync(IServiceProvider services, CancellationToken ct)
    {
        _ = services;
        return Task.CompletedTask;
    }

    /// <summary>The request body as UTF-8 text, at most <paramref name="limit"/> bytes.</summary>
    private static async Task<string> ReadTextAsync(HttpContext http, int limit)
    {
        if (http.Request.ContentLength > limit)
            throw new ApiException(413, "payload too large", $"the recipe is {http.Request.ContentLength} bytes; at most {limit} are accepted");
        using var ms = new MemoryStream();
        var buffer = new byte[81920];
        int n;
        while ((n = await http.Request.Body.ReadAsync(buffer, http.RequestAborted)) > 0)
        {
            if (ms.Length + n > limit) throw new ApiException(413, "payload too large", $"the recipe is longer than {limit} bytes");
            ms.Write(buffer, 0, n);
        }
        try { return new UTF8Encoding(false, true).GetString(ms.GetBuffer(), 0, (int)ms.Length); }
        catch (DecoderFallbackException) { throw ApiException.BadRequest("the recipe is not UTF-8 text; send YAML or JSON"); }
    }
}
