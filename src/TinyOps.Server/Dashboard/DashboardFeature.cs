using System.Reflection;

namespace TinyOps.Server.Dashboard;

/// <summary>The web dashboard: static files embedded in the server, served at / and /dashboard/*.</summary>
public static class DashboardFeature
{
    private static readonly Dictionary<string, string> ContentTypes = new(StringComparer.OrdinalIgnoreCase)
    {
        [".html"] = "text/html; charset=utf-8",
        [".js"] = "text/javascript; charset=utf-8",
        [".css"] = "text/css; charset=utf-8",
        [".svg"] = "image/svg+xml",
    };

    public static void AddServices(IServiceCollection services) => _ = services;

    public static void Map(WebApplication app)
    {
        app.MapGet("/", () => Serve("index.html")).ExcludeFromDescription();
        app.MapGet("/dashboard/{*file}", (string file) => Serve(file)).ExcludeFromDescription();
    }

    public static Task StartAsync(IServiceProvider services, CancellationToken ct) => Task.CompletedTask;

    private static IResult Serve(string file)
    {
        var asm = Assembly.GetExecutingAssembly();
        var stream = asm.GetManifestResourceStream("dashboard/" + file);
        if (stream is null) return Results.NotFound();
        var type = ContentTypes.GetValueOrDefault(Path.GetExtension(file), "application/octet-stream");
        return Results.Stream(stream, type);
    }
}
