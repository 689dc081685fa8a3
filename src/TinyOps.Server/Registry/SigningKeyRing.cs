using Dapper;
using TinyOps.Protocol.Manifests;
using TinyOps.Server.Storage;
using TinyOps.Trust.Signing;

namespace TinyOps.Server.Registry;

/// <summary>
/// The registry's signing keys. The newest key signs; older keys stay published so their signatures keep
/// verifying. A rotated key is endorsed by the key before it, so devices can extend their trust.
/// </summary>
public sealed class SigningKeyRing(Database db)
{
    private readonly SemaphoreSlim _lock = new(1, 1);
    private SigningKey? _current;

    /// <summary>Creates the first key if the store has none, and loads the current one.</summary>
    public async Task EnsureAsync(CancellationToken ct = default)
    {
        await _lock.WaitAsync(ct);
        try
        {
            await using var c = await db.OpenAsync(ct);
            var row = await LatestAsync(c);
            if (row is null)
            {
                var key = SigningKey.Generate(DateTimeOffset.UtcNow);
                await c.ExecuteAsync("INSERT INTO signing_keys (key_id, public_key, private_key, created_at, retired) VALUES (@id, @pub, @priv, @at, 0)",
                    new { id = key.KeyId, pub = key.PublicKey, priv = key.ExportPkcs8(), at = key.CreatedAt.ToUnixTimeMilliseconds() });
                _current = key;
                return;
            }
            _current = SigningKey.Import(row.Value.PrivateKey, Database.ToTime(row.Value.CreatedAt));
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>The key that signs now (reloaded, so a rotation by another replica is picked up).</summary>
    public async Task<SigningKey> CurrentAsync(CancellationToken ct = default)
    {
        await using var c = await db.OpenAsync(ct);
        var row = await LatestAsync(c) ?? throw new InvalidOperationException("no signing key; EnsureAsync was not called");
        var current = _current;
        if (current is not null && current.KeyId == row.KeyId) return current;
        current = SigningKey.Import(row.PrivateKey, Database.ToTime(row.CreatedAt));
        _current = current;
        return current;
    }

    /// <summary>Adds a new signing key endorsed by the current one; older keys remain valid for verification.</summary>
    public async Task<SigningKeyInfo> RotateAsync(CancellationToken ct = default)
    {
        await _lock.WaitAsync(ct);
        try
        {
            var old = await CurrentAsync(ct);
            var next = SigningKey.Generate(DateTimeOffset.UtcNow.AddMilliseconds(1));
            string endorsement = old.Endorse(next);
            await using var c = await db.OpenAsync(ct);
            await c.ExecuteAsync("INSERT INTO signing_keys (key_id, public_key, private_key, created_at, retired, endorsed_by, endorsement) VALUES (@id, @pub, @priv, @at, 0, @by, @e)",
                new { id = next.KeyId, pub = next.PublicKey, priv = next.ExportPkcs8(), at = Math.Max(next.CreatedAt.ToUnixTimeMilliseconds(), old.CreatedAt.ToUnixTimeMilliseconds() + 1), by = old.KeyId, e = endorsement });
            _current = next;
            return (await PublishedAsync(ct)).Single(k => k.KeyId == next.KeyId);
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>Every key's public half, oldest first, with endorsements.</summary>
    public async Task<List<SigningKeyInfo>> PublishedAsync(CancellationToken ct = default)
    {
        await using var c = await db.OpenAsync(ct);
        var rows = await c.QueryAsync<(string KeyId, string PublicKey, long CreatedAt, long Retired, string? EndorsedBy, string? Endorsement)>(
            "SELECT key_id, public_key, created_at, retired, endorsed_by, endorsement FROM signing_keys ORDER BY created_at");
        return rows.Select(r => new SigningKeyInfo
        {
            KeyId = r.KeyId,
            PublicKey = r.PublicKey,
            CreatedAt = Database.ToTime(r.CreatedAt),
            Retired = r.Retired != 0,
            EndorsedBy = r.EndorsedBy,
            Endorsement = r.Endorsement,
        }).ToList();
    }

    private static async Task<(string KeyId, string PrivateKey, long CreatedAt)?> LatestAsync(System.Data.Common.DbConnection c)
    {
        var rows = await c.QueryAsync<(string KeyId, string PrivateKey, long CreatedAt)>(
            "SELECT key_id, private_key, created_at FROM signing_keys WHERE retired = 0 ORDER BY created_at DESC LIMIT 1");
        foreach (var r in rows) return r;
        return null;
    }
}
