using System.Security.Cryptography;
using System.Text;
using Dapper;
using TinyOps.Protocol.Management;
using TinyOps.Server.Storage;

namespace TinyOps.Server.Access;

/// <summary>API tokens: "tops_" + 32 random bytes (base64url). Only their SHA-256 is stored.</summary>
public sealed class ApiTokens(Database db)
{
    public static string NewSecret(string prefix) => prefix + Base64Url(RandomNumberGenerator.GetBytes(32));

    public static string Hash(string secret) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(secret)));

    private static string Base64Url(byte[] b) => Convert.ToBase64String(b).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    public async Task<CreatedTokenDto> CreateAsync(string name, string role, string? project, CancellationToken ct = default)
    {
        string secret = NewSecret("tops_");
        string id = "tok_" + Base64Url(RandomNumberGenerator.GetBytes(9));
        long now = Database.Now();
        await using var c = await db.OpenAsync(ct);
        await c.ExecuteAsync("INSERT INTO api_tokens (id, name, role, project, secret_hash, created_at, revoked) VALUES (@id, @name, @role, @project, @hash, @now, 0)",
            new { id, name, role, project, hash = Hash(secret), now });
        return new CreatedTokenDto(new TokenDto(id, name, role, project, Database.ToTime(now), false), secret);
    }

    public async Task<UserContext?> AuthenticateAsync(string secret, CancellationToken ct = default)
    {
        await using var c = await db.OpenAsync(ct);
        var row = await c.QuerySingleOrDefaultAsync<(string Id, string Name, string Role, string? Project, long Revoked)>(
            "SELECT id, name, role, project, revoked FROM api_tokens WHERE secret_hash = @hash", new { hash = Hash(secret) });
        if (row.Id is null || row.Revoked != 0) return null;
        return new UserContext(row.Id, row.Name, row.Role, row.Project);
    }

    public async Task<bool> AnyAsync(CancellationToken ct = default)
    {
        await using var c = await db.OpenAsync(ct);
        return await c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM api_tokens") > 0;
    }

    public async Task<List<TokenDto>> ListAsync(CancellationToken ct = default)
    {
        await using var c = await db.OpenAsync(ct);
        var rows = await c.QueryAsync<(string Id, string Name, string Role, string? Project, long CreatedAt, long Revoked)>(
            "SELECT id, name, role, project, created_at, revoked FROM api_tokens ORDER BY created_at");
        return rows.Select(r => new TokenDto(r.Id, r.Name, r.Role, r.Project, Database.ToTime(r.CreatedAt), r.Revoked != 0)).ToList();
    }

    public async Task<bool> RevokeAsync(string id, CancellationToken ct = default)
    {
        await using var c = await db.OpenAsync(ct);
        return await c.ExecuteAsync("UPDATE api_tokens SET revoked = 1 WHERE id = @id", new { id }) > 0;
    }
}
