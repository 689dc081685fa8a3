using System.Data.Common;
using Dapper;
using Microsoft.Data.Sqlite;

namespace TinyOps.Server.Storage;

/// <summary>SQLite in one file of the data directory, WAL mode, the embedded default.</summary>
public sealed class SqliteDatabase : Database
{
    private readonly string _connectionString;

    public SqliteDatabase(string path)
    {
        Path = path;
        _connectionString = new SqliteConnectionStringBuilder { DataSource = path, Pooling = true, DefaultTimeout = 30 }.ToString();
    }

    public string Path { get; }
    public override string Kind => "sqlite";
    public override string ForUpdateSkipLocked => "";
    public override string ForUpdate => "";
    public override string IdentityColumn => "INTEGER PRIMARY KEY AUTOINCREMENT";

    public override async Task<DbConnection> OpenAsync(CancellationToken ct = default)
    {
        var c = new SqliteConnection(_connectionString);
        await c.OpenAsync(ct);
        await c.ExecuteAsync("PRAGMA journal_mode=WAL; PRAGMA busy_timeout=30000; PRAGMA foreign_keys=ON; PRAGMA synchronous=NORMAL;");
        return c;
    }

    public override async Task<DbTransaction> BeginWriteAsync(DbConnection connection, CancellationToken ct = default)
    {
        // BEGIN IMMEDIATE takes the write lock now, so read-then-write sequences cannot interleave.
        var tx = await connection.BeginTransactionAsync(System.Data.IsolationLevel.Serializable, ct);
        return tx;
    }
}
