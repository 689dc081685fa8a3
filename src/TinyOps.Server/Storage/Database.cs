using System.Data.Common;
using Dapper;

namespace TinyOps.Server.Storage;

/// <summary>
/// The store: one interface, two implementations (SQLite, the embedded default, and PostgreSQL). Features write
/// portable SQL through Dapper (named parameters @x, BIGINT unix-millisecond times, INTEGER 0/1 booleans, JSON
/// in TEXT) and ask the dialect for the few statements that differ.
/// </summary>
public abstract class Database
{
    /// <summary>"sqlite" or "postgres".</summary>
    public abstract string Kind { get; }

    /// <summary>Opens a new connection; callers dispose it.</summary>
    public abstract Task<DbConnection> OpenAsync(CancellationToken ct = default);

    /// <summary>" FOR UPDATE SKIP LOCKED" where row locks exist (PostgreSQL), else empty (SQLite serializes writers).</summary>
    public abstract string ForUpdateSkipLocked { get; }
    /// <summary>" FOR UPDATE" where row locks exist (PostgreSQL), else empty (SQLite serializes writers).</summary>
    public abstract string ForUpdate { get; }

    /// <summary>The column type of an auto-incrementing 64-bit primary key.</summary>
    public abstract string IdentityColumn { get; }

    /// <summary>Starts a transaction that takes the write lock up front (SQLite: BEGIN IMMEDIATE).</summary>
    public abstract Task<DbTransaction> BeginWriteAsync(DbConnection connection, CancellationToken ct = default);

    /// <summary>Creates or upgrades the schema; safe to call from several replicas at once.</summary>
    public async Task MigrateAsync(CancellationToken ct = default)
    {
        await using var c = await OpenAsync(ct);
        await LockForMigrationAsync(c, ct);
        try
        {
            await c.ExecuteAsync("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL PRIMARY KEY, applied_at BIGINT NOT NULL)");
            var applied = (await c.QueryAsync<long>("SELECT version FROM schema_version")).ToHashSet();
            foreach (var (version, sql) in Schema.Migrations(this))
            {
                if (applied.Contains(version)) continue;
                await using var tx = await c.BeginTransactionAsync(ct);
                foreach (var statement in sql.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                    await c.ExecuteAsync(statement, transaction: tx);
                await c.ExecuteAsync("INSERT INTO schema_version (version, applied_at) VALUES (@version, @at)", new { version, at = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() }, tx);
                await tx.CommitAsync(ct);
            }
        }
        finally
        {
            await UnlockForMigrationAsync(c, ct);
        }
    }

    protected virtual Task LockForMigrationAsync(DbConnection c, CancellationToken ct) => Task.CompletedTask;
    protected virtual Task UnlockForMigrationAsync(DbConnection c, CancellationToken ct) => Task.CompletedTask;

    public static long Now() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
    public static DateTimeOffset ToTime(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms);
}
