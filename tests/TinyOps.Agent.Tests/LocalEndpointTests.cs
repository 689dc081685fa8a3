using System.Net;
using System.Text;
using System.Text.Json;
using TinyOps.Agent.Inference;
using TinyOps.Agent.State;
using TinyOps.Protocol.Devices;

namespace TinyOps.Agent.Tests;

public sealed class LocalEndpointTests
{
    /// <summary>
    /// Clients connecting while the endpoint starts and stops (a local app polling the agent across its restart): .NET's
    /// managed HttpListener threw from Start then and crashed the test host from its accept callback on Close; every
    /// start must succeed, on the same port, and stopping must not throw or crash.
    /// </summary>
    [Fact]
    public async Task The_endpoint_starts_while_clients_keep_connecting()
    {
        int port = AgentProcess.FreePort();
        using var stop = new CancellationTokenSource();
        int tries = 0;
        var hammer = Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                Interlocked.Increment(ref tries);
                try
                {
                    using var c = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
                    c.Connect(IPAddress.Loopback, port);
                }
                catch (System.Net.Sockets.SocketException) { }
            }
        });
        try
        {
            while (Volatile.Read(ref tries) < 50) await Task.Delay(1);
            for (int i = 0; i < 300; i++)
            {
                // HttpListener threw from Start, or crashed the process from its accept callback on Close, when a
                // client connected at that moment (dotnet/corefx#35191); the endpoint's own socket server does neither
                var listener = LocalInferenceServer.Listen(port);
                Assert.True(listener.IsBound);
                listener.Dispose();
            }
        }
        finally
        {
            stop.Cancel();
            await hammer;
        }
    }

    [Fact]
    public async Task The_loopback_endpoint_runs_inference_and_reports_status()
    {
        await using var h = await AgentHarness.StartAsync();
        var agent = h.Agent(h.NewStateDir(), configure: o => o with { InferencePort = 0, LatencyScale = 2 });
        await agent.StartAsync();
        Assert.StartsWith("http://127.0.0.1:", agent.InferenceUrl);
        using var http = new HttpClient { BaseAddress = new Uri(agent.InferenceUrl!) };

        // Before a model is installed: 503 with the reason.
        var (image, shape) = TestModels.FirstImage("fmnist_cnn");
        var body = JsonSerializer.Serialize(new InferRequest { Input = image, Shape = shape }, AgentJson.Default.InferRequest);
        var none = await http.PostAsync("infer", new StringContent(body, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, none.StatusCode);
        Assert.Contains("no model is installed", await none.Content.ReadAsStringAsync());

        h.Server.Assign("d-1", h.Server.Publish(TestModels.Cnn, "fmnist", "7", "cnn"));
        await agent.SyncOnceAsync();

        var res = await http.PostAsync("infer", new StringContent(body, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, res.StatusCode);
        var infer = JsonSerializer.Deserialize(await res.Content.ReadAsStringAsync(), AgentJson.Default.InferResponse)!;
        Assert.Equal(TestModels.ExpectedClass("fmnist_cnn"), infer.ArgMax);
        Assert.Equal("7", infer.Model!.Version);
        var output = Assert.Single(infer.Outputs);
        Assert.Equal([1, 10], output.Shape);
        Assert.Equal(10, output.Data.Length);
        Assert.True(infer.LatencyUs > 0);
        Assert.Equal(infer.LatencyUs * 2, infer.DeviceLatencyUs, 6);

        // A wrong input size is a 400 that says what the model needs.
        var bad = await http.PostAsync("infer", new StringContent("{\"input\":[1,2,3],\"shape\":[1,3]}", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("input", await bad.Content.ReadAsStringAsync());
        var garbage = await http.PostAsync("infer", new StringContent("not json", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, garbage.StatusCode);

        var status = JsonSerializer.Deserialize(await http.GetStringAsync("status"), AgentJson.Default.AgentStatus)!;
        Assert.Equal(agent.DeviceId, status.DeviceId);
        Assert.Equal("A", status.ActiveSlot);
        Assert.Equal(InstallPhase.Installed, status.Phase);
        Assert.Equal("d-1", status.DeploymentId);
        Assert.Equal(2, status.TelemetryPending);
    }

    [Fact]
    public async Task Malformed_oversized_and_chunked_requests_get_clear_answers()
    {
        await using var h = await AgentHarness.StartAsync();
        var agent = h.Agent(h.NewStateDir(), configure: o => o with { InferencePort = 0 });
        await agent.StartAsync();
        int port = new Uri(agent.InferenceUrl!).Port;

        static async Task<string> Raw(int port, string request)
        {
            using var c = new System.Net.Sockets.TcpClient();
            await c.ConnectAsync(IPAddress.Loopback, port);
            var s = c.GetStream();
            await s.WriteAsync(Encoding.ASCII.GetBytes(request));
            using var r = new StreamReader(s, Encoding.UTF8);
            return await r.ReadToEndAsync();
        }

        var garbage = await Raw(port, "HELLO\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 400 ", garbage);
        Assert.Contains("not an HTTP/1.x request line", garbage);
        var huge = await Raw(port, "POST /infer HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999999\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 413 ", huge);
        var unknown = await Raw(port, "GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 404 ", unknown);
        Assert.Contains("POST /infer", unknown);
        // a chunked body (as HttpClient sends streamed JSON) is read whole: here a valid request before any model
        string json = "{\"input\":[1,2,3],\"shape\":[1,3]}";
        string chunked = $"{json.Length - 10:x}\r\n{json[..^10]}\r\n{10:x}\r\n{json[^10..]}\r\n0\r\n\r\n";
        var noModel = await Raw(port, "POST /infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked);
        Assert.StartsWith("HTTP/1.1 503 ", noModel);
        Assert.Contains("no model is installed", noModel);
        var badChunk = await Raw(port, "POST /infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
        Assert.StartsWith("HTTP/1.1 400 ", badChunk);
        // and the endpoint still serves after all of them
        using var http = new HttpClient { BaseAddress = new Uri(agent.InferenceUrl!) };
        var status = await http.GetAsync("status");
        Assert.Equal(HttpStatusCode.OK, status.StatusCode);
        Assert.NotNull(JsonSerializer.Deserialize(await status.Content.ReadAsStringAsync(), AgentJson.Default.AgentStatus));
    }

    [Fact]
    public void A_port_in_use_is_a_clear_agent_error()
    {
        var other = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        other.Start();
        try
        {
            int port = ((IPEndPoint)other.LocalEndpoint).Port;
            var e = Assert.Throws<AgentException>(() => LocalInferenceServer.Listen(port));
            Assert.Contains($"inference port {port}", e.Message);
            Assert.Contains("in use", e.Message);
        }
        finally { other.Stop(); }
    }
}
