using System.Security.Cryptography;
using System.Text.Json;
using TinyOps.Agent.Inference;
using TinyOps.Agent.Install;
using TinyOps.Agent.Net;
using TinyOps.Agent.State;
using TinyOps.Agent.Telemetry;
using TinyOps.Protocol;
using TinyOps.Protocol.Devices;
using TinyOps.Protocol.Manifests;
using TinyOps.Trust.Signing;

namespace TinyOps.Agent;

/// <summary>
/// The device agent: enrolls with the control plane, syncs its reported state for its desired state, installs
/// assigned models into A/B slots (switching only after a health check), serves inference in-process and on a
/// loopback endpoint, and uploads per-inference telemetry in idempotent batches. All state lives in one
/// directory and every write to it is atomic.
/// </summary>
public sealed partial class DeviceAgent : IAsyncDisposable
{
    public const string Version = "0.1.0";
    private const string IdentityFile = "identity.json";
    private const string TrustFile = "trust.json";
    private const string StateFile = "state.json";

    private readonly DeviceClient _client;
    private readonly SlotStore _slots;
    private readonly Random _random;
    private readonly SemaphoreSlim _syncGate = new(1, 1);
    private readonly Lock _stateLock = new();
    private ECDsa? _key;
    private AgentIdentity? _identity;
    private TrustStore? _trust;
    private AgentStateDocument _state = new();
    private InstalledModel? _standby;
    private long _downloaded;
    private bool _started;
    private bool _capabilitiesSent;
    private LocalInferenceServer? _http;

    public DeviceAgent(AgentOptions options)
    {
        Options = options;
        Directory.CreateDirectory(options.StateDirectory);
        _client = new DeviceClient(options.ServerUrl, options.HttpClient, options.HttpHandler, options.Clock);
        _slots = new SlotStore(options.StateDirectory);
        _random = options.RandomSeed is int seed ? new Random(seed) : new Random();
        Models = new ModelHost();
        Telemetry = new TelemetryBuffer(Path.Combine(options.StateDirectory, "telemetry"), options.Telemetry);
    }

    public AgentOptions Options { get; }

    /// <summary>The model being served.</summary>
    public ModelHost Models { get; }

    public TelemetryBuffer Telemetry { get; }

    /// <summary>The device id, once enrolled.</summary>
    public string? DeviceId => _identity is { DeviceId.Length: > 0 } id ? id.DeviceId : null;

    public string? Project => _identity?.Project;

    /// <summary>The registry keys this device trusts (null before enrollment).</summary>
    public IReadOnlyCollection<SigningKeyInfo> TrustedKeys => _trust?.Keys ?? [];

    /// <summary>The loopback endpoint's URL when it runs.</summary>
    public string? InferenceUrl => _http?.Url;

    /// <summary>The poll interval the server asked for last.</summary>
    public TimeSpan PollInterval { get; private set; } = TimeSpan.FromSeconds(60);

    private void Log(string message) => Options.Log?.Invoke(message);

    private string PathOf(string name) => Path.Combine(Options.StateDirectory, name);

    /// <summary>
    /// Loads the identity, the trusted keys and the state; loads the active slot (falling back to the other slot
    /// when it does not load); starts the loopback endpoint. Does not talk to the server.
    /// </summary>
    public Task StartAsync(CancellationToken ct = default)
    {
        if (_started) return Task.CompletedTask;
        _identity = ReadJson(IdentityFile, AgentJson.Default.AgentIdentity);
        if (_identity is { PrivateKey.Length: > 0 })
        {
            _key = ECDsa.Create();
            _key.ImportPkcs8PrivateKey(Convert.FromBase64String(_identity.PrivateKey), out _);
            if (_identity.DeviceId.Length > 0) _client.SetIdentity(_identity.DeviceId, _key);
        }
        if (ReadJson(TrustFile, AgentJson.Default.ListSigningKeyInfo) is { } keys) _trust = new TrustStore(keys);
        _state = ReadJson(StateFile, AgentJson.Default.AgentStateDocument) ?? new AgentStateDocument();
        CleanLeftovers();
        if (_trust is not null) LoadActiveSlot();
        if (Options.InferencePort is int port) _http = new LocalInferenceServer(this, port);
        _started = true;
        Log(DeviceId is null ? "agent started; not enrolled yet" : $"agent started as device {DeviceId}; serving {Describe(Models.ActiveModel)}");
        return Task.CompletedTask;
    }

