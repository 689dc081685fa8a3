using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using TinyOps.Protocol;
using TinyOps.Protocol.Devices;

namespace TinyOps.Agent.Net;

/// <summary>
/// HTTP to the control plane. After enrollment every request carries the device id, a timestamp, a random nonce
/// and an ECDSA signature over <see cref="DeviceAuth.CanonicalString"/>.
/// </summary>
public sealed class DeviceClient : IDisposable
{
    private readonly HttpClient _http;
    private readonly bool _ownsHttp;
    private readonly TimeProvider _clock;
    private ECDsa? _key;
    private string? _deviceId;

    public DeviceClient(Uri server, HttpClient? http, HttpMessageHandler? handler, TimeProvider clock)
    {
        _clock = clock;
        if (http is not null)
        {
            _http = http;
        }
        else
        {
            _http = handler is not null
                ? new HttpClient(handler, disposeHandler: false)
                : new HttpClient(new SocketsHttpHandler { AutomaticDecompression = DecompressionMethods.All, PooledConnectionLifetime = TimeSpan.FromMinutes(5) });
            _ownsHttp = true;
            _http.Timeout = Timeout.InfiniteTimeSpan;
        }
        Server = server.AbsoluteUri.EndsWith('/') ? server : new Uri(server.AbsoluteUri + "/");
    }

    public Uri Server { get; }

    /// <summary>Signs every following request as this device.</summary>
    public void SetIdentity(string deviceId, ECDsa key)
    {
        _deviceId = deviceId;
        _key = key;
    }

    public async Task<TResponse> PostJsonAsync<TRequest, TResponse>(string path, TRequest body, JsonTypeInfo<TRequest> requestType,
        JsonTypeInfo<TResponse> responseType, bool signed, CancellationToken ct)
    {
        byte[] bytes = JsonSerializer.SerializeToUtf8Bytes(body, requestType);
        using var request = CreateRequest(HttpMethod.Post, path, bytes, signed);
        using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseContentRead, ct);
        await EnsureSuccessAsync(response, path, ct);
        var stream = await response.Content.ReadAsStreamAsync(ct);
        return await JsonSerializer.DeserializeAsync(stream, responseType, ct)
            ?? throw new AgentException($"the server answered POST {path} with an empty body");
    }

    /// <summary>Sends a signed GET; the caller reads (and disposes) the streamed response.</summary>
    public async Task<HttpResponseMessage> GetAsync(string path, RangeHeaderValue? range, CancellationToken ct)
    {
        using var request = CreateRequest(HttpMethod.Get, path, [], signed: true);
        if (range is not null) request.Headers.Range = range;
        var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
        if (!response.IsSuccessStatusCode)
        {
            try { await EnsureSuccessAsync(response, path, ct); }
            finally { response.Dispose(); }
        }
        return response;
    }

    private HttpRequestMessage CreateRequest(HttpMethod method, string path, byte[] body, bool signed)
    {
        var request = new HttpRequestMessage(method, new Uri(Server, path.TrimStart('/')));
        if (method != HttpMethod.Get)
        {
            request.Content = new ByteArrayContent(body);
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json") { CharSet = "utf-8" };
        }
        if (signed)
        {
            if (_key is null || _deviceId is null) throw new InvalidOperationException("the device is not enrolled yet");
            long ts = _clock.GetUtcNow().ToUnixTimeMilliseconds();
            string nonce = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
            string canonical = DeviceAuth.CanonicalString(method.Method, request.RequestUri!.PathAndQuery, ts, nonce, body);
            request.Headers.Add(DeviceAuth.DeviceHeader, _deviceId);
            request.Headers.Add(DeviceAuth.TimestampHeader, ts.ToString(System.Globalization.CultureInfo.InvariantCulture));
            request.Headers.Add(DeviceAuth.NonceHeader, nonce);
            request.Headers.Add(DeviceAuth.SignatureHeader, DeviceAuth.Sign(_key, canonical));
        }
        return request;
    }

    private static async Task EnsureSuccessAsync(HttpResponseMessage response, string path, CancellationToken ct)
    {
        if (response.IsSuccessStatusCode) return;
        string detail = "";
        try
        {
            string text = await response.Content.ReadAsStringAsync(ct);
            try
            {
                var problem = JsonSerializer.Deserialize(text, ProtocolJson.Default.ProblemDetailsDto);
                detail = problem is null ? text : problem.Detail.Length > 0 ? problem.Detail : problem.Title.Length > 0 ? problem.Title : text;
            }
            catch (JsonException)
            {
                detail = text;
            }
        }
        catch (HttpRequestException)
        {
        }
        if (detail.Length > 500) detail = detail[..500];
        int code = (int)response.StatusCode;
        throw new AgentException($"{response.RequestMessage?.Method} {path} failed: {code} {response.ReasonPhrase}{(detail.Length > 0 ? ": " + detail : "")}", code);
    }

    public void Dispose()
    {
        if (_ownsHttp) _http.Dispose();
    }
}
