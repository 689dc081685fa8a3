using System.Text.Json;
using TinyOps.Protocol;
using TinyOps.Protocol.Telemetry;
using TinyOps.Server.Access;
using TinyOps.Server.Fleet;
using TinyOps.Server.Hosting;

namespace TinyOps.Server.Telemetry;

/// <summary>The Telemetry feature: idempotent batch upload from devices, and per-device-class summaries.</summary>
public static class TelemetryFeature
{
    public static void AddServices(IServiceCollection services)
    {
        services.AddSingleton<TelemetryStore>();
    }

    public static void Map(WebApplication app)
    {
        // The body is read here, not bound as a parameter: the device filter must see (and hash) it first.
        app.MapPost(ApiRoutes.Telemetry, async (HttpContext http, TelemetryStore store) =>
        {
            var device = DeviceContext.From(http);
            var batch = await JsonSerializer.DeserializeAsync(http.Request.Body, ProtocolJson.Default.TelemetryBatch, http.RequestAborted)
                ?? throw ApiException.BadRequest("the body must be a telemetry batch");
            return await store.IngestAsync(device, batch, http.RequestAborted);
        }).RequireDevice().Accepts<TelemetryBatch>("application/json").Produces<TelemetryAck>().WithTags("telemetry");

        app.MapGet(ApiRoutes.Projects + "/{project}/telemetry/summary", async (HttpContext http, string project, string? model, TelemetryStore store) =>
        {
            UserContext.From(http).RequireRead(project);
            return await store.SummaryAsync(project, model, http.RequestAborted);
        }).WithTags("telemetry");
    }

    public static Task StartAsync(IServiceProvider services, CancellationToken ct)
    {
        _ = services;
        return Task.CompletedTask;
    }
}