    private void CleanLeftovers()
    {
        foreach (var slot in SlotStore.Slots)
        {
            string dir = _slots.SlotDirectory(slot);
            if (!Directory.Exists(dir)) continue;
            foreach (var tmp in Directory.EnumerateFiles(dir, "*.tmp")) File.Delete(tmp);
        }
        File.Delete(PathOf(StateFile + ".tmp"));
    }

    private void LoadActiveSlot()
    {
        if (_state.ActiveSlot.Length == 0) { RefreshStandby(); return; }
        string active = _state.ActiveSlot;
        if (TryLoad(active, out string? reason)) { RefreshStandby(); return; }
        string other = SlotStore.Other(active);
        Log($"active slot {active} does not load ({reason}); trying slot {other}");
        if (TryLoad(other, out string? otherReason))
        {
            WriteState(_state with { ActiveSlot = other, DeploymentId = null, Phase = InstallPhase.Failed, LastError = $"slot {active} did not load ({reason}); fell back to slot {other}" });
        }
        else
        {
            Log($"slot {other} does not load either ({otherReason}); serving nothing until a deployment arrives");
            WriteState(_state with { ActiveSlot = "", DeploymentId = null, Phase = InstallPhase.Failed, LastError = $"no slot loads: {reason}; {otherReason}" });
        }
        RefreshStandby();
    }

    private bool TryLoad(string slot, out string? reason)
    {
        var content = _slots.Read(slot, _trust!, out reason);
        if (content is null) return false;
        try
        {
            var session = ModelHost.LoadAndCheck(content.ModelPath);
            Models.Activate(content, session);
            return true;
        }
        catch (AgentException e)
        {
            reason = e.Message;
            return false;
        }
    }

    private void RefreshStandby()
    {
        string standbySlot = Models.Active is { } a ? SlotStore.Other(a.Slot) : _state.ActiveSlot.Length > 0 ? SlotStore.Other(_state.ActiveSlot) : "B";
        _standby = _trust is null ? null : _slots.Read(standbySlot, _trust, out _) is { } c ? ModelHost.Describe(c) : null;
    }

    /// <summary>Enrolls with the one-time token unless already enrolled: generates the key pair, registers its public half, stores the identity and the registry's keys.</summary>
    public async Task EnrollAsync(CancellationToken ct = default)
    {
        await StartAsync(ct);
        if (DeviceId is not null) return;
        if (string.IsNullOrEmpty(Options.EnrollmentToken))
            throw new AgentException($"device is not enrolled (no {IdentityFile} in {Options.StateDirectory}); give an enrollment token");
        if (_key is null)
        {
            _key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            _identity = new AgentIdentity
            {
                Name = Options.DeviceName,
                PrivateKey = Convert.ToBase64String(_key.ExportPkcs8PrivateKey()),
                PublicKey = Convert.ToBase64String(_key.ExportSubjectPublicKeyInfo()),
            };
            WriteJson(IdentityFile, _identity, AgentJson.Default.AgentIdentity);
        }
        var request = new EnrollRequest
        {
            EnrollmentToken = Options.EnrollmentToken,
            Name = Options.DeviceName,
            PublicKey = _identity!.PublicKey,
            Capabilities = Options.Capabilities,
            Tags = Options.Tags,
        };
        var response = await _client.PostJsonAsync(ApiRoutes.Enroll, request, ProtocolJson.Default.EnrollRequest, ProtocolJson.Default.EnrollResponse, signed: false, ct);
        if (response.DeviceId.Length == 0) throw new AgentException("the server's enrollment response has no device id");
        TrustStore trust;
        try { trust = new TrustStore(response.SigningKeys); }
        catch (TrustException e) { throw new AgentException($"the server's signing keys are invalid: {e.Message}"); }
        _trust = trust;
        WriteJson(TrustFile, _trust.Keys.ToList(), AgentJson.Default.ListSigningKeyInfo);
        _identity = _identity with { DeviceId = response.DeviceId, Project = response.Project, Name = Options.DeviceName, EnrolledAt = Options.Clock.GetUtcNow() };
        WriteJson(IdentityFile, _identity, AgentJson.Default.AgentIdentity);
        _client.SetIdentity(response.DeviceId, _key);
        _capabilitiesSent = true;
        PollInterval = ClampPoll(response.PollSeconds);
        Log($"enrolled as device {response.DeviceId} in project '{response.Project}' ({_trust.Keys.Count} signing key(s) trusted)");
    }

