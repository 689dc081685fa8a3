using System.Data.Common;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Dapper;
using TinyOps.Protocol;
using TinyOps.Protocol.Devices;
using TinyOps.Protocol.Management;
using TinyOps.Server.Access;
using TinyOps.Server.Hosting;
using TinyOps.Server.Registry;
using TinyOps.Server.Storage;

namespace TinyOps.Server.Deployments;

/// <summary>
/// Deployments and their targets: creation (variant choice per device, staging), operator actions (pause, resume,
/// abort, promote) and the rollout step the worker runs. Every multi-row change runs in one write transaction.
/// </summary>
public sealed class DeploymentStore(Database db, VariantQueries variants, AuditLog audit)
{
    public const string WorkerActor = "rollout-worker";

    private const string DeploymentColumns = "id AS Id, project AS Project, model AS Model, version AS Version, selector_json AS SelectorJson, " +
        "canary_percent AS CanaryPercent, auto_promote AS AutoPromote, max_failure_percent AS MaxFailurePercent, status AS Status, stage AS Stage, " +
        "created_at AS CreatedAt, created_by AS CreatedBy, updated_at AS UpdatedAt, latency_budgets_json AS LatencyBudgetsJson";

    private const string TargetColumns = "t.device_id AS DeviceId, t.variant_id AS VariantId, t.state AS State, t.reason AS Reason, t.stage AS Stage, " +
        "d.name AS DeviceName, d.capabilities_json AS CapabilitiesJson, d.reported_json AS ReportedJson, d.revoked AS Revoked";

    internal sealed class DeploymentRow
    {
        public string Id { get; set; } = "";
        public string Project { get; set; } = "";
        public string Model { get; set; } = "";
        public string Version { get; set; } = "";
        public string SelectorJson { get; set; } = "[]";
        public long CanaryPercent { get; set; }
        public long AutoPromote { get; set; }
        public long MaxFailurePercent { get; set; }
        public string Status { get; set; } = "";
        public long Stage { get; set; }
        public long CreatedAt { get; set; }
        public string CreatedBy { get; set; } = "";
        public long UpdatedAt { get; set; }
        public string LatencyBudgetsJson { get; set; } = "{}";
    }

    internal sealed class TargetRow
    {
        public string DeviceId { get; set; } = "";
        public string? VariantId { get; set; }
        public string State { get; set; } = "";
        public string Reason { get; set; } = "";
        public long Stage { get; set; }
        public string? DeviceName { get; set; }
        public string? CapabilitiesJson { get; set; }
        public string? ReportedJson { get; set; }
        public long? Revoked { get; set; }
        public bool Dirty { get; set; }

        public void Set(string state, string reason)
        {
            State = state;
            Reason = reason;
            Dirty = true;
        }
    }

    private sealed class DeviceRow
    {
        public string Id { get; set; } = "";
        public string Name { get; set; } = "";
        public string TagsJson { get; set; } = "[]";
        public string CapabilitiesJson { get; set; } = "{}";
        public string? ReportedJson { get; set; }
    }

    // ---------------------------------------------------------------- create

