using System.Text;
using System.Text.Json;
using TinyOps.Agent.Install;
using TinyOps.Agent.State;
using TinyOps.Engine.Tensors;
using TinyOps.Protocol;
using TinyOps.Protocol.Devices;
using TinyOps.Protocol.Manifests;

namespace TinyOps.Agent.Tests;

public sealed class InstallTests
{
    private static AgentStateDocument StateOf(string dir) =>
        JsonSerializer.Deserialize(File.ReadAllBytes(Path.Combine(dir, "state.json")), AgentJson.Default.AgentStateDocument)!;

    [Fact]
    public async Task Installs_real_models_into_A_then_B_and_serves_them()
    {
        await using var h = await AgentHarness.StartAsync();
        string dir = h.NewStateDir();
        var agent = h.Agent(dir);
        var mlp = h.Server.Publish(TestModels.Mlp, "fmnist", "1", "mlp");
        h.Server.Assign("d-1", mlp);
        await agent.SyncOnceAsync();

        var r = agent.Reported();
        Assert.Equal(InstallPhase.Installed, r.Phase);
        Assert.Equal("d-1", r.DeploymentId);
        Assert.Equal("A", r.ActiveSlot);
        Assert.Equal("1", r.Active!.Version);
        Assert.Null(r.Standby);
        Assert.True(File.Exists(Path.Combine(dir, "slots", "A", "model.onnx")));
        Assert.True(File.Exists(Path.Combine(dir, "slots", "A", "manifest.json")));
        Assert.Equal("A", StateOf(dir).ActiveSlot);
        Assert.Empty(Directory.GetFiles(Path.Combine(dir, "download")));
        // The outcome is reported right away, with the deployment id.
        var reported = h.Server.LastReport(agent.DeviceId!)!;
        Assert.Equal(InstallPhase.Installed, reported.Phase);
        Assert.Equal("d-1", reported.DeploymentId);
        Assert.Equal(mlp.KeyId, h.Server.CurrentKey.KeyId);

        var input = TestModels.Input("fmnist_mlp");
        var result = agent.Infer(Feed(agent, input));
        Assert.Equal(TestModels.ExpectedClass("fmnist_mlp"), result.PredictedClass);
        Assert.Equal("1", result.Model.Version);

        h.Server.Assign("d-2", h.Server.Publish(TestModels.Cnn, "fmnist", "2", "cnn"));
        await agent.SyncOnceAsync();
        r = agent.Reported();
        Assert.Equal(InstallPhase.Installed, r.Phase);
        Assert.Equal("B", r.ActiveSlot);
        Assert.Equal("2", r.Active!.Version);
        Assert.Equal("1", r.Standby!.Version);
        Assert.Equal("B", StateOf(dir).ActiveSlot);
        var (image, shape) = TestModels.FirstImage("fmnist_cnn");
        var cnn = agent.Infer(image, shape);
        Assert.Equal(TestModels.ExpectedClass("fmnist_cnn"), cnn.PredictedClass);
        Assert.Equal("cnn", cnn.Model.VariantId);

        // Rolling back to version 1 reuses the standby slot without downloading again.
        int downloads = h.Server.ArtifactRequests;
        h.Server.Assign("d-3", mlp);
        await agent.SyncOnceAsync();
        Assert.Equal("A", agent.Reported().ActiveSlot);
        Assert.Equal("1", agent.Reported().Active!.Version);
        Assert.Equal(downloads, h.Server.ArtifactRequests);

        // The same assignment again changes nothing.
        await agent.SyncOnceAsync();
        Assert.Equal(downloads, h.Server.ArtifactRequests);
        Assert.Empty(h.Server.Rejections);
    }

    private static Dictionary<string, Tensor> Feed(DeviceAgent agent, Tensor input) =>
        new() { [ActiveInputName(agent)] = input };

    private static string ActiveInputName(DeviceAgent agent) =>
        TinyOps.Engine.Runtime.InferenceSession.Load(agent.Models.Active!.ModelPath).Inputs[0].Name;