    /// <summary>What the device reports now.</summary>
    public ReportedState Reported()
    {
        lock (_stateLock)
        {
            return new ReportedState
            {
                AgentVersion = Version,
                ActiveSlot = Models.Active?.Slot ?? "",
                Active = Models.ActiveModel,
                Standby = _standby,
                DeploymentId = _state.DeploymentId,
                Phase = _state.Phase,
                DownloadedBytes = _downloaded,
                LastError = _state.LastError,
                Conditions = Conditions(),
            };
        }
    }

    private DeviceConditions Conditions()
    {
        if (Options.Conditions is { } f) return f();
        long free = 0;
        try { free = new DriveInfo(Path.GetFullPath(Options.StateDirectory)).AvailableFreeSpace; }
        catch (Exception e) when (e is IOException or ArgumentException or UnauthorizedAccessException) { }
        return new DeviceConditions { NetworkType = "ethernet", FreeStorageBytes = free };
    }

    /// <summary>What the loopback endpoint's /status shows.</summary>
    public AgentStatus Status()
    {
        var r = Reported();
        return new AgentStatus
        {
            DeviceId = DeviceId ?? "",
            ActiveSlot = r.ActiveSlot,
            Model = r.Active,
            Standby = r.Standby,
            DeploymentId = r.DeploymentId,
            Phase = r.Phase,
            LastError = r.LastError,
            TelemetryPending = Telemetry.PendingRecords,
            TelemetryDroppedTotal = Telemetry.DroppedTotal,
        };
    }

    /// <summary>
    /// One round: enroll if needed, report state and read the desired state, accept endorsed signing keys,
    /// act on the assignment (report the outcome right away), upload pending telemetry.
    /// </summary>
    public async Task<SyncResponse> SyncOnceAsync(CancellationToken ct = default)
    {
        await _syncGate.WaitAsync(ct);
        try
        {
            await EnrollAsync(ct);
            var response = await SendSyncAsync(ct);
            if (response.Assignment is { } assignment)
            {
                var before = (_state.Phase, _state.DeploymentId, _state.LastError, Models.ActiveModel?.ArtifactSha256);
                await ApplyAssignmentAsync(assignment, ct);
                if (before != (_state.Phase, _state.DeploymentId, _state.LastError, Models.ActiveModel?.ArtifactSha256))
                    response = await SendSyncAsync(ct) with { Assignment = response.Assignment };
            }
            try
            {
                await UploadTelemetryAsync(ct);
            }
            catch (Exception e) when (e is HttpRequestException or IOException or AgentException || (e is TaskCanceledException && !ct.IsCancellationRequested))
            {
                // The batch stays on disk with its id; the next round retries it.
                Log($"telemetry upload failed ({e.Message}); retrying at the next sync");
            }
            return response;
        }
        finally
        {
            _syncGate.Release();
        }
    }

    private async Task<SyncResponse> SendSyncAsync(CancellationToken ct)
    {
        var reported = Reported();
        if (!_capabilitiesSent) reported = reported with { Capabilities = Options.Capabilities };
        var response = await _client.PostJsonAsync(ApiRoutes.Sync, new SyncRequest { Reported = reported },
            ProtocolJson.Default.SyncRequest, ProtocolJson.Default.SyncResponse, signed: true, ct);
        _capabilitiesSent = true;
        PollInterval = ClampPoll(response.PollSeconds);
        AcceptKeys(response.SigningKeys);
        return response;
    }

    private void AcceptKeys(IReadOnlyList<SigningKeyInfo> offered)
    {
        if (_trust is null || offered.Count == 0) return;
        int added = _trust.Accept(offered);
        if (added == 0) return;
        WriteJson(TrustFile, _trust.Keys.ToList(), AgentJson.Default.ListSigningKeyInfo);
        Log($"accepted {added} rotated signing key(s) endorsed by a trusted key");
    }

