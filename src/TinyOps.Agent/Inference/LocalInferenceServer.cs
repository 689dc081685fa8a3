using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using TinyOps.Agent.State;
using TinyOps.Engine;
using TinyOps.Engine.Tensors;

namespace TinyOps.Agent.Inference;

/// <summary>
/// The loopback inference endpoint (HTTP/1.1 on 127.0.0.1): POST /infer with {"input": [...], "shape": [...]}
/// returns the outputs, the argmax and the latency; GET /status returns what the agent serves.
/// <para>
/// A small server of its own on a socket rather than <see cref="HttpListener"/>: .NET's managed HttpListener (Linux,
/// macOS) throws ArgumentNullException from Start when a client connects while it starts, and crashes the process
/// from a thread-pool thread (Monitor.Enter(null) in its accept callback) when a client connects while it closes
/// (dotnet/corefx#35191); an app polling the endpoint across an agent restart took the agent down. One request per
/// connection (the response says Connection: close); bodies by Content-Length or chunked; requests larger than
/// <see cref="MaxBodyBytes"/> get 413, malformed ones 400, and a client that stops sending is dropped after
/// <see cref="ReadTimeout"/>.
/// </para>
/// </summary>
public sealed class LocalInferenceServer : IDisposable
{
    /// <summary>Largest request body accepted (an input tensor as JSON text).</summary>
    public const int MaxBodyBytes = 64 << 20;

    private const int MaxHeaderBytes = 16 << 10;
    private static readonly TimeSpan ReadTimeout = TimeSpan.FromSeconds(10);

    private readonly Socket _socket;
    private readonly DeviceAgent _agent;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    public LocalInferenceServer(DeviceAgent agent, int port)
    {
        _agent = agent;
        _socket = Listen(port);
        Port = ((IPEndPoint)_socket.LocalEndPoint!).Port;
        _loop = Task.Run(LoopAsync);
    }

