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

    /// <summary>Whether this replica runs background jobs (recipe runs); off, jobs wait for a replica that does.</summary>
    public bool RunJobs { get; set; } = true;

    /// <summary>How often an idle job worker looks for queued jobs.</summary>
    public TimeSpan JobPollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How often a running job's heartbeat and progress are written (and a cancel request is noticed).</summary>
    public TimeSpan JobHeartbeatInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>A running job whose heartbeat is older than this is taken to be abandoned (its replica stopped) and requeued or failed.</summary>
    public TimeSpan JobStaleAfter { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>How often a job is started before an abandoned one is failed rather than requeued.</summary>
    public int JobMaxAttempts { get; set; } = 3;

    /// <summary>Folder of the Fashion-MNIST IDX files for evaluation sets (null: $TINYOPS_FASHION_MNIST or /usr/share/datasets/fashion-mnist).</summary>
    public string? FashionMnistDirectory { get; set; }
}
