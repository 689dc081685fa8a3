using TinyOps.Protocol.Management;
using TinyOps.Server.Hosting;

namespace TinyOps.Server.Access;

/// <summary>The authenticated caller of a management request.</summary>
public sealed record UserContext(string TokenId, string Name, string Role, string? Project)
{
    public const string ItemKey = "tinyops.user";

    public string Actor => $"token:{Name}";

    public bool IsAdmin => Role == Roles.Admin;

    public bool CanRead(string project) => IsAdmin || Project is null || Project == project;

    public bool CanWrite(string project) => Role != Roles.Viewer && CanRead(project);

    public void RequireRead(string project)
    {
        if (!CanRead(project)) throw ApiException.Forbidden($"token '{Name}' is scoped to project '{Project}' and cannot read project '{project}'");
    }

    public void RequireWrite(string project)
    {
        RequireRead(project);
        if (Role == Roles.Viewer) throw ApiException.Forbidden($"token '{Name}' has role viewer, which cannot change anything");
    }

    public void RequireAdmin()
    {
        if (!IsAdmin) throw ApiException.Forbidden($"token '{Name}' has role {Role}; this needs admin");
    }

    public static UserContext From(HttpContext http) =>
        http.Items[ItemKey] as UserContext ?? throw ApiException.Unauthorized("an API token is required (Authorization: Bearer <token>)");
}
