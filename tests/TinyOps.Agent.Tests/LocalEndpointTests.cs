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
    /// Clients connecting while the endpoint starts (a local app polling the agent across its restart): .NET's managed
    /// HttpListener throws from Start then (a few starts in 100 here) and keeps the port bound; every start must
    /// succeed anyway, on the same port, and closing must not throw.
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
                var listener = LocalInferenceServer.StartListener(port);
                Assert.True(listener.IsListening);
                listener.Close(); // as LocalInferenceServer.Dispose does (Stop then Close meets the race again)
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
}
