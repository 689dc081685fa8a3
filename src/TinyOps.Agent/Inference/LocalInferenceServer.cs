using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using TinyOps.Agent.State;
using TinyOps.Engine;
using TinyOps.Engine.Tensors;

namespace TinyOps.Agent.Inference;

/// <summary>
/// The loopback inference endpoint (HttpListener on 127.0.0.1): POST /infer with {"input": [...], "shape": [...]}
/// returns the outputs, the argmax and the latency; GET /status returns what the agent serves.
/// </summary>
public sealed class LocalInferenceServer : IDisposable
{
    private readonly HttpListener _listener;
    private readonly DeviceAgent _agent;
    private readonly Task _loop;

    public LocalInferenceServer(DeviceAgent agent, int port)
    {
        _agent = agent;
        if (port == 0) port = FreePort();
        Port = port;
        _listener = StartListener(port);
        _loop = Task.Run(LoopAsync);
    }

    /// <summary>
    /// An HttpListener started on 127.0.0.1:<paramref name="port"/>. .NET's managed HttpListener (Linux, macOS) throws
    /// ArgumentNullException from Start when a client connects while it starts (dotnet/corefx#35191: its endpoint
    /// accepts before its connection table exists), which took the agent down when a local app polled it across a
    /// restart. The half-built endpoint keeps the port bound until its socket is finalized, so each retry collects it
    /// first; other failures (the port taken by another process) are thrown as they are.
    /// </summary>
    internal static HttpListener StartListener(int port, int attempts = 20)
    {
        for (int attempt = 1; ; attempt++)
        {
            var listener = new HttpListener();
            listener.Prefixes.Add($"http://127.0.0.1:{port}/");
            try
            {
                listener.Start();
                return listener;
            }
            catch (ArgumentNullException) when (attempt < attempts)
            {
                // not closed: Close would build the endpoint again and could meet the same race
                GC.Collect();
                GC.WaitForPendingFinalizers();
                GC.Collect();
                Thread.Sleep(5 * attempt);
            }
        }
    }

    public int Port { get; }

    public string Url => $"http://127.0.0.1:{Port}/";

    private static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    private async Task LoopAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext ctx;
            try { ctx = await _listener.GetContextAsync(); }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException) { return; }
            _ = Task.Run(() => Handle(ctx));
        }
    }

    private void Handle(HttpListenerContext ctx)
    {
        var req = ctx.Request;
        var res = ctx.Response;
        try
        {
            string path = req.Url?.AbsolutePath.TrimEnd('/') ?? "";
            if (req.HttpMethod == "GET" && path == "/status")
            {
                Write(res, 200, JsonSerializer.SerializeToUtf8Bytes(_agent.Status(), AgentJson.Default.AgentStatus));
            }
            else if (req.HttpMethod == "POST" && path == "/infer")
            {
                InferRequest? body;
                try { body = JsonSerializer.Deserialize(req.InputStream, AgentJson.Default.InferRequest); }
                catch (JsonException e) { Error(res, 400, $"the body is not an infer request ({{\"input\": [floats], \"shape\": [ints]}}): {e.Message}"); return; }
                if (body is null) { Error(res, 400, "empty body"); return; }
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
                Write(res, 200, JsonSerializer.SerializeToUtf8Bytes(response, AgentJson.Default.InferResponse));
            }
            else
            {
                Error(res, 404, "routes: POST /infer, GET /status");
            }
        }
        catch (InferenceInputException e) { Error(res, 400, e.Message); }
        catch (AgentException e) { Error(res, 503, e.Message); }
        catch (Exception e) when (e is not OutOfMemoryException) { TryError(res, 500, e.Message); }
    }

    private static void Error(HttpListenerResponse res, int status, string message) =>
        Write(res, status, JsonSerializer.SerializeToUtf8Bytes(new Protocol.ProblemDetailsDto { Title = "inference failed", Status = status, Detail = message }, Protocol.ProtocolJson.Default.ProblemDetailsDto));

    private static void TryError(HttpListenerResponse res, int status, string message)
    {
        try { Error(res, status, message); }
        catch (Exception e) when (e is HttpListenerException or IOException or ObjectDisposedException or InvalidOperationException) { }
    }

    private static void Write(HttpListenerResponse res, int status, byte[] body)
    {
        res.StatusCode = status;
        res.ContentType = "application/json";
        res.ContentLength64 = body.Length;
        res.OutputStream.Write(body);
        res.OutputStream.Close();
    }

    public void Dispose()
    {
        // Close alone: after Stop, Close builds the endpoint anew to remove it, and can meet the start race above
        try { _listener.Close(); } catch (Exception e) when (e is ObjectDisposedException or ArgumentNullException or HttpListenerException) { }
        try { _loop.Wait(TimeSpan.FromSeconds(2)); } catch (AggregateException) { }
    }
}
