namespace TinyOps.Protocol;

/// <summary>Every path of the control plane's REST API. The device API and the management API share /api/v1.</summary>
public static class ApiRoutes
{
    public const string Prefix = "/api/v1";

    // Device API: authenticated by the device's key (see DeviceAuth), except enrollment.
    public const string Enroll = Prefix + "/device/enroll";
    public const string Sync = Prefix + "/device/sync";
    public const string Telemetry = Prefix + "/device/telemetry";
    /// <summary>GET {Artifact}/{sha256}: artifact bytes, HTTP Range supported.</summary>
    public const string Artifact = Prefix + "/device/artifacts";

    // Management API: authenticated by a bearer API token with a role.
    public const string Whoami = Prefix + "/whoami";
    public const string Projects = Prefix + "/projects";
    public const string Tokens = Prefix + "/tokens";
    public const string Audit = Prefix + "/audit";
    public const string Health = Prefix + "/health";
    public const string SigningKeys = Prefix + "/signing-keys";

    /// <summary>Per-project resources live under /api/v1/projects/{project}/...</summary>
    public static string Project(string project) => $"{Projects}/{Uri.EscapeDataString(project)}";
}
