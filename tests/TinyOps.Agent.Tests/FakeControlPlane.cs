using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using TinyOps.Protocol;
using TinyOps.Protocol.Devices;
using TinyOps.Protocol.Manifests;
using TinyOps.Protocol.Telemetry;
using TinyOps.Trust.Signing;

namespace TinyOps.Agent.Tests;

/// <summary>
/// A small control plane for agent tests (Kestrel on 127.0.0.1, port 0): enrollment with a one-time token,
/// signed device requests (signature, clock skew, nonce replay), sync with one assignment for every device,
/// artifact download with HTTP Range, telemetry with batch-id dedup. Faults: cut a download after N bytes once,
/// lose a telemetry response once, serve different bytes than the manifest describes.
/// </summary>
public sealed class FakeControlPlane : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<string, string> _devicesByToken = new();
    private readonly ConcurrentDictionary<string, (string Name, string PublicKey)> _devices = new();
    private readonly ConcurrentDictionary<string, byte> _nonces = new();
    private readonly ConcurrentDictionary<string, byte[]> _artifacts = new();
    private readonly ConcurrentDictionary<string, int> _batches = new();
    private readonly List<SigningKey> _keys = [];
    private readonly object _lock = new();
    private int _cutOnce;
    private int _loseTelemetryOnce;

    private FakeControlPlane(WebApplication app)
    {
        _app = app;
        var first = SigningKey.Generate(DateTimeOffset.UtcNow);
        _keys.Add(first);
        Offered.Add(Info(first, null));
    }

    public string Url { get; private set; } = "";
    public const string Project = "fleet";
    public HashSet<string> EnrollmentTokens { get; } = ["enroll-1"];
    public int PollSeconds { get; set; } = 1;
    /// <summary>The key new manifests are signed with.</summary>
    public SigningKey CurrentKey { get { lock (_lock) return _keys[^1]; } }
    /// <summary>The keys offered to devices at enrollment and with every sync.</summary>
    public List<SigningKeyInfo> Offered { get; } = [];
    /// <summary>The assignment every device gets (null: keep what you have).</summary>
    public Assignment? Assignment { get; set; }

    public ConcurrentQueue<(string Device, ReportedState State)> Reports { get; } = new();
    public ConcurrentQueue<string> RangeRequests { get; } = new();
    public ConcurrentQueue<string> Rejections { get; } = new();
    public ConcurrentQueue<string> BatchAttempts { get; } = new();
    public int Enrollments;
    public int Syncs;
    public int ArtifactRequests;
    public int TelemetryRecords;
    public long TelemetryDropped;
    public int DuplicateBatches;
    /// <summary>Records as stored (once per batch id).</summary>
    public ConcurrentQueue<InferenceRecord> Records { get; } = new();

    public static async Task<FakeControlPlane> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var fake = new FakeControlPlane(app);
        app.MapPost(ApiRoutes.Enroll, fake.EnrollAsync);
        app.MapPost(ApiRoutes.Sync, fake.SyncAsync);
        app.MapGet(ApiRoutes.Artifact + "/{sha}", fake.ArtifactAsync);
        app.MapPost(ApiRoutes.Telemetry, fake.TelemetryAsync);
        await app.StartAsync();
        fake.Url = app.Urls.First();
        return fake;
    }

    public ReportedState? LastReport(string deviceId) =>
        Reports.Where(r => r.Device == deviceId).Select(r => r.State).LastOrDefault();

    public string? PublicKeyOf(string deviceId) => _devices.TryGetValue(deviceId, out var d) ? d.PublicKey : null;

    /// <summary>Stores an artifact and returns its manifest signed with the current key.</summary>
    public SignedManifest Publish(byte[] artifact, string model, string version, string variant = "fp32", SigningKey? signWith = null)
    {
        string sha = Convert.ToHexStringLower(SHA256.HashData(artifact));
        _artifacts[sha] = artifact;
        var manifest = new Manifest
        {
            Project = Project,
            ModelName = model,
            Version = version,
            VariantId = variant,
            ArtifactSha256 = sha,
            ArtifactSize = artifact.Length,
            Format = "onnx",
            IssuedAt = DateTimeOffset.UtcNow,
        };
        return (signWith ?? CurrentKey).SignManifest(JsonSerializer.SerializeToUtf8Bytes(manifest, ProtocolJson.Default.Manifest));
    }

    /// <summary>Serves <paramref name="bytes"/> at the address of <paramref name="sha"/> (a tampered artifact).</summary>
    public void ReplaceArtifact(string sha, byte[] bytes) => _artifacts[sha] = bytes;

    public void Assign(string deploymentId, SignedManifest manifest) => Assignment = new Assignment { DeploymentId = deploymentId, Manifest = manifest };

    /// <summary>The next artifact response is aborted after <paramref name="bytes"/> bytes.</summary>
    public void CutNextDownloadAfter(int bytes) => Volatile.Write(ref _cutOnce, bytes);

    /// <summary>The next telemetry upload is stored, then its response is lost (connection aborted).</summary>
    public void LoseNextTelemetryResponse() => Volatile.Write(ref _loseTelemetryOnce, 1);

    /// <summary>Rotates the signing key; the new key is endorsed by the previous one unless told otherwise.</summary>
    public SigningKey Rotate(bool endorse = true, SigningKey? endorseWith = null)
    {
        var next = SigningKey.Generate(DateTimeOffset.UtcNow);
        lock (_lock)
        {
            var endorser = endorseWith ?? _keys[^1];
            _keys.Add(next);
            Offered.Add(endorse ? Info(next, endorser) : Info(next, null));
        }
        return next;
    }

    public static SigningKeyInfo Info(SigningKey key, SigningKey? endorsedBy) => new()
    {
        KeyId = key.KeyId,
        PublicKey = key.PublicKey,
        CreatedAt = key.CreatedAt,
        EndorsedBy = endorsedBy?.KeyId,
        Endorsement = endorsedBy?.Endorse(key),
    };

    private async Task EnrollAsync(HttpContext ctx)
    {
        var req = await JsonSerializer.DeserializeAsync(ctx.Request.Body, ProtocolJson.Default.EnrollRequest);
        if (req is null || !EnrollmentTokens.Remove(req.EnrollmentToken))
        {
            Rejections.Enqueue("enroll: unknown or used token");
            await Problem(ctx, 401, "the enrollment token is unknown or was already used");
            return;
        }
        try
        {
            using var k = ECDsa.Create();
            k.ImportSubjectPublicKeyInfo(Convert.FromBase64String(req.PublicKey), out _);
            if (k.KeySize != 256) throw new CryptographicException("not P-256");
        }
        catch (Exception e) when (e is CryptographicException or FormatException)
        {
            await Problem(ctx, 400, "the public key is not an ECDSA P-256 SubjectPublicKeyInfo");
            return;
        }
        string id = "dev-" + Guid.NewGuid().ToString("N")[..10];
        _devices[id] = (req.Name, req.PublicKey);
        Interlocked.Increment(ref Enrollments);
        List<SigningKeyInfo> keys;
        lock (_lock) keys = [.. Offered];
        await Json(ctx, new EnrollResponse { DeviceId = id, Project = Project, SigningKeys = keys, PollSeconds = PollSeconds }, ProtocolJson.Default.EnrollResponse);
    }

    /// <summary>Verifies the device signature; returns the device id, or null after writing a 401.</summary>
    private async Task<(string? Device, byte[] Body)> AuthenticateAsync(HttpContext ctx)
    {
        using var ms = new MemoryStream();
        await ctx.Request.Body.CopyToAsync(ms);
        byte[] body = ms.ToArray();
        var h = ctx.Request.Headers;
        string device = h[DeviceAuth.DeviceHeader].ToString(), ts = h[DeviceAuth.TimestampHeader].ToString(),
            nonce = h[DeviceAuth.NonceHeader].ToString(), sig = h[DeviceAuth.SignatureHeader].ToString();
        string? reason = null;
        if (!_devices.TryGetValue(device, out var d)) reason = $"unknown device '{device}'";
        else if (!long.TryParse(ts, out long tsMs)) reason = "bad timestamp";
        else if (Math.Abs(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - tsMs) > DeviceAuth.MaxClockSkew.TotalMilliseconds) reason = "stale timestamp";
        else
        {
            using var key = ECDsa.Create();
            key.ImportSubjectPublicKeyInfo(Convert.FromBase64String(d.PublicKey), out _);
            string canonical = DeviceAuth.CanonicalString(ctx.Request.Method, ctx.Request.Path + ctx.Request.QueryString, tsMs, nonce, body);
            if (!DeviceAuth.Verify(key, canonical, sig)) reason = "signature does not verify";
            else if (!_nonces.TryAdd(device + "/" + nonce, 0)) reason = "replayed nonce";
        }
        if (reason is null) return (device, body);
        Rejections.Enqueue($"{ctx.Request.Method} {ctx.Request.Path}: {reason}");
        await Problem(ctx, 401, reason);
        return (null, body);
    }

    private async Task SyncAsync(HttpContext ctx)
    {
        var (device, body) = await AuthenticateAsync(ctx);
        if (device is null) return;
        var req = JsonSerializer.Deserialize(body, ProtocolJson.Default.SyncRequest)!;
        Reports.Enqueue((device, req.Reported));
        Interlocked.Increment(ref Syncs);
        List<SigningKeyInfo> keys;
        lock (_lock) keys = [.. Offered];
        await Json(ctx, new SyncResponse { Assignment = Assignment, PollSeconds = PollSeconds, SigningKeys = keys }, ProtocolJson.Default.SyncResponse);
    }

    private async Task ArtifactAsync(HttpContext ctx, string sha)
    {
        var (device, _) = await AuthenticateAsync(ctx);
        if (device is null) return;
        Interlocked.Increment(ref ArtifactRequests);
        if (!_artifacts.TryGetValue(sha, out var bytes)) { await Problem(ctx, 404, $"no artifact {sha}"); return; }
        long from = 0;
        string range = ctx.Request.Headers.Range.ToString();
        if (range.Length > 0)
        {
            RangeRequests.Enqueue(range);
            if (!range.StartsWith("bytes=", StringComparison.Ordinal) || !long.TryParse(range[6..].TrimEnd('-'), out from) || from >= bytes.Length)
            {
                ctx.Response.Headers.ContentRange = $"bytes */{bytes.Length}";
                ctx.Response.StatusCode = 416;
                return;
            }
            ctx.Response.StatusCode = 206;
            ctx.Response.Headers.ContentRange = $"bytes {from}-{bytes.Length - 1}/{bytes.Length}";
        }
        ctx.Response.Headers.AcceptRanges = "bytes";
        ctx.Response.ContentType = "application/octet-stream";
        ctx.Response.ContentLength = bytes.Length - from;
        int cut = Interlocked.Exchange(ref _cutOnce, 0);
        if (cut > 0)
        {
            await ctx.Response.Body.WriteAsync(bytes.AsMemory((int)from, Math.Min(cut, bytes.Length - (int)from)));
            await ctx.Response.Body.FlushAsync();
            await Task.Delay(50);
            ctx.Abort();
            return;
        }
        await ctx.Response.Body.WriteAsync(bytes.AsMemory((int)from));
    }

    private async Task TelemetryAsync(HttpContext ctx)
    {
        var (device, body) = await AuthenticateAsync(ctx);
        if (device is null) return;
        var batch = JsonSerializer.Deserialize(body, ProtocolJson.Default.TelemetryBatch)!;
        BatchAttempts.Enqueue(batch.BatchId);
        bool duplicate = !_batches.TryAdd(batch.BatchId, batch.Records.Count);
        if (duplicate)
        {
            Interlocked.Increment(ref DuplicateBatches);
        }
        else
        {
            Interlocked.Add(ref TelemetryRecords, batch.Records.Count);
            Interlocked.Add(ref TelemetryDropped, batch.Dropped);
            foreach (var r in batch.Records) Records.Enqueue(r);
        }
        if (Interlocked.Exchange(ref _loseTelemetryOnce, 0) == 1)
        {
            ctx.Abort();
            return;
        }
        await Json(ctx, new TelemetryAck { BatchId = batch.BatchId, Accepted = duplicate ? 0 : batch.Records.Count, Duplicate = duplicate }, ProtocolJson.Default.TelemetryAck);
    }

    private static async Task Json<T>(HttpContext ctx, T value, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type)
    {
        ctx.Response.ContentType = "application/json";
        await ctx.Response.Body.WriteAsync(JsonSerializer.SerializeToUtf8Bytes(value, type));
    }

    private static Task Problem(HttpContext ctx, int status, string detail)
    {
        ctx.Response.StatusCode = status;
        return Json(ctx, new ProblemDetailsDto { Title = "refused", Status = status, Detail = detail }, ProtocolJson.Default.ProblemDetailsDto);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        foreach (var k in _keys) k.Dispose();
    }
}