    /// <summary>A socket listening on 127.0.0.1:<paramref name="port"/> (0: a free port).</summary>
    internal static Socket Listen(int port)
    {
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            s.Bind(new IPEndPoint(IPAddress.Loopback, port));
            s.Listen(64);
            return s;
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            s.Dispose();
            throw new AgentException($"the inference port {port} on 127.0.0.1 is in use by another process; choose another port, or 0 for a free one", inner: e);
        }
        catch
        {
            s.Dispose();
            throw;
        }
    }

    public int Port { get; }

    public string Url => $"http://127.0.0.1:{Port}/";

    private async Task LoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try { client = await _socket.AcceptAsync(_stop.Token); }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException) { return; }
            _ = Task.Run(() => ServeAsync(client));
        }
    }

    private async Task ServeAsync(Socket client)
    {
        using (client)
        await using (var stream = new NetworkStream(client, ownsSocket: false))
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            timeout.CancelAfter(ReadTimeout);
            try
            {
                var (status, body) = await RespondAsync(stream, timeout.Token);
                await WriteAsync(stream, status, body);
                client.Shutdown(SocketShutdown.Send); // the response is whole: end it before the socket closes
            }
            catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
            {
                // the client went away, stopped sending, or the server is stopping: nothing to answer
            }
        }
    }

    /// <summary>Reads one request and returns the response's status and JSON body.</summary>
    private async Task<(int Status, byte[] Body)> RespondAsync(NetworkStream stream, CancellationToken ct)
    {
        Request req;
        try { req = await ReadRequestAsync(stream, ct); }
        catch (BadRequestException e) { return (e.Status, Problem(e.Status, e.Message)); }
        string path = req.Path.Split('?')[0].TrimEnd('/');
        try
        {
            if (req.Method == "GET" && path == "/status")
                return (200, JsonSerializer.SerializeToUtf8Bytes(_agent.Status(), AgentJson.Default.AgentStatus));
            if (req.Method != "POST" || path != "/infer")
                return (404, Problem(404, "routes: POST /infer, GET /status"));
            InferRequest? body;
            try { body = JsonSerializer.Deserialize(req.Body, AgentJson.Default.InferRequest); }
            catch (JsonException e) { return (400, Problem(400, $"the body is not an infer request ({{\"input\": [floats], \"shape\": [ints]}}): {e.Message}")); }
            if (body is null) return (400, Problem(400, "empty body"));
            var r = _agent.Infer(body.Input, body.Shape);
            var response = new InferResponse
            {
                Outputs = r.Outputs.Select(o => new InferOutput
                {
                    Name = o.Key,
                    Shape = o.Value.Shape,
                    Data = o.Value.Type == DataType.Float32 ? o.Value.ToArray<float>() : Enumerable.Range(0, o.Value.Length).Select(i => o.Value.GetFloat(i)).ToArray(),
                }).ToList(),
                ArgMax = r.PredictedClass,
                LatencyUs = r.LatencyUs,
                DeviceLatencyUs = r.DeviceLatencyUs,
                Model = r.Model,
            };
            return (200, JsonSerializer.SerializeToUtf8Bytes(response, AgentJson.Default.InferResponse));
        }
        catch (InferenceInputException e) { return (400, Problem(400, e.Message)); }
        catch (AgentException e) { return (503, Problem(503, e.Message)); }
        catch (Exception e) when (e is not OutOfMemoryException) { return (500, Problem(500, e.Message)); }
    }

    private sealed record Request(string Method, string Path, byte[] Body);

    /// <summary>A request the server answers with <see cref="Status"/> (400 malformed, 413 too large) and the message.</summary>
    private sealed class BadRequestException(int status, string message) : Exception(message)
    {
        public int Status { get; } = status;
    }

    /// <summary>The request line, the headers it needs (Content-Length, Transfer-Encoding, Expect) and the body.</summary>
    private static async Task<Request> ReadRequestAsync(NetworkStream stream, CancellationToken ct)
    {
        var buf = new byte[4096];
        int len = 0, headerEnd;
        while ((headerEnd = buf.AsSpan(0, len).IndexOf("\r\n\r\n"u8)) < 0)
        {
            if (len == buf.Length)
            {
                if (len >= MaxHeaderBytes) throw new BadRequestException(400, $"the request head is longer than {MaxHeaderBytes} bytes");
                Array.Resize(ref buf, Math.Min(2 * len, MaxHeaderBytes));
            }
            int n = await stream.ReadAsync(buf.AsMemory(len), ct);
            if (n == 0) throw new IOException("the client closed the connection before the request head ended");
            len += n;
        }
        var lines = Encoding.ASCII.GetString(buf, 0, headerEnd).Split("\r\n");
        var first = lines[0].Split(' ');
        if (first.Length != 3 || !first[2].StartsWith("HTTP/1.", StringComparison.Ordinal))
            throw new BadRequestException(400, $"not an HTTP/1.x request line: '{lines[0]}'");
        long? contentLength = null;
        bool chunked = false, expectContinue = false;
        foreach (var line in lines.Skip(1))
        {
            int colon = line.IndexOf(':');
            if (colon <= 0) throw new BadRequestException(400, $"malformed header line: '{line}'");
            string name = line[..colon].Trim(), value = line[(colon + 1)..].Trim();
            if (name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase))
            {
                if (!long.TryParse(value, out long cl) || cl < 0) throw new BadRequestException(400, $"bad Content-Length '{value}'");
                contentLength = cl;
            }
            else if (name.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase))
                chunked = value.Contains("chunked", StringComparison.OrdinalIgnoreCase);
            else if (name.Equals("Expect", StringComparison.OrdinalIgnoreCase))
                expectContinue = value.Equals("100-continue", StringComparison.OrdinalIgnoreCase);
        }
        if (contentLength > MaxBodyBytes) throw new BadRequestException(413, $"the body ({contentLength} bytes) is larger than {MaxBodyBytes} bytes");
        if (expectContinue && (chunked || contentLength > 0)) await stream.WriteAsync("HTTP/1.1 100 Continue\r\n\r\n"u8.ToArray(), ct);
        // bytes already read past the head start the body
        var reader = new BodyReader(stream, buf, headerEnd + 4, len, ct);
        byte[] body = chunked ? await reader.ReadChunkedAsync() : await reader.ReadExactlyAsync((int)(contentLength ?? 0));
        return new Request(first[0], first[1], body);
    }

    /// <summary>Reads a body from what follows the head in the buffer, then from the stream.</summary>
    private sealed class BodyReader(NetworkStream stream, byte[] buf, int pos, int len, CancellationToken ct)
    {
        private readonly byte[] _buf = buf;
        private int _pos = pos, _len = len;

        public async Task<byte[]> ReadExactlyAsync(int count)
        {
            var body = new byte[count];
            int have = Math.Min(count, _len - _pos);
            Array.Copy(_buf, _pos, body, 0, have);
            _pos += have;
            if (have < count) await stream.ReadExactlyAsync(body.AsMemory(have), ct);
            return body;
        }

        /// <summary>Transfer-Encoding: chunked: hex size lines, each chunk then CRLF, a zero-size chunk, trailers, CRLF.</summary>
        public async Task<byte[]> ReadChunkedAsync()
        {
            using var body = new MemoryStream();
            while (true)
            {
                string sizeLine = await ReadLineAsync();
                int semi = sizeLine.IndexOf(';');
                if (semi >= 0) sizeLine = sizeLine[..semi];
                if (!int.TryParse(sizeLine.Trim(), System.Globalization.NumberStyles.HexNumber, null, out int size) || size < 0)
                    throw new BadRequestException(400, $"bad chunk size '{sizeLine}'");
                if (size == 0)
                {
                    while ((await ReadLineAsync()).Length > 0) { } // trailers up to the empty line
                    return body.ToArray();
                }
                if (body.Length + size > MaxBodyBytes) throw new BadRequestException(413, $"the body is larger than {MaxBodyBytes} bytes");
                body.Write(await ReadExactlyAsync(size));
                if ((await ReadLineAsync()).Length != 0) throw new BadRequestException(400, "a chunk does not end with CRLF");
            }
        }

        private async Task<string> ReadLineAsync()
        {
            var line = new List<byte>();
            while (true)
            {
                if (_pos == _len)
                {
                    _pos = 0;
                    _len = await stream.ReadAsync(_buf, ct);
                    if (_len == 0) throw new IOException("the client closed the connection inside a chunked body");
                }
                byte b = _buf[_pos++];
                if (b == (byte)'\n') return Encoding.ASCII.GetString(line.ToArray()).TrimEnd('\r');
                if (line.Count >= MaxHeaderBytes) throw new BadRequestException(400, "a chunk line is too long");
                line.Add(b);
            }
        }
    }

    private static byte[] Problem(int status, string message) =>
        JsonSerializer.SerializeToUtf8Bytes(new Protocol.ProblemDetailsDto { Title = "inference failed", Status = status, Detail = message }, Protocol.ProtocolJson.Default.ProblemDetailsDto);

    private static async Task WriteAsync(NetworkStream stream, int status, byte[] body)
    {
        string reason = status switch
        {
            200 => "OK", 400 => "Bad Request", 404 => "Not Found", 413 => "Content Too Large", 500 => "Internal Server Error",
            503 => "Service Unavailable", _ => "Status",
        };
        var head = Encoding.ASCII.GetBytes($"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n");
        await stream.WriteAsync(head);
        await stream.WriteAsync(body);
        await stream.FlushAsync();
    }

    public void Dispose()
    {
        _stop.Cancel();
        _socket.Dispose();
        try { _loop.Wait(TimeSpan.FromSeconds(2)); } catch (AggregateException) { }
    }
}
