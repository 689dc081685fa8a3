using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using TinyOps.Protocol;
using TinyOps.Protocol.Devices;
using TinyOps.Protocol.Management;

namespace TinyOps.Server.Tests.Fleet;

/// <summary>Plays a device against a test server: its own ECDSA P-256 key, enrollment, signed requests.</summary>
public sealed class TestDevice : IDisposable
{
    private TestDevice(HttpClient http, ECDsa key, EnrollResponse enrollment)
    {
        Http = http;
        Key = key;
        Enrollment = enrollment;
    }

    public HttpClient Http { get; }
    public ECDsa Key { get; }
    public EnrollResponse Enrollment { get; }
    public string Id => Enrollment.DeviceId;
    public string Project => Enrollment.Project;

    public static EnrollRequest Request(string token, string name, DeviceCapabilities? caps = null, IReadOnlyList<string>? tags = null, ECDsa? key = null) => new()
    {
        EnrollmentToken = token,
        Name = name,
        PublicKey = Convert.ToBase64String((key ?? ECDsa.Create(ECCurve.NamedCurves.nistP256)).ExportSubjectPublicKeyInfo()),
        Capabilities = caps ?? new DeviceCapabilities { DeviceClass = "gateway", Architecture = "x86-64", RamBytes = 1L << 30, FlashBytes = 8L << 30 },
        Tags = tags ?? [],
    };

    /// <summary>Posts an enrollment as-is (for refusal tests).</summary>
    public static Task<HttpResponseMessage> PostEnrollAsync(TestServer s, EnrollRequest req) =>
        s.Client(null).PostAsJsonAsync(ApiRoutes.Enroll, req, ProtocolJsonOptions.Options);

    public static async Task<TestDevice> EnrollAsync(TestServer s, string token, string name, DeviceCapabilities? caps = null, IReadOnlyList<string>? tags = null)
    {
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var response = await (await PostEnrollAsync(s, Request(token, name, caps, tags, key))).ReadAsync<EnrollResponse>();
        return new TestDevice(s.Client(null), key, response);
    }

    public static async Task<string> CreateTokenAsync(TestServer s, string project = "default", int uses = 10, int hours = 1, IReadOnlyList<string>? tags = null, HttpClient? as_ = null)
    {
        var r = await (as_ ?? s.Admin).PostAsJsonAsync(ApiRoutes.Project(project) + "/enrollment-tokens", new CreateEnrollmentTokenRequest(uses, hours, tags), ProtocolJsonOptions.Options);
        return (await r.ReadAsync<EnrollmentTokenDto>()).Token;
    }

    /// <summary>Sends a signed request. The overrides forge parts of it, for the authentication tests.</summary>
    public async Task<HttpResponseMessage> SendAsync(HttpMethod method, string pathAndQuery, byte[]? body = null, string? deviceId = null,
        long? timestampMs = null, string? nonce = null, byte[]? signedBody = null, Action<HttpRequestMessage>? configure = null)
    {
        var req = SignedRequest(Key, deviceId ?? Id, method, pathAndQuery, body, timestampMs, nonce, signedBody);
        configure?.Invoke(req);
        return await Http.SendAsync(req);
    }

    /// <summary>A device-API request signed as an agent signs it: device id, timestamp, nonce, signature over the canonical string.</summary>
    public static HttpRequestMessage SignedRequest(ECDsa key, string deviceId, HttpMethod method, string pathAndQuery, byte[]? body,
        long? timestampMs = null, string? nonce = null, byte[]? signedBody = null)
    {
        long ts = timestampMs ?? DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        nonce ??= Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        string canonical = DeviceAuth.CanonicalString(method.Method, pathAndQuery, ts, nonce, signedBody ?? body ?? []);
        var req = new HttpRequestMessage(method, pathAndQuery);
        if (body is not null)
        {
            req.Content = new ByteArrayContent(body);
            req.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        }
        req.Headers.Add(DeviceAuth.DeviceHeader, deviceId);
        req.Headers.Add(DeviceAuth.TimestampHeader, ts.ToString(System.Globalization.CultureInfo.InvariantCulture));
        req.Headers.Add(DeviceAuth.NonceHeader, nonce);
        req.Headers.Add(DeviceAuth.SignatureHeader, DeviceAuth.Sign(key, canonical));
        return req;
    }

    public static byte[] SyncBody(ReportedState? reported = null) =>
        JsonSerializer.SerializeToUtf8Bytes(new SyncRequest { Reported = reported ?? new ReportedState() }, ProtocolJson.Default.SyncRequest);

    public Task<HttpResponseMessage> PostSyncAsync(ReportedState? reported = null, string? nonce = null, long? timestampMs = null, string? deviceId = null) =>
        SendAsync(HttpMethod.Post, ApiRoutes.Sync, SyncBody(reported), deviceId, timestampMs, nonce);

    public async Task<SyncResponse> SyncAsync(ReportedState? reported = null) => await (await PostSyncAsync(reported)).ReadAsync<SyncResponse>();

    public void Dispose()
    {
        Http.Dispose();
        Key.Dispose();
    }
}
