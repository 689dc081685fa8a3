using System.Data.Common;
using Dapper;
using TinyOps.Protocol.Management;
using TinyOps.Server.Storage;

namespace TinyOps.Server.Access;

/// <summary>Who did what, when: every mutating call writes one entry.</summary>
public sealed class AuditLog(Database db)
{
    public async Task RecordAsync(string actor, string action, string target, string? project, string detail = "", DbConnection? connection = null, DbTransaction? tx = null)
    {
        const string sql = "INSERT INTO audit (at, actor, action, target, project, detail) VALUES (@at, @actor, @action, @target, @project, @detail)";
        var args = new { at = Database.Now(), actor, action, target, project, detail };
        if (connection is not null)
        {
            await connection.ExecuteAsync(sql, args, tx);
            return;
        }
        await using var c = await db.OpenAsync();
        await c.ExecuteAsync(sql, args);
    }

    public async Task<List<AuditEntryDto>> QueryAsync(string? project, int limit, CancellationToken ct = default)
    {
        await using var c = await db.OpenAsync(ct);
        var rows = await c.QueryAsync<(long Id, long At, string Actor, string Action, string Target, string? Project, string Detail)>(
            project is null
                ? "SELECT id, at, actor, action, target, project, detail FROM audit ORDER BY id DESC LIMIT @limit"
                : "SELECT id, at, actor, action, target, project, detail FROM audit WHERE project = @project ORDER BY id DESC LIMIT @limit",
            new { project, limit });
        return rows.Select(r => new AuditEntryDto(r.Id, Database.ToTime(r.At), r.Actor, r.Action, r.Target, r.Project, r.Detail)).ToList();
    }
}
