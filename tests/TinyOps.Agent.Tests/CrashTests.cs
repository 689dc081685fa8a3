using System.Text;
using System.Text.Json;
using TinyOps.Agent.Inference;
using TinyOps.Agent.Install;
using TinyOps.Agent.State;
using TinyOps.Protocol.Devices;

namespace TinyOps.Agent.Tests;

/// <summary>
/// The agent survives being killed at any point of an update: a real `tinyops agent` process is killed
/// (Environment.FailFast via TINYOPS_AGENT_CRASH_AT) at each named step of installing version 2 over version 1,
/// restarted without the fault, and must serve a model that loads: version 1 before the switch, version 2 after.
/// </summary>
public sealed class CrashTests
{
    public static IEnumerable<object[]> Steps() => Enum.GetValues<InstallStep>().Select(s => new object[] { CrashPoints.Name(s) });

    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(90);

    [Theory, MemberData(nameof(Steps))]
    public async Task Killed_during_an_update_it_restarts_serving_a_model_that_loads(string stepName)
    {
        var step = CrashPoints.Parse(stepName)!.Value;
        await using var h = await AgentHarness.StartAsync();
        string dir = h.NewStateDir();
        var setup = await h.InstalledAsync(dir, TestModels.Mlp, "fmnist", "1");
        string v1 = setup.Reported().Active!.ArtifactSha256;
        await setup.DisposeAsync();

        var v2Manifest = h.Server.Publish(TestModels.Cnn, "fmnist", "2", "cnn");
        h.Server.Assign("d-2", v2Manifest);
        int port = AgentProcess.FreePort();
        string url = h.Server.Url;

        // 1. The agent picks up the update and dies at the step.
        using (var crashing = AgentProcess.Start(url, dir, port, step))
        {
            Assert.True(await crashing.WaitForExitAsync(Deadline), $"the agent did not reach step {stepName}:\n{crashing.Output}");
            Assert.NotEqual(0, crashing.ExitCode);
            Assert.Contains($"crash injected at install step {stepName}", crashing.Output);
        }

        // 2. Restarted without the fault (and with no assignment for now), it serves a model that loads.
        h.Server.Assignment = null;
        int downloadsBefore = h.Server.ArtifactRequests;
        using var agent = AgentProcess.Start(url, dir, port, crashAt: null);
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/"), Timeout = TimeSpan.FromSeconds(10) };
        var status = await PollAsync(http, agent, s => true);
        string expected = step >= InstallStep.Switched ? "2" : "1";
        Assert.True(status.Model is not null, $"after a kill at {stepName} the agent serves no model:\n{agent.Output}");
        Assert.Equal(expected, status.Model!.Version);
        Assert.Equal(expected == "2" ? "B" : "A", status.ActiveSlot);
        if (expected == "1") Assert.Equal(v1, status.Model.ArtifactSha256);

        var infer = await InferAsync(http);
        Assert.Equal(expected, infer.Model!.Version);
        Assert.InRange(infer.ArgMax, 0, 9);
        Assert.All(infer.Outputs[0].Data, v => Assert.True(float.IsFinite(v)));

        // 3. Given the assignment again, it completes the update, resuming from what is on disk.
        h.Server.Assign("d-2", v2Manifest);
        status = await PollAsync(http, agent, s => s.Model?.Version == "2" && s.Phase == InstallPhase.Installed && s.DeploymentId == "d-2");
        Assert.Equal("B", status.ActiveSlot);
        Assert.Equal("1", status.Standby?.Version);
        Assert.Equal("2", (await InferAsync(http)).Model!.Version);
        int downloads = h.Server.ArtifactRequests - downloadsBefore;
        if (step is InstallStep.DownloadStarted or InstallStep.DownloadHalfway)
        {
            // The partial file survived the kill: the download resumed with a Range request.
            Assert.Equal(1, downloads);
            var range = Assert.Single(h.Server.RangeRequests);
            Assert.True(long.Parse(range["bytes=".Length..].TrimEnd('-')) > 0, range);
        }
        else if (step > InstallStep.DownloadHalfway)
        {
            Assert.Equal(0, downloads);
        }
        Assert.Empty(h.Server.Rejections);
        // The server hears of it.
        var until = DateTime.UtcNow + Deadline;
        while (h.Server.Reports.LastOrDefault().State is not { Phase: InstallPhase.Installed, DeploymentId: "d-2" })
        {
            Assert.True(DateTime.UtcNow < until, $"the server never got the Installed report:\n{agent.Output}");
            await Task.Delay(100);
        }
    }

    private static async Task<AgentStatus> PollAsync(HttpClient http, AgentProcess agent, Func<AgentStatus, bool> done)
    {
        var until = DateTime.UtcNow + Deadline;
        while (true)
        {
            Assert.False(agent.HasExited, $"the agent exited:\n{agent.Output}");
            try
            {
                var status = JsonSerializer.Deserialize(await http.GetStringAsync("status"), AgentJson.Default.AgentStatus)!;
                if (done(status)) return status;
            }
            catch (HttpRequestException)
            {
            }
            if (DateTime.UtcNow > until) Assert.Fail($"timed out waiting for the agent's status:\n{agent.Output}");
            await Task.Delay(100);
        }
    }

    private static async Task<InferResponse> InferAsync(HttpClient http)
    {
        // Both models take 784 floats (one 28x28 image) in their declared shape.
        var (image, _) = TestModels.FirstImage("fmnist_cnn");
        var body = JsonSerializer.Serialize(new InferRequest { Input = image }, AgentJson.Default.InferRequest);
        var res = await http.PostAsync("infer", new StringContent(body, Encoding.UTF8, "application/json"));
        string text = await res.Content.ReadAsStringAsync();
        Assert.True(res.IsSuccessStatusCode, text);
        return JsonSerializer.Deserialize(text, AgentJson.Default.InferResponse)!;
    }
}
