namespace TinyOps.Server.Fleet;

/// <summary>The Fleet feature: its services, endpoints and background work.</summary>
public static class FleetFeature
{
    public static void AddServices(IServiceCollection services)
    {
        _ = services;
    }

    public static void Map(WebApplication app)
    {
        _ = app;
    }

    public static Task StartAsync(IServiceProvider services, CancellationToken ct)
    {
        _ = services;
        return Task.CompletedTask;
    }
}
