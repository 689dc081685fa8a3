namespace TinyOps.Server.Registry;

/// <summary>The Registry feature: its services, endpoints and background work.</summary>
public static class RegistryFeature
{
    public static void AddServices(IServiceCollection services)
    {
        services.AddSingleton<SigningKeyRing>();
        services.AddSingleton<VariantQueries>();
        services.AddSingleton<RegistryService>();
    }

    public static void Map(WebApplication app) => RegistryEndpoints.Map(app);

    /// <summary>Makes sure the registry has a signing key before the first request.</summary>
    public static Task StartAsync(IServiceProvider services, CancellationToken ct) =>
        services.GetRequiredService<SigningKeyRing>().EnsureAsync(ct);
}
