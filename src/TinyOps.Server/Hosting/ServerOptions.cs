namespace TinyOps.Server.Hosting;

/// <summary>How a control-plane server starts.</summary>
public sealed class ServerOptions
{
    /// <summary>Holds the SQLite file, blobs and keys. Created if missing.</summary>
    public string DataDirectory { get; set; } = Path.Combine(Environment.CurrentDirectory, "tinyops-data");

    /// <summary>Kestrel URLs; port 0 picks a free port.</summary>
    public string Urls { get; set; } = "http://127.0.0.1:8080";

    /// <summary>A PostgreSQL connection string; null uses SQLite in the data directory.</summary>
    public string? PostgresConnectionString { get; set; }

    /// <summary>How often devices are told to sync, seconds.</summary>
    public int DevicePollSeconds { get; set; } = 30;

    /// <summary>How often the rollout worker steps deployments.</summary>
    public TimeSpan RolloutInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Writes a line for the operator (the admin token on first start, the listening URL).</summary>
    public Action<string> Announce { get; set; } = Console.WriteLine;

    /// <summary>Kestrel's request body limit for artifact uploads.</summary>
    public long MaxArtifactBytes { get; set; } = 512L << 20;
}
