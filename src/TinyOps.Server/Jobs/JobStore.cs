using System.Data.Common;
using System.Security.Cryptography;
using Dapper;
using TinyOps.Protocol;
using TinyOps.Protocol.Management;
using TinyOps.Server.Access;
using TinyOps.Server.Hosting;
using TinyOps.Server.Storage;

namespace TinyOps.Server.Jobs;

/// <summary>What a worker's heartbeat learned about its job.</summary>
public enum HeartbeatResult
{
    /// <summary>Still ours; carry on.</summary>
    Continue,
    /// <summary>Someone asked to cancel it.</summary>
    CancelRequested,
    /// <summary>No longer ours (found stale and requeued or failed by another replica): stop without writing.</summary>
    Lost,
}

/// <summary>
/// The jobs table: background work queued by the API (a pushed version's recipe run), claimed by one worker at a
/// time with row locks (FOR UPDATE SKIP LOCKED on PostgreSQL; SQLite has one writer), kept alive by heartbeats,
/// requeued when its replica vanished, and finished with a state, a message and an error.
/// </summary>
public sealed class JobStore(Database db, AuditLog audit, ServerOptions options)
{
    private const string Columns = "id AS Id, project AS Project, kind AS Kind, model AS Model, version AS Version, state AS State, progress AS Progress, " +
        "message AS Message, error AS Error, attempts AS Attempts, max_attempts AS MaxAttempts, cancel_requested AS CancelRequested, worker AS Worker, " +
        "created_at AS CreatedAt, created_by AS CreatedBy, started_at AS StartedAt, finished_at AS FinishedAt, updated_at AS UpdatedAt";

    private sealed class Row
    {
        public string Id { get; set; } = "";
        public string Project { get; set; } = "";
        public string Kind { get; set; } = "";
        public string Model { get; set; } = "";
        public string Version { get; set; } = "";
        public string State { get; set; } = "";
        public long Progress { get; set; }
        public string Message { get; set; } = "";
        public string? Error { get; set; }
        public long Attempts { get; set; }
        public long MaxAttempts { get; set; }
        public long CancelRequested { get; set; }
        public string? Worker { get; set; }
        public long CreatedAt { get; set; }
        public string CreatedBy { get; set; } = "";
        public long? StartedAt { get; set; }
        public long? FinishedAt { get; set; }
        public long UpdatedAt { get; set; }

        public JobDto ToDto() => new()
        {
            Id = Id, Project = Project, Kind = Kind, Model = Model, Version = Version, State = State, Progress = (int)Progress, Message = Message,
            Error = Error, Attempts = (int)Attempts, MaxAttempts = (int)MaxAttempts, CancelRequested = CancelRequested != 0, Worker = Worker,
            CreatedAt = Database.ToTime(CreatedAt), CreatedBy = CreatedBy, StartedAt = StartedAt is { } s ? Database.ToTime(s) : null,
            FinishedAt = FinishedAt is { } f ? Database.ToTime(f) : null, UpdatedAt = Database.ToTime(UpdatedAt),
        };
    }

    public static string NewId() => "job_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));

    // ---------------------------------------------------------------- queue

    /// <summary>Queues a job inside the caller's write transaction (it exists exactly when the caller's change commits).</summary>
    public async Task<string> EnqueueAsync(DbConnection c, DbTransaction tx, string project, string kind, string model, string version, string payloadJson, string actor, string why)
    {
        string id = NewId();
        long now = Database.Now();
        await c.ExecuteAsync("""
            INSERT INTO jobs (id, project, kind, model, version, payload_json, state, progress, message, error, attempts, max_attempts, cancel_requested,
                worker, created_at, created_by, started_at, finished_at, heartbeat_at, updated_at)
            VALUES (@id, @project, @kind, @model, @version, @payloadJson, @queued, 0, @why, NULL, 0, @max, 0, NULL, @now, @actor, NULL, NULL, NULL, @now)
            """,
            new { id, project, kind, model, version, payloadJson, queued = JobStates.Queued, why, max = Math.Max(1, options.JobMaxAttempts), now, actor }, tx);
        await audit.RecordAsync(actor, "job.enqueue", id, project, $"{kind} for {model}:{version}: {why}", c, tx);
        return id;
    }

