namespace TinyOps.Server.Hosting;

/// <summary>The feature folders: each adds its services, maps its endpoints and starts its background work.</summary>
internal static class Features
{
    public static void AddServices(IServiceCollection services)
    {
        Registry.RegistryFeature.AddServices(services);
        Fleet.FleetFeature.AddServices(services);
        Deployments.DeploymentsFeature.AddServices(services);
        Telemetry.TelemetryFeature.AddServices(services);
        Jobs.JobsFeature.AddServices(services);
        Optimization.OptimizationFeature.AddServices(services);
        Dashboard.DashboardFeature.AddServices(services);
    }

    public static void Map(WebApplication app)
    {
        Registry.RegistryFeature.Map(app);
        Fleet.FleetFeature.Map(app);
        Deployments.DeploymentsFeature.Map(app);
        Telemetry.TelemetryFeature.Map(app);
        Jobs.JobsFeature.Map(app);
        Optimization.OptimizationFeature.Map(app);
        Dashboard.DashboardFeature.Map(app);
    }

    public static async Task StartAsync(IServiceProvider services, CancellationToken ct)
    {
        await Registry.RegistryFeature.StartAsync(services, ct);
        await Fleet.FleetFeature.StartAsync(services, ct);
        await Deployments.DeploymentsFeature.StartAsync(services, ct);
        await Telemetry.TelemetryFeature.StartAsync(services, ct);
        await Jobs.JobsFeature.StartAsync(services, ct);
        await Optimization.OptimizationFeature.StartAsync(services, ct);
        await Dashboard.DashboardFeature.StartAsync(services, ct);
    }
}