    [Fact]
    public async Task A_tampered_artifact_is_refused_and_the_previous_model_keeps_serving()
    {
        await using var h = await AgentHarness.StartAsync();
        string dir = h.NewStateDir();
        var agent = await h.InstalledAsync(dir, TestModels.Mlp, "fmnist", "1");

        var cnn = TestModels.Cnn;
        var signed = h.Server.Publish(cnn, "fmnist", "2");
        var tampered = (byte[])cnn.Clone();
        tampered[tampered.Length / 2] ^= 0x5A;
        h.Server.ReplaceArtifact(Sha(cnn), tampered);
        h.Server.Assign("d-evil", signed);
        await agent.SyncOnceAsync();

        var r = agent.Reported();
        Assert.Equal(InstallPhase.Failed, r.Phase);
        Assert.Equal("d-evil", r.DeploymentId);
        Assert.Contains("artifact refused", r.LastError);
        Assert.Contains(Sha(cnn), r.LastError);
        Assert.Equal("1", r.Active!.Version);
        Assert.Equal("A", r.ActiveSlot);
        Assert.Empty(Directory.GetFiles(Path.Combine(dir, "download")));
        var reported = h.Server.LastReport(agent.DeviceId!)!;
        Assert.Equal(InstallPhase.Failed, reported.Phase);
        Assert.Contains("artifact refused", reported.LastError);

        var (image, shape) = TestModels.FirstImage("fmnist_mlp");
        Assert.Equal(TestModels.ExpectedClass("fmnist_mlp"), agent.Infer(image, shape).PredictedClass);

        // It stops retrying the same manifest after MaxInstallAttempts.
        for (int i = 0; i < 5; i++) await agent.SyncOnceAsync();
        Assert.Equal(3, h.Server.ArtifactRequests - 1);

        // After a restart the previous model still serves and the failure is still reported.
        await agent.DisposeAsync();
        var again = h.Agent(dir);
        await again.StartAsync();
        Assert.Equal("1", again.Reported().Active!.Version);
        Assert.Equal(InstallPhase.Failed, again.Reported().Phase);
    }

    [Fact]
    public async Task A_tampered_manifest_is_refused_before_any_download()
    {
        await using var h = await AgentHarness.StartAsync();
        string dir = h.NewStateDir();
        var agent = await h.InstalledAsync(dir, TestModels.Mlp, "fmnist", "1");
        int downloads = h.Server.ArtifactRequests;

        var signed = h.Server.Publish(TestModels.Cnn, "fmnist", "2");
        var manifest = JsonSerializer.Deserialize(Convert.FromBase64String(signed.Payload), ProtocolJson.Default.Manifest)!;
        var edited = manifest with { ModelName = "fmnist-evil", ArtifactSha256 = Sha(Encoding.UTF8.GetBytes("evil")) };
        var forged = signed with { Payload = Convert.ToBase64String(JsonSerializer.SerializeToUtf8Bytes(edited, ProtocolJson.Default.Manifest)) };
        h.Server.Assign("d-forged", forged);
        await agent.SyncOnceAsync();

        var r = agent.Reported();
        Assert.Equal(InstallPhase.Failed, r.Phase);
        Assert.Contains("manifest refused", r.LastError);
        Assert.Contains("signature does not verify", r.LastError);
        Assert.Equal(downloads, h.Server.ArtifactRequests);
        Assert.Equal("1", r.Active!.Version);
        Assert.Contains("signature does not verify", h.Server.LastReport(agent.DeviceId!)!.LastError);

        // A signature that is not base64, and a manifest from another project, are refused too.
        h.Server.Assign("d-garbage", signed with { Signature = "!!" });
        await agent.SyncOnceAsync();
        Assert.Contains("manifest refused", agent.Reported().LastError);

        var otherProject = manifest with { Project = "someone-else" };
        h.Server.Assign("d-other", h.Server.CurrentKey.SignManifest(JsonSerializer.SerializeToUtf8Bytes(otherProject, ProtocolJson.Default.Manifest)));
        await agent.SyncOnceAsync();
        Assert.Contains("is for project 'someone-else'", agent.Reported().LastError);
        Assert.Equal(downloads, h.Server.ArtifactRequests);

        // A genuine manifest still installs afterwards.
        h.Server.Assign("d-good", signed);
        await agent.SyncOnceAsync();
        Assert.Equal(InstallPhase.Installed, agent.Reported().Phase);
        Assert.Equal("2", agent.Reported().Active!.Version);
    }

    [Fact]
    public async Task A_download_cut_halfway_resumes_with_range_and_verifies()
    {
        await using var h = await AgentHarness.StartAsync();
        string dir = h.NewStateDir();
        var agent = h.Agent(dir);
        var cnn = TestModels.Cnn;
        h.Server.CutNextDownloadAfter(cnn.Length / 2);
        h.Server.Assign("d-1", h.Server.Publish(cnn, "fmnist", "1"));
        await agent.SyncOnceAsync();

        Assert.Equal(InstallPhase.Installed, agent.Reported().Phase);
        var range = Assert.Single(h.Server.RangeRequests);
        long from = long.Parse(range["bytes=".Length..].TrimEnd('-'));
        Assert.InRange(from, 1, cnn.Length / 2);
        Assert.Equal(2, h.Server.ArtifactRequests);
        Assert.Contains(h.Log, l => l.Contains("resuming the download"));
        Assert.Equal(Sha(cnn), SlotStore.Digest(Path.Combine(dir, "slots", "A", "model.onnx")).Sha256);
    }

