namespace TinyOps.Server.Dashboard;

/// <summary>The Dashboard feature: its services, endpoints and background work.</summary>
public static class DashboardFeature
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
