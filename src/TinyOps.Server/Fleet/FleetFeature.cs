using Microsoft.Extensions.DependencyInjection.Extensions;
using TinyOps.Server.Registry;

namespace TinyOps.Server.Fleet;

/// <summary>
/// The Fleet feature: enrollment tokens and device enrollment, the signed device API (sync, artifact download) and
/// fleet management (list, show, tags, revoke, compatibility).
/// </summary>
public static class FleetFeature
{
    public static void AddServices(IServiceCollection services)
    {
        services.AddSingleton<DeviceStore>();
        // The registry feature owns these; registered here too (TryAdd) so the fleet works whichever is built first.
        services.TryAddSingleton<SigningKeyRing>();
        services.TryAddSingleton<VariantQueries>();
    }

    public static void Map(WebApplication app)
    {
        // Authenticates device-API requests after routing and before parameter binding.
        app.UseMiddleware<DeviceAuthMiddleware>();
        EnrollmentEndpoints.Map(app);
        DeviceApiEndpoints.Map(app);
        DeviceEndpoints.Map(app);
    }

    public static async Task StartAsync(IServiceProvider services, CancellationToken ct)
    {
        // Idempotent: loads the registry key, creating the first one on an empty store.
        await services.GetRequiredService<SigningKeyRing>().EnsureAsync(ct);
    }
}