    [Fact]
    public async Task A_partial_file_left_by_a_stopped_agent_is_resumed_after_restart()
    {
        await using var h = await AgentHarness.StartAsync();
        string dir = h.NewStateDir();
        var agent = h.Agent(dir);
        await agent.SyncOnceAsync();
        var cnn = TestModels.Cnn;
        var signed = h.Server.Publish(cnn, "fmnist", "1");
        // What a stopped agent leaves: the first 100000 bytes in download/<sha>.part.
        Directory.CreateDirectory(Path.Combine(dir, "download"));
        File.WriteAllBytes(Path.Combine(dir, "download", Sha(cnn) + ".part"), cnn[..100_000]);
        h.Server.Assign("d-1", signed);
        await agent.SyncOnceAsync();

        Assert.Equal(InstallPhase.Installed, agent.Reported().Phase);
        Assert.Equal("bytes=100000-", Assert.Single(h.Server.RangeRequests));
    }

    [Fact]
    public async Task A_corrupt_partial_file_fails_the_digest_and_is_deleted()
    {
        await using var h = await AgentHarness.StartAsync();
        string dir = h.NewStateDir();
        var agent = h.Agent(dir);
        await agent.SyncOnceAsync();
        var cnn = TestModels.Cnn;
        string part = Path.Combine(dir, "download", Sha(cnn) + ".part");
        Directory.CreateDirectory(Path.GetDirectoryName(part)!);
        File.WriteAllBytes(part, new byte[1000]);
        h.Server.Assign("d-1", h.Server.Publish(cnn, "fmnist", "1"));
        await agent.SyncOnceAsync();
        Assert.Equal(InstallPhase.Failed, agent.Reported().Phase);
        Assert.False(File.Exists(part));
        Assert.Null(agent.Reported().Active);
        // The next attempt downloads from the start and installs.
        await agent.SyncOnceAsync();
        Assert.Equal(InstallPhase.Installed, agent.Reported().Phase);
    }

    [Fact]
    public async Task A_model_that_fails_its_health_check_is_not_switched_to()
    {
        await using var h = await AgentHarness.StartAsync();
        string dir = h.NewStateDir();
        var agent = await h.InstalledAsync(dir, TestModels.Mlp, "fmnist", "1");
        h.Server.Assign("d-junk", h.Server.Publish(Encoding.UTF8.GetBytes("this is not an onnx model"), "fmnist", "2"));
        await agent.SyncOnceAsync();
        var r = agent.Reported();
        Assert.Equal(InstallPhase.Failed, r.Phase);
        Assert.Contains("health check", r.LastError);
        Assert.Equal("A", r.ActiveSlot);
        Assert.Equal("1", r.Active!.Version);
        Assert.Equal("A", StateOf(dir).ActiveSlot);
    }

    [Fact]
    public async Task On_start_an_active_slot_that_does_not_load_falls_back_to_the_other()
    {
        await using var h = await AgentHarness.StartAsync();
        string dir = h.NewStateDir();
        var agent = await h.InstalledAsync(dir, TestModels.Mlp, "fmnist", "1");
        h.Server.Assign("d-2", h.Server.Publish(TestModels.Cnn, "fmnist", "2"));
        await agent.SyncOnceAsync();
        Assert.Equal("B", agent.Reported().ActiveSlot);
        await agent.DisposeAsync();
        h.Server.Assignment = null;

        File.WriteAllBytes(Path.Combine(dir, "slots", "B", "model.onnx"), new byte[] { 1, 2, 3 });
        var again = h.Agent(dir);
        await again.StartAsync();
        var r = again.Reported();
        Assert.Equal("A", r.ActiveSlot);
        Assert.Equal("1", r.Active!.Version);
        Assert.Equal(InstallPhase.Failed, r.Phase);
        Assert.Contains("fell back to slot A", r.LastError);
        Assert.Equal("A", StateOf(dir).ActiveSlot);
        var (image, shape) = TestModels.FirstImage("fmnist_mlp");
        Assert.Equal(TestModels.ExpectedClass("fmnist_mlp"), again.Infer(image, shape).PredictedClass);
    }

    [Fact]
    public async Task Inference_before_any_install_says_so()
    {
        await using var h = await AgentHarness.StartAsync();
        var agent = h.Agent(h.NewStateDir());
        await agent.SyncOnceAsync();
        var e = Assert.Throws<AgentException>(() => agent.Infer(new float[784]));
        Assert.Contains("no model is installed", e.Message);
    }

    internal static string Sha(byte[] b) => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(b));
}
