namespace TinyOps.Protocol.Management;

/// <summary>Roles, from most to least powerful: admin (everything), developer (mutate within its projects), viewer (read).</summary>
public static class Roles
{
    public const string Admin = "admin";
    public const string Developer = "developer";
    public const string Viewer = "viewer";
    public static readonly string[] All = [Admin, Developer, Viewer];
}

public sealed record ProjectDto(string Name, string Description, DateTimeOffset CreatedAt);

public sealed record CreateProjectRequest(string Name, string Description = "");

/// <summary>An API token's public view; the secret is shown once, at creation.</summary>
public sealed record TokenDto(string Id, string Name, string Role, string? Project, DateTimeOffset CreatedAt, bool Revoked);

/// <summary>Project null means all projects (admins only).</summary>
public sealed record CreateTokenRequest(string Name, string Role, string? Project);

public sealed record CreatedTokenDto(TokenDto Token, string Secret);

public sealed record WhoamiDto(string TokenId, string Name, string Role, string? Project);

public sealed record CreateEnrollmentTokenRequest(int Uses = 1, int ValidHours = 24, IReadOnlyList<string>? Tags = null);

public sealed record EnrollmentTokenDto(string Token, string Project, int Uses, DateTimeOffset ExpiresAt);

public sealed record AuditEntryDto(long Id, DateTimeOffset At, string Actor, string Action, string Target, string? Project, string Detail);