    /// <summary>Queues a job in its own transaction.</summary>
    public async Task<JobDto> EnqueueAsync(string project, string kind, string model, string version, string payloadJson, string actor, string why, CancellationToken ct = default)
    {
        string id;
        await using (var c = await db.OpenAsync(ct))
        {
            await using var tx = await db.BeginWriteAsync(c, ct);
            id = await EnqueueAsync(c, tx, project, kind, model, version, payloadJson, actor, why);
            await tx.CommitAsync(ct);
        }
        return await GetAsync(project, id, ct);
    }

    // ---------------------------------------------------------------- worker side

    /// <summary>Claims the oldest queued job for <paramref name="worker"/>, or returns null when none is queued (or all are being claimed by others).</summary>
    public async Task<ClaimedJob?> ClaimAsync(string worker, CancellationToken ct = default)
    {
        await using var c = await db.OpenAsync(ct);
        if (await c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM jobs WHERE state = @queued", new { queued = JobStates.Queued }) == 0) return null;
        await using var tx = await db.BeginWriteAsync(c, ct);
        var row = await c.QuerySingleOrDefaultAsync<(string Id, string Project, string Kind, string Model, string Version, string PayloadJson, long Attempts, long MaxAttempts, string CreatedBy)>(
            $"SELECT id, project, kind, model, version, payload_json, attempts, max_attempts, created_by FROM jobs WHERE state = @queued ORDER BY created_at, id LIMIT 1{db.ForUpdateSkipLocked}",
            new { queued = JobStates.Queued }, tx);
        if (row.Id is null) return null;
        long now = Database.Now();
        int claimed = await c.ExecuteAsync("""
            UPDATE jobs SET state = @running, attempts = attempts + 1, worker = @worker, started_at = @now, heartbeat_at = @now, updated_at = @now,
                progress = 0, message = @message, error = NULL
            WHERE id = @id AND state = @queued
            """,
            new { running = JobStates.Running, worker, now, message = $"started by {worker} (attempt {row.Attempts + 1} of {row.MaxAttempts})", id = row.Id, queued = JobStates.Queued }, tx);
        if (claimed != 1) return null;
        await tx.CommitAsync(ct);
        return new ClaimedJob(row.Id, row.Project, row.Kind, row.Model, row.Version, row.PayloadJson, (int)row.Attempts + 1, (int)row.MaxAttempts, row.CreatedBy);
    }

    /// <summary>Keeps the job alive, writes its progress (when given) and says whether to carry on.</summary>
    public async Task<HeartbeatResult> HeartbeatAsync(string id, string worker, int? progress, string? message, CancellationToken ct = default)
    {
        await using var c = await db.OpenAsync(ct);
        long now = Database.Now();
        int n = progress is null
            ? await c.ExecuteAsync("UPDATE jobs SET heartbeat_at = @now WHERE id = @id AND worker = @worker AND state = @running",
                new { now, id, worker, running = JobStates.Running })
            : await c.ExecuteAsync("UPDATE jobs SET heartbeat_at = @now, updated_at = @now, progress = @progress, message = @message WHERE id = @id AND worker = @worker AND state = @running",
                new { now, id, worker, running = JobStates.Running, progress, message });
        if (n == 0) return HeartbeatResult.Lost;
        return await c.ExecuteScalarAsync<long>("SELECT cancel_requested FROM jobs WHERE id = @id", new { id }) != 0 ? HeartbeatResult.CancelRequested : HeartbeatResult.Continue;
    }

    /// <summary>Ends a running job of this worker: succeeded, failed or cancelled. False when the job was no longer ours.</summary>
    public async Task<bool> FinishAsync(string id, string worker, string state, int progress, string message, string? error, CancellationToken ct = default)
    {
        if (!JobStates.IsFinished(state)) throw new ArgumentException($"'{state}' is not a final job state");
        await using var c = await db.OpenAsync(ct);
        await using var tx = await db.BeginWriteAsync(c, ct);
        long now = Database.Now();
        var row = await c.QuerySingleOrDefaultAsync<(string Project, string Kind, string Model, string Version)>(
            "SELECT project, kind, model, version FROM jobs WHERE id = @id AND worker = @worker AND state = @running",
            new { id, worker, running = JobStates.Running }, tx);
        if (row.Project is null) return false;
        await c.ExecuteAsync("""
            UPDATE jobs SET state = @state, progress = @progress, message = @message, error = @error, finished_at = @now, heartbeat_at = @now, updated_at = @now
            WHERE id = @id
            """,
            new { state, progress = Math.Clamp(progress, 0, 100), message = Clip(message), error = error is null ? null : Clip(error, 8000), now, id }, tx);
        await audit.RecordAsync("job-worker:" + worker, "job." + state, id, row.Project, $"{row.Kind} for {row.Model}:{row.Version}: {Clip(error ?? message, 1000)}", c, tx);
        await tx.CommitAsync(ct);
        return true;
    }

    /// <summary>Puts a job this worker was running back in the queue (the server is stopping); the attempt does not count.</summary>
    public async Task RequeueAsync(string id, string worker, string message, CancellationToken ct = default)
    {
        await using var c = await db.OpenAsync(ct);
        await c.ExecuteAsync("""
            UPDATE jobs SET state = @queued, attempts = attempts - 1, progress = 0, message = @message, updated_at = @now, heartbeat_at = NULL
            WHERE id = @id AND worker = @worker AND state = @running
            """,
            new { queued = JobStates.Queued, message, now = Database.Now(), id, worker, running = JobStates.Running });
    }

    /// <summary>
    /// Running jobs whose heartbeat is older than <see cref="ServerOptions.JobStaleAfter"/> were abandoned by a replica
    /// that stopped: each is requeued (to resume) while it has attempts left, else failed. Returns how many were touched.
    /// </summary>
    public async Task<int> RecoverStaleAsync(CancellationToken ct = default)
    {
        await using var c = await db.OpenAsync(ct);
        long now = Database.Now();
        long before = now - (long)options.JobStaleAfter.TotalMilliseconds;
        var args = new { running = JobStates.Running, before };
        if (await c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM jobs WHERE state = @running AND heartbeat_at < @before", args) == 0) return 0;
        await using var tx = await db.BeginWriteAsync(c, ct);
        var stale = (await c.QueryAsync<(string Id, string Project, string Kind, string Model, string Version, string? Worker, long Attempts, long MaxAttempts, long HeartbeatAt)>(
            $"SELECT id, project, kind, model, version, worker, attempts, max_attempts, heartbeat_at FROM jobs WHERE state = @running AND heartbeat_at < @before ORDER BY id{db.ForUpdateSkipLocked}",
            args, tx)).ToList();
        foreach (var j in stale)
        {
            string lost = $"worker {j.Worker} stopped sending heartbeats (last {Database.ToTime(j.HeartbeatAt):u}) during attempt {j.Attempts} of {j.MaxAttempts}";
            bool retry = j.Attempts < j.MaxAttempts;
            await c.ExecuteAsync(retry
                ? "UPDATE jobs SET state = @queued, progress = 0, message = @message, updated_at = @now, heartbeat_at = NULL WHERE id = @id AND state = @running"
                : "UPDATE jobs SET state = @failed, message = @message, error = @message, finished_at = @now, updated_at = @now WHERE id = @id AND state = @running",
                new
                {
                    queued = JobStates.Queued, failed = JobStates.Failed, running = JobStates.Running, now, id = j.Id,
                    message = retry ? $"requeued to resume: {lost}" : $"abandoned: {lost}; no attempts left, queue it again to retry",
                }, tx);
            await audit.RecordAsync("job-recovery", retry ? "job.requeue" : "job.failed", j.Id, j.Project, $"{j.Kind} for {j.Model}:{j.Version}: {lost}", c, tx);
        }
        await tx.CommitAsync(ct);
        return stale.Count;
    }

    // ---------------------------------------------------------------- API side

    /// <summary>A queued job is cancelled at once; a running one is asked to stop (its worker notices at the next heartbeat).</summary>
    public async Task<JobDto> CancelAsync(UserContext user, string project, string id, CancellationToken ct = default)
    {
        user.RequireWrite(project);
        await using (var c = await db.OpenAsync(ct))
        {
            await using var tx = await db.BeginWriteAsync(c, ct);
            var j = await c.QuerySingleOrDefaultAsync<Row>($"SELECT {Columns} FROM jobs WHERE project = @project AND id = @id{db.ForUpdate}", new { project, id }, tx)
                ?? throw NotFound(project, id);
            long now = Database.Now();
            string detail;
            if (j.State == JobStates.Queued)
            {
                await c.ExecuteAsync("UPDATE jobs SET state = @cancelled, cancel_requested = 1, message = @message, finished_at = @now, updated_at = @now WHERE id = @id",
                    new { cancelled = JobStates.Cancelled, message = $"cancelled by {user.Actor} before it started", now, id }, tx);
                detail = "cancelled while queued";
            }
            else if (j.State == JobStates.Running)
            {
                await c.ExecuteAsync("UPDATE jobs SET cancel_requested = 1, updated_at = @now WHERE id = @id", new { now, id }, tx);
                detail = $"cancel requested; worker {j.Worker} stops it at its next step";
            }
            else
                throw ApiException.Conflict($"job '{id}' already {j.State}; only queued or running jobs can be cancelled");
            await audit.RecordAsync(user.Actor, "job.cancel", id, project, detail, c, tx);
            await tx.CommitAsync(ct);
        }
        return await GetAsync(project, id, ct);
    }

    public async Task<JobDto> GetAsync(string project, string id, CancellationToken ct = default)
    {
        await using var c = await db.OpenAsync(ct);
        var row = await c.QuerySingleOrDefaultAsync<Row>($"SELECT {Columns} FROM jobs WHERE project = @project AND id = @id", new { project, id });
        return row?.ToDto() ?? throw NotFound(project, id);
    }

    /// <summary>Newest first, optionally only one state, model or version.</summary>
    public async Task<List<JobDto>> ListAsync(string project, string? state, string? model, string? version, int limit, CancellationToken ct = default)
    {
        if (state is not null && !JobStates.All.Contains(state))
            throw ApiException.BadField("state", $"state '{state}' is not a job state; use one of {string.Join(", ", JobStates.All)}");
        await using var c = await db.OpenAsync(ct);
        var where = new List<string> { "project = @project" };
        if (state is not null) where.Add("state = @state");
        if (model is not null) where.Add("model = @model");
        if (version is not null) where.Add("version = @version");
        var rows = await c.QueryAsync<Row>($"SELECT {Columns} FROM jobs WHERE {string.Join(" AND ", where)} ORDER BY created_at DESC, id DESC LIMIT @limit",
            new { project, state, model, version, limit });
        return rows.Select(r => r.ToDto()).ToList();
    }

    private static ApiException NotFound(string project, string id) =>
        ApiException.NotFound($"job '{id}' does not exist in project '{project}'; list them with GET {ApiRoutes.Project(project)}/jobs");

    private static string Clip(string s, int max = 2000) => s.Length <= max ? s : s[..max] + "...";
}
