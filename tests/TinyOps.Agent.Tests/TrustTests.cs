using System.Text.Json;
using TinyOps.Agent.State;
using TinyOps.Protocol.Devices;
using TinyOps.Trust.Signing;

namespace TinyOps.Agent.Tests;

public sealed class TrustTests
{
    [Fact]
    public async Task A_rotated_key_is_accepted_only_with_a_valid_endorsement()
    {
        await using var h = await AgentHarness.StartAsync();
        string dir = h.NewStateDir();
        var agent = h.Agent(dir);
        await agent.SyncOnceAsync();
        var original = h.Server.CurrentKey;

        // A key nobody trusted endorsed, a key with a forged endorsement, a key with none: all ignored.
        using var stranger = SigningKey.Generate(DateTimeOffset.UtcNow);
        var viaStranger = h.Server.Rotate(endorse: true, endorseWith: stranger);
        var unendorsed = h.Server.Rotate(endorse: false);
        using var forgedKey = SigningKey.Generate(DateTimeOffset.UtcNow);
        var forged = FakeControlPlane.Info(forgedKey, original) with { PublicKey = stranger.PublicKey };
        h.Server.Offered.Add(forged);
        await agent.SyncOnceAsync();
        Assert.Single(agent.TrustedKeys);

        // A manifest signed with an unendorsed key is refused.
        h.Server.Assign("d-rogue", h.Server.Publish(TestModels.Mlp, "fmnist", "1", signWith: unendorsed));
        await agent.SyncOnceAsync();
        Assert.Equal(InstallPhase.Failed, agent.Reported().Phase);
        Assert.Contains($"unknown key '{unendorsed.KeyId}'", agent.Reported().LastError);
        Assert.Equal(0, h.Server.ArtifactRequests);
        Assert.Null(agent.Reported().Active);

        // The registry rotates properly: the new key is endorsed by the original; it is accepted and persisted.
        var rotated = h.Server.Rotate(endorse: true, endorseWith: original);
        // And a further rotation endorsed by the rotated key: accepted through the chain.
        var third = h.Server.Rotate(endorse: true, endorseWith: rotated);
        h.Server.Assign("d-rotated", h.Server.Publish(TestModels.Mlp, "fmnist", "1", signWith: third));
        await agent.SyncOnceAsync();
        Assert.Equal(3, agent.TrustedKeys.Count);
        Assert.Contains(agent.TrustedKeys, k => k.KeyId == rotated.KeyId);
        Assert.Contains(agent.TrustedKeys, k => k.KeyId == third.KeyId);
        Assert.DoesNotContain(agent.TrustedKeys, k => k.KeyId == viaStranger.KeyId || k.KeyId == unendorsed.KeyId);
        Assert.Equal(InstallPhase.Installed, agent.Reported().Phase);
        Assert.Equal("d-rotated", agent.Reported().DeploymentId);

        var persisted = JsonSerializer.Deserialize(File.ReadAllBytes(Path.Combine(dir, "trust.json")), AgentJson.Default.ListSigningKeyInfo)!;
        Assert.Equal(3, persisted.Count);

        // After a restart the slot's manifest (signed with the rotated key) still verifies and serves.
        await agent.DisposeAsync();
        var again = h.Agent(dir);
        await again.StartAsync();
        Assert.Equal(3, again.TrustedKeys.Count);
        Assert.Equal("1", again.Reported().Active!.Version);
    }
}
