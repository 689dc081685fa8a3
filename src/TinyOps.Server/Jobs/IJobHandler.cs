namespace TinyOps.Server.Jobs;

/// <summary>Runs the jobs of one kind. A handler is told to stop through <see cref="JobContext.Cancellation"/>.</summary>
public interface IJobHandler
{
    /// <summary>The kind of job this handler runs (the jobs table's "kind").</summary>
    string Kind { get; }

    /// <summary>Does the job's work; returns the message it ends with. Any exception fails the job with the exception's message.</summary>
    Task<string> RunAsync(JobContext context);
}

/// <summary>A job as claimed by a worker.</summary>
public sealed record ClaimedJob(string Id, string Project, string Kind, string Model, string Version, string PayloadJson, int Attempts, int MaxAttempts, string CreatedBy);

/// <summary>
/// What a running job sees: its row, a cancellation token (a cancel request or the server stopping), and a progress
/// sink. Progress is kept in memory and written with the heartbeat, so reporting never waits for the database.
/// </summary>
public sealed class JobContext(ClaimedJob job, CancellationToken cancellation)
{
    private readonly object _gate = new();
    private int _progress;
    private string _message = "started";
    private bool _dirty = true;

    public ClaimedJob Job { get; } = job;
    public CancellationToken Cancellation { get; } = cancellation;

    /// <summary>Sets the progress (clamped to 0-100) and what the job is doing now.</summary>
    public void Report(int percent, string message)
    {
        lock (_gate)
        {
            _progress = Math.Clamp(percent, 0, 100);
            _message = message.Length > 500 ? message[..500] : message;
            _dirty = true;
        }
    }

    /// <summary>The latest progress, and whether it changed since the last call.</summary>
    internal (int Progress, string Message, bool Changed) Take()
    {
        lock (_gate)
        {
            bool changed = _dirty;
            _dirty = false;
            return (_progress, _message, changed);
        }
    }
}

/// <summary>A job failed in a way its handler has already described (e.g. "2 of 5 variants failed: ..."); the message is the job's error.</summary>
public sealed class JobException(string message) : Exception(message);