    /// <summary>Uploads buffered telemetry in batches; a batch is deleted only after the server's ack. Returns the records acknowledged.</summary>
    public async Task<int> UploadTelemetryAsync(CancellationToken ct = default)
    {
        if (DeviceId is null) return 0;
        int acknowledged = 0;
        for (int i = 0; i < 64; i++)
        {
            var batch = Telemetry.NextBatch();
            if (batch is null) break;
            try
            {
                var ack = await _client.PostJsonAsync(ApiRoutes.Telemetry, batch, ProtocolJson.Default.TelemetryBatch, ProtocolJson.Default.TelemetryAck, signed: true, ct);
                if (ack.BatchId.Length > 0 && ack.BatchId != batch.BatchId)
                    throw new AgentException($"telemetry ack names batch '{ack.BatchId}', expected '{batch.BatchId}'");
                Telemetry.Acknowledge(batch.BatchId);
                acknowledged += batch.Records.Count;
            }
            catch
            {
                Telemetry.Release(batch.BatchId);
                throw;
            }
        }
        return acknowledged;
    }

    /// <summary>Runs until cancelled: sync, then wait the poll interval with jitter; after a failure back off exponentially (with jitter).</summary>
    public async Task RunAsync(CancellationToken ct)
    {
        await StartAsync(ct);
        var backoff = Options.InitialBackoff;
        while (!ct.IsCancellationRequested)
        {
            TimeSpan wait;
            try
            {
                await SyncOnceAsync(ct);
                backoff = Options.InitialBackoff;
                wait = WithJitter(PollInterval);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                break;
            }
            catch (AgentException e) when (e.IsPermanent && DeviceId is null)
            {
                Log($"enrollment refused: {e.Message}");
                throw;
            }
            catch (Exception e) when (e is HttpRequestException or IOException or UnauthorizedAccessException or AgentException or JsonException or TaskCanceledException)
            {
                wait = WithJitter(backoff);
                Log($"sync failed ({e.Message}); retrying in {wait.TotalMilliseconds.ToString("F0", System.Globalization.CultureInfo.InvariantCulture)} ms");
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, Options.MaxBackoff.Ticks));
            }
            try { await Task.Delay(wait, Options.Clock, ct); }
            catch (OperationCanceledException) { break; }
        }
    }

    private TimeSpan ClampPoll(int seconds)
    {
        var t = TimeSpan.FromSeconds(Math.Max(0, seconds));
        if (t < Options.MinPollInterval) t = Options.MinPollInterval;
        if (t > Options.MaxPollInterval) t = Options.MaxPollInterval;
        return t;
    }

    /// <summary>The wait scaled by a uniform factor in [1 - Jitter, 1 + Jitter].</summary>
    public TimeSpan WithJitter(TimeSpan t)
    {
        double f;
        lock (_random) f = 1 + Options.Jitter * (2 * _random.NextDouble() - 1);
        return TimeSpan.FromTicks((long)(t.Ticks * f));
    }

    private void WriteState(AgentStateDocument state, Action? beforeRename = null)
    {
        state = state with { UpdatedAt = Options.Clock.GetUtcNow() };
        WriteJson(StateFile, state, AgentJson.Default.AgentStateDocument, beforeRename);
        lock (_stateLock) _state = state;
    }

    private void SetTransient(InstallPhase phase, string? deploymentId, string? error = null)
    {
        lock (_stateLock) _state = _state with { Phase = phase, DeploymentId = deploymentId, LastError = error };
    }

    private T? ReadJson<T>(string name, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type) where T : class
    {
        string path = PathOf(name);
        if (!File.Exists(path)) return null;
        try { return JsonSerializer.Deserialize(File.ReadAllBytes(path), type); }
        catch (JsonException e) { throw new AgentException($"{path} is not valid ({e.Message}); it is written atomically, so this is outside damage: restore or remove it"); }
    }

    private void WriteJson<T>(string name, T value, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type, Action? beforeRename = null) =>
        AtomicFile.WriteAllBytes(PathOf(name), JsonSerializer.SerializeToUtf8Bytes(value, type), beforeRename);

    private static string Describe(InstalledModel? m) => m is null ? "no model" : $"{m.ModelName} {m.Version} ({m.VariantId}, {SlotStore.Short(m.ArtifactSha256)})";

    public async ValueTask DisposeAsync()
    {
        await _syncGate.WaitAsync();
        try
        {
            _http?.Dispose();
            _client.Dispose();
            Telemetry.Dispose();
            _key?.Dispose();
        }
        finally
        {
            _syncGate.Release();
        }
    }
}
