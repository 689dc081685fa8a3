using Dapper;
using TinyOps.Protocol;
using TinyOps.Protocol.Management;
using TinyOps.Server.Hosting;
using TinyOps.Server.Storage;

namespace TinyOps.Server.Access;

/// <summary>Projects, API tokens, whoami and the audit log.</summary>
public static class AccessEndpoints
{
    public static void Map(WebApplication app)
    {
        app.MapGet(ApiRoutes.Whoami, (HttpContext http) =>
        {
            var u = UserContext.From(http);
            return new WhoamiDto(u.TokenId, u.Name, u.Role, u.Project);
        }).WithTags("access");

        app.MapGet(ApiRoutes.Projects, async (HttpContext http, Database db) =>
        {
            var u = UserContext.From(http);
            await using var c = await db.OpenAsync();
            var rows = await c.QueryAsync<(string Name, string Description, long CreatedAt)>("SELECT name, description, created_at FROM projects ORDER BY name");
            return rows.Where(r => u.CanRead(r.Name)).Select(r => new ProjectDto(r.Name, r.Description, Database.ToTime(r.CreatedAt))).ToList();
        }).WithTags("access");

        app.MapPost(ApiRoutes.Projects, async (HttpContext http, CreateProjectRequest req, Database db, AuditLog audit) =>
        {
            var u = UserContext.From(http);
            u.RequireAdmin();
            Names.Require(req.Name, "project name");
            await using var c = await db.OpenAsync();
            if (await c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM projects WHERE name = @n", new { n = req.Name }) > 0)
                throw ApiException.Conflict($"project '{req.Name}' already exists");
            long now = Database.Now();
            await c.ExecuteAsync("INSERT INTO projects (name, description, created_at) VALUES (@n, @d, @now)", new { n = req.Name, d = req.Description, now });
            await audit.RecordAsync(u.Actor, "project.create", req.Name, req.Name, connection: c);
            return Results.Created($"{ApiRoutes.Projects}/{req.Name}", new ProjectDto(req.Name, req.Description, Database.ToTime(now)));
        }).WithTags("access");

        app.MapGet(ApiRoutes.Tokens, async (HttpContext http, ApiTokens tokens) =>
        {
            UserContext.From(http).RequireAdmin();
            return await tokens.ListAsync();
        }).WithTags("access");

        app.MapPost(ApiRoutes.Tokens, async (HttpContext http, CreateTokenRequest req, ApiTokens tokens, AuditLog audit, Database db) =>
        {
            var u = UserContext.From(http);
            u.RequireAdmin();
            Names.Require(req.Name, "token name");
            if (!Roles.All.Contains(req.Role)) throw ApiException.BadRequest($"role '{req.Role}' is not one of {string.Join(", ", Roles.All)}");
            if (req.Project is not null)
            {
                await using var c = await db.OpenAsync();
                if (await c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM projects WHERE name = @n", new { n = req.Project }) == 0)
                    throw ApiException.NotFound($"project '{req.Project}' does not exist");
            }
            var created = await tokens.CreateAsync(req.Name, req.Role, req.Project);
            await audit.RecordAsync(u.Actor, "token.create", created.Token.Id, req.Project, $"{req.Name} ({req.Role})");
            return Results.Created($"{ApiRoutes.Tokens}/{created.Token.Id}", created);
        }).WithTags("access");

        app.MapPost(ApiRoutes.Tokens + "/{id}/revoke", async (HttpContext http, string id, ApiTokens tokens, AuditLog audit) =>
        {
            var u = UserContext.From(http);
            u.RequireAdmin();
            if (!await tokens.RevokeAsync(id)) throw ApiException.NotFound($"token '{id}' does not exist");
            await audit.RecordAsync(u.Actor, "token.revoke", id, null);
            return Results.NoContent();
        }).WithTags("access");

        app.MapGet(ApiRoutes.Audit, async (HttpContext http, string? project, int? limit, AuditLog audit) =>
        {
            var u = UserContext.From(http);
            if (project is null && !u.IsAdmin && u.Project is not null) project = u.Project;
            if (project is not null) u.RequireRead(project);
            else u.RequireAdmin();
            return await audit.QueryAsync(project, Math.Clamp(limit ?? 100, 1, 1000));
        }).WithTags("access");
    }
}
