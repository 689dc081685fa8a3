using Dapper;
using TinyOps.Protocol;
using TinyOps.Protocol.Management;
using TinyOps.Server.Access;
using TinyOps.Server.Hosting;
using TinyOps.Server.Registry;
using TinyOps.Server.Storage;

namespace TinyOps.Server.Fleet;

/// <summary>Fleet management under /api/v1/projects/{project}/devices: list, show, tag, revoke, compatibility.</summary>
public static class DeviceEndpoints
{
    public static void Map(WebApplication app)
    {
        var g = app.MapGroup(ApiRoutes.Projects + "/{project}/devices").WithTags("fleet");

        g.MapGet("", async (HttpContext http, string project, string[]? tag, DeviceStore devices) =>
        {
            UserContext.From(http).RequireRead(project);
            var tags = (tag ?? []).Where(t => !string.IsNullOrWhiteSpace(t)).ToList();
            return await devices.ListAsync(project, tags, ct: http.RequestAborted);
        }).WithSummary("Lists the project's devices; ?tag=a&tag=b keeps those carrying every given tag");

        g.MapGet("/{id}", async (HttpContext http, string project, string id, DeviceStore devices) =>
        {
            UserContext.From(http).RequireRead(project);
            return await devices.RequireAsync(project, id, ct: http.RequestAborted);
        }).WithSummary("A device with its capabilities, reported state, last contact and desired assignment");

        g.MapPut("/{id}/tags", async (HttpContext http, string project, string id, SetTagsRequest req, Database db, DeviceStore devices, AuditLog audit) =>
        {
            var u = UserContext.From(http);
            u.RequireWrite(project);
            var tags = DeviceStore.NormalizeTags(req.Tags);
            await using var c = await db.OpenAsync(http.RequestAborted);
            await using var tx = await db.BeginWriteAsync(c, http.RequestAborted);
            var before = await devices.RequireAsync(project, id, c, http.RequestAborted);
            await c.ExecuteAsync("UPDATE devices SET tags_json = @tags WHERE project = @project AND id = @id",
                new { tags = DeviceStore.TagsJson(tags), project, id }, tx);
            await audit.RecordAsync(u.Actor, "device.tags", id, project,
                $"[{string.Join(", ", before.Tags)}] -> [{string.Join(", ", tags)}]", c, tx);
            await tx.CommitAsync(http.RequestAborted);
            return before with { Tags = tags };
        }).WithSummary("Replaces a device's tags");

        g.MapPost("/{id}/revoke", async (HttpContext http, string project, string id, Database db, DeviceStore devices, AuditLog audit) =>
        {
            var u = UserContext.From(http);
            u.RequireWrite(project);
            await using var c = await db.OpenAsync(http.RequestAborted);
            await using var tx = await db.BeginWriteAsync(c, http.RequestAborted);
            var before = await devices.RequireAsync(project, id, c, http.RequestAborted);
            await c.ExecuteAsync("UPDATE devices SET revoked = 1 WHERE project = @project AND id = @id", new { project, id }, tx);
            await audit.RecordAsync(u.Actor, "device.revoke", id, project, before.Revoked ? $"{before.Name} (already revoked)" : before.Name, c, tx);
            await tx.CommitAsync(http.RequestAborted);
            return before with { Revoked = true };
        }).WithSummary("Revokes a device's credential: every later device call is refused with 403");

        g.MapGet("/{id}/compatibility", async (HttpContext http, string project, string id, string? variant, DeviceStore devices, VariantQueries variants) =>
        {
            UserContext.From(http).RequireRead(project);
            if (string.IsNullOrWhiteSpace(variant)) throw ApiException.BadRequest("the query parameter variant=VARIANTID is required");
            var device = await devices.RequireAsync(project, id, ct: http.RequestAborted);
            var v = await variants.GetVariantAsync(project, variant, ct: http.RequestAborted)
                ?? throw ApiException.NotFound($"project '{project}' has no variant '{variant}'");
            var reasons = Compatibility.Check(device.Capabilities, device.Reported, v);
            return new CompatibilityDto(device.Id, v.Id, reasons.Count == 0, reasons);
        }).WithSummary("Whether a variant can run on the device (operators, planned peak memory vs RAM, artifact vs storage), with reasons");
    }
}