    public async Task<DeploymentDto> CreateAsync(UserContext user, string project, CreateDeploymentRequest req, CancellationToken ct = default)
    {
        user.RequireWrite(project);
        var selector = Validate(req);
        var budgets = ValidateBudgets(req.LatencyBudgetsUs);
        await using var c = await db.OpenAsync(ct);
        await RequireProjectAsync(c, project);
        if (await c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM models WHERE project = @project AND name = @model", new { project, model = req.Model }) == 0)
        {
            var models = (await c.QueryAsync<string>("SELECT name FROM models WHERE project = @project ORDER BY name", new { project })).ToList();
            throw ApiException.NotFound($"model '{req.Model}' does not exist in project '{project}'; models: {(models.Count == 0 ? "none" : string.Join(", ", models))}");
        }
        string version;
        try
        {
            version = await variants.ResolveVersionAsync(project, req.Model, req.Version, ct);
        }
        catch (ApiException e) when (e.Status == 404)
        {
            var versions = (await c.QueryAsync<string>("SELECT version FROM model_versions WHERE project = @project AND model = @model ORDER BY created_at",
                new { project, model = req.Model })).ToList();
            throw ApiException.NotFound($"model '{req.Model}' has no version or alias '{req.Version}'; versions: {(versions.Count == 0 ? "none" : string.Join(", ", versions))}");
        }
        var versionVariants = await variants.VariantsOfVersionAsync(project, req.Model, version, c, ct);

        var devices = (await c.QueryAsync<DeviceRow>(
            "SELECT id AS Id, name AS Name, tags_json AS TagsJson, capabilities_json AS CapabilitiesJson, reported_json AS ReportedJson FROM devices WHERE project = @project AND revoked = 0",
            new { project })).ToList();
        var matched = devices
            .Where(d => selector.All(new HashSet<string>(ParseTags(d.TagsJson), StringComparer.Ordinal).Contains))
            .OrderBy(d => StageKey(d.Id), StringComparer.Ordinal)
            .ToList();

        var targets = new List<TargetRow>();
        foreach (var d in matched)
        {
            var caps = JsonSerializer.Deserialize(d.CapabilitiesJson, ProtocolJson.Default.DeviceCapabilities) ?? new DeviceCapabilities();
            var choice = VariantChooser.Choose(caps, ParseReported(d.ReportedJson), versionVariants, budgets);
            targets.Add(new TargetRow
            {
                DeviceId = d.Id,
                DeviceName = d.Name,
                VariantId = choice.Variant?.Id,
                State = choice.Variant is null ? TargetState.Incompatible : TargetState.Pending,
                Reason = choice.Reason,
                Stage = choice.Variant is null ? 0 : 2,
            });
        }
        var compatible = targets.Where(t => t.State == TargetState.Pending).ToList();
        int stage1 = (req.CanaryPercent * compatible.Count + 99) / 100;
        for (int i = 0; i < stage1; i++) compatible[i].Stage = 1;

        string status;
        long stage;
        if (compatible.Count == 0) (status, stage) = (DeploymentStatus.Completed, 2);
        else if (stage1 == compatible.Count) (status, stage) = (DeploymentStatus.Rolling, 2);
        else (status, stage) = (DeploymentStatus.Canary, 1);

        string id = "dep_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
        long now = Database.Now();
        await using (var tx = await db.BeginWriteAsync(c, ct))
        {
            await c.ExecuteAsync("""
                INSERT INTO deployments (id, project, model, version, selector_json, canary_percent, auto_promote, max_failure_percent, status, stage, created_at, created_by, updated_at, latency_budgets_json)
                VALUES (@id, @project, @model, @version, @selector, @canary, @auto, @maxFail, @status, @stage, @now, @by, @now, @budgets)
                """,
                new
                {
                    id, project, model = req.Model, version,
                    selector = JsonSerializer.Serialize(selector, ProtocolJson.Default.ListString),
                    canary = req.CanaryPercent, auto = req.AutoPromote ? 1 : 0, maxFail = req.MaxFailurePercent,
                    status, stage, now, by = user.Actor,
                    budgets = JsonSerializer.Serialize(budgets, ProtocolJson.Default.DictionaryStringDouble),
                }, tx);
            await c.ExecuteAsync(
                "INSERT INTO deployment_targets (deployment_id, device_id, variant_id, state, reason, stage, updated_at) VALUES (@id, @DeviceId, @VariantId, @State, @Reason, @Stage, @now)",
                targets.Select(t => new { id, t.DeviceId, t.VariantId, t.State, t.Reason, t.Stage, now }), tx);
            await AssignAsync(c, tx, id, compatible.Where(t => t.Stage == 1), now);
            await audit.RecordAsync(user.Actor, "deployment.create", id, project,
                $"{req.Model} {version} to [{string.Join(", ", selector)}]: {targets.Count} devices, {compatible.Count} compatible, {stage1} in stage 1; status {status}"
                + (budgets.Count == 0 ? "" : $"; latency budgets {string.Join(", ", budgets.Select(b => $"{b.Key} {VariantChooser.Us(b.Value)}"))}"),
                c, tx);
            await tx.CommitAsync(ct);
        }
        return await GetAsync(user, project, id, ct);
    }

    private static List<string> Validate(CreateDeploymentRequest req)
    {
        if (string.IsNullOrWhiteSpace(req.Model)) throw ApiException.BadRequest("model is required");
        if (string.IsNullOrWhiteSpace(req.Version)) throw ApiException.BadRequest("version is required (a version or an alias such as 'production')");
        if (req.CanaryPercent is < 0 or > 100)
            throw ApiException.BadRequest($"canaryPercent {req.CanaryPercent} is outside 0-100 (100 assigns every device at once)");
        if (req.MaxFailurePercent is < 0 or > 100)
            throw ApiException.BadRequest($"maxFailurePercent {req.MaxFailurePercent} is outside 0-100");
        var selector = new List<string>();
        foreach (var tag in req.Selector ?? [])
        {
            if (string.IsNullOrWhiteSpace(tag)) throw ApiException.BadRequest("selector tags must not be empty");
            if (tag.Length > 100) throw ApiException.BadRequest($"selector tag '{tag[..20]}...' is longer than 100 characters");
            if (!selector.Contains(tag)) selector.Add(tag);
        }
        return selector;
    }

    /// <summary>Budgets name a device class (or "*") and give a positive number of microseconds.</summary>
    private static Dictionary<string, double> ValidateBudgets(IReadOnlyDictionary<string, double>? budgets)
    {
        var result = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var (cls, us) in budgets ?? new Dictionary<string, double>())
        {
            if (cls != VariantChooser.AnyClass && (cls.Length is 0 or > 100 || cls.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))))
                throw ApiException.BadField("latencyBudgetsUs", $"latency budget key '{cls}' is not a device class name (letters, digits, '-', '_', '.') or '*' for every class");
            if (!double.IsFinite(us) || us <= 0)
                throw ApiException.BadField("latencyBudgetsUs", $"latency budget for '{cls}' is {us.ToString(System.Globalization.CultureInfo.InvariantCulture)}; give a positive number of microseconds");
            result[cls] = us;
        }
        return result;
    }

    /// <summary>The deterministic staging order: SHA-256 of the device id.</summary>
    internal static string StageKey(string deviceId) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(deviceId)));

    /// <summary>
    /// Points the devices' desired state at the deployment and marks the targets assigned; a still-open target of
    /// another deployment on the same device is superseded.
    /// </summary>
    private static async Task AssignAsync(DbConnection c, DbTransaction tx, string deploymentId, IEnumerable<TargetRow> targets, long now)
    {
        string why = $"superseded by deployment {deploymentId}; ";
        // One order for every writer (by device id), so concurrent assignments cannot deadlock on device rows.
        foreach (var t in targets.OrderBy(t => t.DeviceId, StringComparer.Ordinal))
        {
            await c.ExecuteAsync(
                "UPDATE deployment_targets SET state = @superseded, reason = @why || reason, updated_at = @now WHERE device_id = @device AND deployment_id <> @deploymentId AND state IN (@pending, @assigned)",
                new { superseded = TargetState.Superseded, why, now, device = t.DeviceId, deploymentId, pending = TargetState.Pending, assigned = TargetState.Assigned }, tx);
            await c.ExecuteAsync("UPDATE devices SET desired_deployment_id = @deploymentId, desired_variant_id = @variant WHERE id = @device",
                new { deploymentId, variant = t.VariantId, device = t.DeviceId }, tx);
            await c.ExecuteAsync("UPDATE deployment_targets SET state = @assigned, updated_at = @now WHERE deployment_id = @deploymentId AND device_id = @device",
                new { assigned = TargetState.Assigned, now, deploymentId, device = t.DeviceId }, tx);
            t.State = TargetState.Assigned;
            t.Dirty = false;
        }
    }

    // ---------------------------------------------------------------- read

    public async Task<DeploymentDto> GetAsync(UserContext user, string project, string id, CancellationToken ct = default)
    {
        user.RequireRead(project);
        await using var c = await db.OpenAsync(ct);
        var d = await c.QuerySingleOrDefaultAsync<DeploymentRow>($"SELECT {DeploymentColumns} FROM deployments WHERE project = @project AND id = @id", new { project, id })
            ?? throw await NotFoundAsync(c, project, id);
        var targets = await LoadTargetsAsync(c, null, id);
        var counts = targets.GroupBy(t => t.State).ToDictionary(g => g.Key, g => (long)g.Count());
        return ToDto(d, counts, targets);
    }

    public async Task<List<DeploymentDto>> ListAsync(UserContext user, string project, string? status, int limit, CancellationToken ct = default)
    {
        user.RequireRead(project);
        await using var c = await db.OpenAsync(ct);
        await RequireProjectAsync(c, project);
        var rows = (await c.QueryAsync<DeploymentRow>(
            $"SELECT {DeploymentColumns} FROM deployments WHERE project = @project {(status is null ? "" : "AND status = @status")} ORDER BY created_at DESC, id DESC LIMIT @limit",
            new { project, status, limit })).ToList();
        var counts = (await c.QueryAsync<(string DeploymentId, string State, long Count)>(
            "SELECT t.deployment_id, t.state, COUNT(*) FROM deployment_targets t JOIN deployments d ON d.id = t.deployment_id WHERE d.project = @project GROUP BY t.deployment_id, t.state",
            new { project })).ToLookup(r => r.DeploymentId);
        return rows.Select(r => ToDto(r, counts[r.Id].ToDictionary(x => x.State, x => x.Count), null)).ToList();
    }

    private static DeploymentDto ToDto(DeploymentRow d, Dictionary<string, long> counts, List<TargetRow>? targets)
    {
        int N(string state) => (int)counts.GetValueOrDefault(state);
        return new DeploymentDto
        {
            Id = d.Id,
            Project = d.Project,
            Model = d.Model,
            Version = d.Version,
            Selector = JsonSerializer.Deserialize(d.SelectorJson, ProtocolJson.Default.ListString) ?? [],
            CanaryPercent = (int)d.CanaryPercent,
            Status = d.Status,
            Stage = (int)d.Stage,
            Targeted = (int)counts.Values.Sum(),
            Assigned = N(TargetState.Assigned),
            Installed = N(TargetState.Installed),
            Failed = N(TargetState.Failed),
            Incompatible = N(TargetState.Incompatible),
            CreatedAt = Database.ToTime(d.CreatedAt),
            CreatedBy = d.CreatedBy,
            LatencyBudgetsUs = ParseBudgets(d.LatencyBudgetsJson),
            Targets = targets?.Select(t => new TargetDto(t.DeviceId, t.DeviceName ?? "", DeviceClass(t.CapabilitiesJson), t.VariantId, t.State, t.Reason, (int)t.Stage)).ToList() ?? [],
        };
    }

    private static string DeviceClass(string? capabilitiesJson)
    {
        if (string.IsNullOrEmpty(capabilitiesJson)) return "";
        try { return JsonSerializer.Deserialize(capabilitiesJson, ProtocolJson.Default.DeviceCapabilities)?.DeviceClass ?? ""; }
        catch (JsonException) { return ""; }
    }

    private static async Task<List<TargetRow>> LoadTargetsAsync(DbConnection c, DbTransaction? tx, string deploymentId) =>
        (await c.QueryAsync<TargetRow>(
            $"SELECT {TargetColumns} FROM deployment_targets t LEFT JOIN devices d ON d.id = t.device_id WHERE t.deployment_id = @deploymentId ORDER BY t.stage, t.device_id",
            new { deploymentId }, tx)).ToList();

    // ---------------------------------------------------------------- operator actions

    public Task<DeploymentDto> PauseAsync(UserContext user, string project, string id, CancellationToken ct = default) =>
        ActAsync(user, project, id, "deployment.pause", async (c, tx, d, now) =>
        {
            if (!DeploymentStatus.IsActive(d.Status))
                throw ApiException.Conflict($"deployment '{id}' is {d.Status}; only canary or rolling deployments can be paused");
            await SetStatusAsync(c, tx, d, DeploymentStatus.Paused, d.Stage, now);
            return "paused";
        }, ct);

    public Task<DeploymentDto> ResumeAsync(UserContext user, string project, string id, CancellationToken ct = default) =>
        ActAsync(user, project, id, "deployment.resume", async (c, tx, d, now) =>
        {
            if (d.Status != DeploymentStatus.Paused)
                throw ApiException.Conflict($"deployment '{id}' is {d.Status}, not paused");
            string status = d.Stage == 1 ? DeploymentStatus.Canary : DeploymentStatus.Rolling;
            await SetStatusAsync(c, tx, d, status, d.Stage, now);
            return $"resumed as {status}";
        }, ct);

    public Task<DeploymentDto> PromoteAsync(UserContext user, string project, string id, CancellationToken ct = default) =>
        ActAsync(user, project, id, "deployment.promote", async (c, tx, d, now) =>
        {
            if (d.Status == DeploymentStatus.Paused)
                throw ApiException.Conflict($"deployment '{id}' is paused; resume it before promoting");
            if (d.Status != DeploymentStatus.Canary)
                throw ApiException.Conflict($"deployment '{id}' is {d.Status}; only a deployment in its canary stage can be promoted");
            var targets = await LoadTargetsAsync(c, tx, d.Id);
            int n = await PromoteAsync(c, tx, d, targets, now);
            return $"stage 2 assigned to {n} devices";
        }, ct);

    public Task<DeploymentDto> AbortAsync(UserContext user, string project, string id, CancellationToken ct = default) =>
        ActAsync(user, project, id, "deployment.abort", async (c, tx, d, now) =>
        {
            if (d.Status is DeploymentStatus.Completed or DeploymentStatus.Aborted)
                throw ApiException.Conflict($"deployment '{id}' is already {d.Status}");
            var targets = await LoadTargetsAsync(c, tx, d.Id);
            Refresh(d, targets);
            int cancelled = await CancelOpenTargetsAsync(c, tx, d, targets, $"deployment aborted by {user.Actor}");
            await SaveTargetsAsync(c, tx, d.Id, targets, now);
            await SetStatusAsync(c, tx, d, DeploymentStatus.Aborted, d.Stage, now);
            return $"aborted; {cancelled} devices not yet installed were released, {targets.Count(t => t.State == TargetState.Installed)} installed keep the model";
        }, ct);

    private delegate Task<string> DeploymentAction(DbConnection c, DbTransaction tx, DeploymentRow d, long now);

    private async Task<DeploymentDto> ActAsync(UserContext user, string project, string id, string auditAction, DeploymentAction action, CancellationToken ct)
    {
        user.RequireWrite(project);
        await using (var c = await db.OpenAsync(ct))
        {
            await using var tx = await db.BeginWriteAsync(c, ct);
            var d = await c.QuerySingleOrDefaultAsync<DeploymentRow>($"SELECT {DeploymentColumns} FROM deployments WHERE project = @project AND id = @id{db.ForUpdate}",
                new { project, id }, tx) ?? throw await NotFoundAsync(c, project, id, tx);
            string detail = await action(c, tx, d, Database.Now());
            await audit.RecordAsync(user.Actor, auditAction, id, project, detail, c, tx);
            await tx.CommitAsync(ct);
        }
        return await GetAsync(user, project, id, ct);
    }

    // ---------------------------------------------------------------- rollout step

    /// <summary>
    /// Steps every active (canary or rolling) deployment that no other replica is stepping right now. Returns how
    /// many were stepped.
    /// </summary>
    public async Task<int> StepActiveAsync(CancellationToken ct = default)
    {
        await using var c = await db.OpenAsync(ct);
        var statuses = new { canary = DeploymentStatus.Canary, rolling = DeploymentStatus.Rolling };
        if (await c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM deployments WHERE status IN (@canary, @rolling)", statuses) == 0) return 0;
        await using var tx = await db.BeginWriteAsync(c, ct);
        var claimed = (await c.QueryAsync<DeploymentRow>(
            $"SELECT {DeploymentColumns} FROM deployments WHERE status IN (@canary, @rolling) ORDER BY created_at, id LIMIT 50{db.ForUpdateSkipLocked}",
            statuses, tx)).ToList();
        foreach (var d in claimed) await StepAsync(c, tx, d, Database.Now());
        await tx.CommitAsync(ct);
        return claimed.Count;
    }

    private async Task StepAsync(DbConnection c, DbTransaction tx, DeploymentRow d, long now)
    {
        var targets = await LoadTargetsAsync(c, tx, d.Id);
        Refresh(d, targets);

        var compatible = targets.Where(t => t.State != TargetState.Incompatible).ToList();
        var current = compatible.Where(t => t.Stage <= d.Stage).ToList();
        int failed = current.Count(t => t.State == TargetState.Failed);
        if (current.Count > 0 && failed * 100L > d.MaxFailurePercent * current.Count)
        {
            string why = $"deployment halted: {failed} of {current.Count} devices failed ({failed * 100.0 / current.Count:0.#}% > {d.MaxFailurePercent}% allowed)";
            await CancelOpenTargetsAsync(c, tx, d, targets, why);
            await SaveTargetsAsync(c, tx, d.Id, targets, now);
            await SetStatusAsync(c, tx, d, DeploymentStatus.Halted, d.Stage, now);
            await audit.RecordAsync(WorkerActor, "deployment.halt", d.Id, d.Project, why, c, tx);
            return;
        }
        await SaveTargetsAsync(c, tx, d.Id, targets, now);

        if (d.Stage == 1 && d.AutoPromote != 0 && compatible.Where(t => t.Stage == 1).All(t => TargetState.IsSettled(t.State)))
        {
            int n = await PromoteAsync(c, tx, d, targets, now);
            await audit.RecordAsync(WorkerActor, "deployment.promote", d.Id, d.Project,
                $"canary settled ({failed} of {current.Count} failed); stage 2 assigned to {n} devices", c, tx);
        }
        if (compatible.All(t => TargetState.IsSettled(t.State)))
        {
            await SetStatusAsync(c, tx, d, DeploymentStatus.Completed, d.Stage, now);
            await audit.RecordAsync(WorkerActor, "deployment.complete", d.Id, d.Project,
                $"{compatible.Count(t => t.State == TargetState.Installed)} installed, {compatible.Count(t => t.State == TargetState.Failed)} failed, " +
                $"{compatible.Count(t => t.State is TargetState.Superseded or TargetState.Cancelled)} superseded or cancelled, {targets.Count - compatible.Count} incompatible", c, tx);
        }
    }

    /// <summary>Updates assigned (and failed) targets from what their devices reported.</summary>
    private static void Refresh(DeploymentRow d, List<TargetRow> targets)
    {
        foreach (var t in targets)
        {
            if (t.State is not (TargetState.Assigned or TargetState.Failed)) continue;
            if (t.Revoked is null or not 0)
            {
                if (t.State == TargetState.Assigned)
                    t.Set(TargetState.Cancelled, (t.Revoked is null ? "device was deleted; " : "device was revoked; ") + t.Reason);
                continue;
            }
            var reported = ParseReported(t.ReportedJson);
            if (reported is null) continue;
            if (reported.Active?.VariantId is { Length: > 0 } active && active == t.VariantId)
                t.Set(TargetState.Installed, t.State == TargetState.Failed ? StripFailure(t.Reason) : t.Reason);
            else if (t.State == TargetState.Assigned && reported.Phase == InstallPhase.Failed && reported.DeploymentId == d.Id)
                t.Set(TargetState.Failed, $"{FailurePrefix}{(string.IsNullOrWhiteSpace(reported.LastError) ? "the device reported no error" : reported.LastError)} | {t.Reason}");
        }
    }

    private const string FailurePrefix = "install failed: ";

    private static string StripFailure(string reason)
    {
        int bar = reason.IndexOf(" | ", StringComparison.Ordinal);
        return reason.StartsWith(FailurePrefix, StringComparison.Ordinal) && bar >= 0 ? reason[(bar + 3)..] : reason;
    }

    /// <summary>Assigns every pending stage-2 target; the deployment becomes rolling.</summary>
    private static async Task<int> PromoteAsync(DbConnection c, DbTransaction tx, DeploymentRow d, List<TargetRow> targets, long now)
    {
        var pending = targets.Where(t => t.State == TargetState.Pending && t.Stage == 2).ToList();
        foreach (var t in pending.Where(t => t.Revoked is null or not 0))
            t.Set(TargetState.Cancelled, (t.Revoked is null ? "device was deleted; " : "device was revoked; ") + t.Reason);
        await SaveTargetsAsync(c, tx, d.Id, targets, now);
        var assign = pending.Where(t => t.State == TargetState.Pending).ToList();
        await AssignAsync(c, tx, d.Id, assign, now);
        await SetStatusAsync(c, tx, d, DeploymentStatus.Rolling, 2, now);
        return assign.Count;
    }

    /// <summary>
    /// Cancels pending and assigned targets and releases every device still pointing at this deployment that has
    /// not installed it (failed ones included); installed devices keep their model.
    /// </summary>
    private static async Task<int> CancelOpenTargetsAsync(DbConnection c, DbTransaction tx, DeploymentRow d, List<TargetRow> targets, string why)
    {
        int n = 0;
        foreach (var t in targets.Where(t => t.State is TargetState.Pending or TargetState.Assigned or TargetState.Failed))
        {
            if (t.State is TargetState.Assigned or TargetState.Failed)
                await c.ExecuteAsync("UPDATE devices SET desired_deployment_id = NULL, desired_variant_id = NULL WHERE id = @device AND desired_deployment_id = @id",
                    new { device = t.DeviceId, id = d.Id }, tx);
            if (t.State == TargetState.Failed) continue;
            t.Set(TargetState.Cancelled, $"{why}; {t.Reason}");
            n++;
        }
        return n;
    }

    private static async Task SaveTargetsAsync(DbConnection c, DbTransaction tx, string deploymentId, List<TargetRow> targets, long now)
    {
        foreach (var t in targets.Where(t => t.Dirty))
        {
            await c.ExecuteAsync("UPDATE deployment_targets SET state = @State, reason = @Reason, updated_at = @now WHERE deployment_id = @deploymentId AND device_id = @DeviceId",
                new { t.State, t.Reason, now, deploymentId, t.DeviceId }, tx);
            t.Dirty = false;
        }
    }

    private static async Task SetStatusAsync(DbConnection c, DbTransaction tx, DeploymentRow d, string status, long stage, long now)
    {
        await c.ExecuteAsync("UPDATE deployments SET status = @status, stage = @stage, updated_at = @now WHERE id = @id", new { status, stage, now, id = d.Id }, tx);
        d.Status = status;
        d.Stage = stage;
    }

    // ---------------------------------------------------------------- helpers

    private static async Task RequireProjectAsync(DbConnection c, string project)
    {
        if (await c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM projects WHERE name = @project", new { project }) == 0)
            throw ApiException.NotFound($"project '{project}' does not exist");
    }

    private static async Task<ApiException> NotFoundAsync(DbConnection c, string project, string id, DbTransaction? tx = null)
    {
        if (await c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM projects WHERE name = @project", new { project }, tx) == 0)
            return ApiException.NotFound($"project '{project}' does not exist");
        return ApiException.NotFound($"deployment '{id}' does not exist in project '{project}'; list them with GET {ApiRoutes.Project(project)}/deployments");
    }

    private static List<string> ParseTags(string json)
    {
        try { return JsonSerializer.Deserialize(json, ProtocolJson.Default.ListString) ?? []; }
        catch (JsonException) { return []; }
    }

    private static Dictionary<string, double> ParseBudgets(string json)
    {
        try { return JsonSerializer.Deserialize(json, ProtocolJson.Default.DictionaryStringDouble) ?? []; }
        catch (JsonException) { return []; }
    }

    private static ReportedState? ParseReported(string? json)
    {
        if (string.IsNullOrEmpty(json)) return null;
        try { return JsonSerializer.Deserialize(json, ProtocolJson.Default.ReportedState); }
        catch (JsonException) { return null; }
    }
}
