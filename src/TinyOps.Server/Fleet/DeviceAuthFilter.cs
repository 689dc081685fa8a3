using System.Security.Cryptography;
using System.Text.Json;
using Dapper;
using TinyOps.Protocol;
using TinyOps.Protocol.Devices;
using TinyOps.Server.Hosting;
using TinyOps.Server.Storage;

namespace TinyOps.Server.Fleet;

/// <summary>
/// Authenticates device-API requests: the device id header names a registered, unrevoked device; the signature
/// over the canonical request string verifies with that device's public key; the timestamp is within the allowed
/// clock skew; the nonce was not used before (replays are refused).
/// </summary>
public sealed class DeviceAuthFilter(Database db) : IEndpointFilter
{
    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var http = context.HttpContext;
        // DeviceAuthMiddleware normally authenticated the request already, before parameter binding read the body.
        if (http.Items[DeviceContext.ItemKey] is not DeviceContext)
            http.Items[DeviceContext.ItemKey] = await AuthenticateAsync(http);
        return await next(context);
    }

    public async Task<DeviceContext> AuthenticateAsync(HttpContext http)
    {
        var h = http.Request.Headers;
        string? deviceId = h[DeviceAuth.DeviceHeader];
        string? ts = h[DeviceAuth.TimestampHeader];
        string? nonce = h[DeviceAuth.NonceHeader];
        string? signature = h[DeviceAuth.SignatureHeader];
        if (string.IsNullOrEmpty(deviceId) || string.IsNullOrEmpty(ts) || string.IsNullOrEmpty(nonce) || string.IsNullOrEmpty(signature))
            throw ApiException.Unauthorized($"device requests need the headers {DeviceAuth.DeviceHeader}, {DeviceAuth.TimestampHeader}, {DeviceAuth.NonceHeader} and {DeviceAuth.SignatureHeader}");
        if (!long.TryParse(ts, out long tsMs))
            throw ApiException.Unauthorized($"{DeviceAuth.TimestampHeader} must be unix milliseconds");
        var skew = TimeSpan.FromMilliseconds(Math.Abs(Database.Now() - tsMs));
        if (skew > DeviceAuth.MaxClockSkew)
            throw ApiException.Unauthorized($"request timestamp is {skew.TotalSeconds:F0} s away from the server's clock (allowed {DeviceAuth.MaxClockSkew.TotalSeconds:F0} s); fix the device clock");
        if (nonce.Length is < 8 or > 128)
            throw ApiException.Unauthorized("the nonce must be 8 to 128 characters");

        // Read the body for the signature, and keep it readable for the endpoint. Parameter binding may already have
        // read it (FleetFeature makes device-API bodies rewindable), so start from the beginning.
        if (!http.Request.Body.CanSeek) http.Request.EnableBuffering();
        http.Request.Body.Position = 0;
        byte[] body;
        using (var ms = new MemoryStream())
        {
            await http.Request.Body.CopyToAsync(ms, http.RequestAborted);
            body = ms.ToArray();
        }
        http.Request.Body.Position = 0;

        await using var c = await db.OpenAsync(http.RequestAborted);
        var row = await c.QuerySingleOrDefaultAsync<(string Id, string Project, string Name, string PublicKey, string CapabilitiesJson, long Revoked)>(
            "SELECT id, project, name, public_key, capabilities_json, revoked FROM devices WHERE id = @id", new { id = deviceId });
        if (row.Id is null) throw ApiException.Unauthorized($"device '{deviceId}' is not enrolled");

        string canonical = DeviceAuth.CanonicalString(http.Request.Method, http.Request.Path + http.Request.QueryString, tsMs, nonce, body);
        using (var key = ECDsa.Create())
        {
            key.ImportSubjectPublicKeyInfo(Convert.FromBase64String(row.PublicKey), out _);
            if (!DeviceAuth.Verify(key, canonical, signature))
                throw ApiException.Unauthorized($"the request signature does not verify with device '{deviceId}''s key");
        }
        if (row.Revoked != 0) throw ApiException.Forbidden($"device '{deviceId}' has been revoked; enroll it again");

        // Remember the nonce; a second use is a replay. Old nonces fall out once their timestamps are stale anyway.
        long cutoff = Database.Now() - (long)DeviceAuth.MaxClockSkew.TotalMilliseconds * 2;
        int inserted = await c.ExecuteAsync("INSERT INTO device_nonces (device_id, nonce, at) VALUES (@d, @n, @at) ON CONFLICT DO NOTHING",
            new { d = deviceId, n = nonce, at = tsMs });
        if (inserted == 0) throw ApiException.Unauthorized("this request was already received (replayed nonce)");
        if (Random.Shared.Next(64) == 0) await c.ExecuteAsync("DELETE FROM device_nonces WHERE at < @cutoff", new { cutoff });
        await c.ExecuteAsync("UPDATE devices SET last_seen_at = @now WHERE id = @id", new { now = Database.Now(), id = deviceId });

        var caps = JsonSerializer.Deserialize(row.CapabilitiesJson, ProtocolJson.Default.DeviceCapabilities) ?? new DeviceCapabilities();
        return new DeviceContext(row.Id, row.Project, row.Name, caps.DeviceClass);
    }
}

/// <summary>Marks an endpoint of the signed device API (see <see cref="DeviceAuthExtensions.RequireDevice"/>).</summary>
public sealed class RequiresDeviceMetadata
{
    public static readonly RequiresDeviceMetadata Instance = new();
}

/// <summary>
/// Authenticates requests to endpoints marked with <see cref="RequiresDeviceMetadata"/> before parameter binding, so
/// an unsigned or forged request is refused with 401/403 before its body is parsed, and the body is read (for the
/// signature) before binding consumes it.
/// </summary>
public sealed class DeviceAuthMiddleware(RequestDelegate next, Database db)
{
    public async Task InvokeAsync(HttpContext http)
    {
        if (http.GetEndpoint()?.Metadata.GetMetadata<RequiresDeviceMetadata>() is not null)
            http.Items[DeviceContext.ItemKey] = await new DeviceAuthFilter(db).AuthenticateAsync(http);
        await next(http);
    }
}

public static class DeviceAuthExtensions
{
    /// <summary>Requires a signed device request; the endpoint reads the device with <see cref="DeviceContext.From"/>.</summary>
    public static TBuilder RequireDevice<TBuilder>(this TBuilder builder) where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(RequiresDeviceMetadata.Instance).AddEndpointFilterFactory((ctx, next) =>
        {
            var filter = new DeviceAuthFilter(ctx.ApplicationServices.GetRequiredService<Database>());
            return invocation => filter.InvokeAsync(invocation, next);
        });
}
