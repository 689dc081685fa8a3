namespace TinyOps.Server.Fleet;

/// <summary>The authenticated device of a device-API request (set by <see cref="DeviceAuthFilter"/>).</summary>
public sealed record DeviceContext(string DeviceId, string Project, string Name, string DeviceClass)
{
    public const string ItemKey = "tinyops.device";

    public static DeviceContext From(HttpContext http) =>
        http.Items[ItemKey] as DeviceContext ?? throw new InvalidOperationException("the endpoint is missing .RequireDevice()");
}
