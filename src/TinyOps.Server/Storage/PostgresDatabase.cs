using System.Data.Common;
using Dapper;
using Npgsql;

namespace TinyOps.Server.Storage;

/// <summary>PostgreSQL, for several server replicas sharing one database.</summary>
public sealed class PostgresDatabase : Database
{
    private const long MigrationLockKey = 0x54696e794f7073; // "TinyOps"
    private readonly NpgsqlDataSource _source;

    public PostgresDatabase(string connectionString)
    {
        _source = NpgsqlDataSource.Create(connectionString);
    }

    public override string Kind => "postgres";
    public override string ForUpdateSkipLocked => " FOR UPDATE SKIP LOCKED";
    public override string ForUpdate => " FOR UPDATE";
    public override string IdentityColumn => "BIGSERIAL PRIMARY KEY";

    public override async Task<DbConnection> OpenAsync(CancellationToken ct = default) => await _source.OpenConnectionAsync(ct);

    public override async Task<DbTransaction> BeginWriteAsync(DbConnection connection, CancellationToken ct = default) =>
        await connection.BeginTransactionAsync(System.Data.IsolationLevel.ReadCommitted, ct);

    protected override Task LockForMigrationAsync(DbConnection c, CancellationToken ct) => c.ExecuteAsync("SELECT pg_advisory_lock(@k)", new { k = MigrationLockKey });
    protected override Task UnlockForMigrationAsync(DbConnection c, CancellationToken ct) => c.ExecuteAsync("SELECT pg_advisory_unlock(@k)", new { k = MigrationLockKey });
}
