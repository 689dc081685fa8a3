using Microsoft.Extensions.DependencyInjection.Extensions;
using TinyOps.Protocol;
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
        // Device requests are signed over their body, which minimal APIs read while binding parameters, before the
        // endpoint filter runs: keep device-API bodies rewindable so DeviceAuthFilter can hash them.
        app.Use(async (http, next) =>
        {
            if (http.Request.Path.StartsWithSegments(ApiRoutes.Prefix + "/device", StringComparison.Ordinal))
                http.Request.EnableBuffering();
            await next(http);
        });
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
