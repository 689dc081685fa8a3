using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using TinyOps.Engine;
using TinyOps.Engine.Onnx;
using TinyOps.Engine.Tensors;
using TinyOps.Protocol;
using TinyOps.Protocol.Devices;
using TinyOps.Protocol.Management;
using TinyOps.Protocol.Manifests;
using TinyOps.Server.Optimization;
using TinyOps.Server.Tests.Deployments;
using TinyOps.Server.Tests.Registry;
using TinyOps.Trust.Signing;
using Xunit;
using static TinyOps.Server.Tests.Optimization.OptimizationApi;

namespace TinyOps.Server.Tests.Optimization;

/// <summary>
/// The recipe job on the real server and worker: a push queues it, it builds, evaluates, gates and registers the
/// variants with lineage and metrics, deployments choose among them, and failing jobs are reported without blocking.
/// </summary>
public sealed class RecipeJobTests
{
    private const string Recipe = """
        name: fmnist-test
        evaluation: fmnist-300
        latency_runs: 30
        variants:
          - name: int8
            targets: [cortex-m4, cortex-m0]
            passes:
              - fold-constants
              - quantize: { mode: static-int8, calibration: fashion-mnist, samples: 100 }
          - name: pruned-90
            targets: [gateway]
            passes:
              - prune: { sparsity: 0.9, scope: layer }
        """;

    private static Task<TestServer> StartAsync(string backend) => TestServer.StartAsync(backend, o =>
    {
        o.JobPollInterval = TimeSpan.FromMilliseconds(100);
        o.JobHeartbeatInterval = TimeSpan.FromMilliseconds(200);
    });

    [Theory]
    [MemberData(nameof(TestServer.Backends), MemberType = typeof(TestServer))]
    public async Task APushRunsTheRecipeAndRegistersGatedVariantsWithLineageAndMetrics(string backend)
    {
        await using var s = await StartAsync(backend);
        byte[] model = RegistryTests.FmnistCnn();
        Assert.Equal(HttpStatusCode.Created, (await CreateSetAsync(s.Admin, new CreateEvaluationSetRequest { Name = "fmnist-300", Kind = EvaluationSetKinds.FashionMnist, Count = 300 })).StatusCode);
        await (await RegistryTests.PushAsync(s.Admin, "fmnist", model)).ReadAsync<VersionDto>();
        Assert.Empty(await JobsAsync(s.Admin, "fmnist", "1")); // no recipe yet, nothing queued
        await (await PutRecipeAsync(s.Admin, "fmnist", Recipe)).ReadAsync<RecipeDto>();

        var v2 = await (await RegistryTests.PushAsync(s.Admin, "fmnist", model)).ReadAsync<VersionDto>();
        var queued = Assert.Single(await JobsAsync(s.Admin, "fmnist", v2.Version));
        Assert.Equal(RecipeJob.JobKind, queued.Kind);
        var job = await WaitForJobAsync(s.Admin, queued.Id);
        Assert.True(job.State == JobStates.Succeeded, $"{job.State}: {job.Error}");
        Assert.Equal(100, job.Progress);
        Assert.Equal("recipe 'fmnist-test' on fmnist:2: 2 variants registered (1 accepted, 1 rejected by the accuracy gate)", job.Message);

        var version = await (await s.Admin.GetAsync($"{Project}/models/fmnist/versions/2")).ReadAsync<VersionDto>();
        var baseVariant = version.Variants.Single(v => v.Name == "base");
        var int8 = version.Variants.Single(v => v.Name == "int8");
        var pruned = version.Variants.Single(v => v.Name == "pruned-90");

        // The base model was evaluated too: it calibrates the device-class estimates and is what the gate compares with.
        var be = baseVariant.Evaluation!;
        Assert.Equal("fmnist-300", be.EvaluationSet);
        Assert.Equal(300, be.EvaluatedSamples);
        Assert.InRange(be.Accuracy!.Value, 0.8, 0.95);
        Assert.Equal(be.Accuracy, baseVariant.Metrics["accuracy"]);
        Assert.True(be.LatencyUs > 0 && be.HostMacsPerSecond > 0);
        Assert.Equal(["cortex-m4", "cortex-m0", "phone", "gateway"], be.DeviceLatencyUs.Keys);
        // On the base model the estimate is exactly its MACs at the class's rate (MLPerf Tiny's Cortex-M4F: 12.7 ms).
        Assert.Equal(333_056 / DeviceProfile.CortexM4.EffectiveMacsPerSecond * 1e6, be.DeviceLatencyUs["cortex-m4"], 0.01 * be.DeviceLatencyUs["cortex-m4"]);

        // int8: accepted, with its lineage and its evaluation.
        Assert.Equal("accepted", int8.Status);
        Assert.StartsWith("accuracy within budget", int8.StatusReason);
        Assert.Equal(baseVariant.Id, int8.ParentId);
        Assert.Equal("fmnist-test", int8.Recipe);
        var lineage = int8.Lineage!;
        Assert.Equal(baseVariant.Id, lineage.BaseVariantId);
        Assert.Equal("2", lineage.BaseVersion);
        Assert.Equal(RecipeStore.Sha256(Recipe), lineage.RecipeSha256);
        Assert.Equal("int8", lineage.Variant);
        Assert.Equal(["fold-constants", "quantize"], lineage.Passes.Select(p => p.Pass));
        Assert.Equal(new Dictionary<string, string> { ["mode"] = "static-int8", ["calibration"] = "fashion-mnist", ["samples"] = "100" }, lineage.Passes[1].Parameters);
        Assert.Equal(["cortex-m4", "cortex-m0"], lineage.Targets);
        Assert.Equal(1.0, lineage.MaxAccuracyDrop);
        Assert.Equal(EngineInfo.Version, lineage.EngineVersion);
        Assert.Equal(job.Id, lineage.JobId);
        var ie = int8.Evaluation!;
        Assert.Equal(be.Accuracy, ie.BaseAccuracy);
        Assert.Equal(Math.Round((be.Accuracy!.Value - ie.Accuracy!.Value) * 100, 4), ie.AccuracyDrop!.Value, 6);
        Assert.Equal(int8.ArtifactSize, ie.FileBytes);
        Assert.True(ie.FileBytes * 3 < baseVariant.ArtifactSize, $"int8 is {ie.FileBytes} bytes, base {baseVariant.ArtifactSize}");
        Assert.True(ie.Operators.ContainsKey("QLinearConv"));
        Assert.Contains("QLinearConv", int8.Metadata.Operators);
        Assert.True(ie.PlannedPeakBytes < be.PlannedPeakBytes);
        Assert.Equal(be.HostMacsPerSecond, ie.HostMacsPerSecond);
        Assert.Equal(8.0, ie.DeviceLatencyUs["cortex-m0"] / ie.DeviceLatencyUs["cortex-m4"], 2); // the M0 profile is 1/8 of the M4's rate
        Assert.Equal(ie.LatencyUs, int8.Metrics["latency_us"]);

        // pruned-90 lost too much: kept, rejected, with the reason.
        Assert.Equal("rejected", pruned.Status);
        Assert.Contains("more than the 1 variant 'pruned-90' may lose (its max_accuracy_drop)", pruned.StatusReason);
        Assert.True(pruned.Evaluation!.AccuracyDrop > 1);
        Assert.True(pruned.Evaluation.WeightSparsity >= 0.89);

        // Signed and content-addressed like any artifact.
        var keys = await (await s.Admin.GetAsync(ApiRoutes.SigningKeys)).ReadAsync<List<SigningKeyInfo>>();
        var trust = new TrustStore(keys);
        foreach (var v in new[] { int8, pruned })
        {
            Assert.True(trust.VerifyArtifact(v.ArtifactSha256, v.SigningKeyId, v.ArtifactSignature));
            var bytes = await (await s.Admin.GetAsync($"{Project}/artifacts/{v.ArtifactSha256}")).Content.ReadAsByteArrayAsync();
            Assert.Equal(v.ArtifactSha256, Convert.ToHexStringLower(SHA256.HashData(bytes)));
            Assert.Equal(v.Name, OnnxLoader.Load(bytes, v.Name).Metadata["tinyops.variant"]);
        }
        var audit = await (await s.Admin.GetAsync($"{ApiRoutes.Audit}?project={P}&limit=100")).ReadAsync<List<AuditEntryDto>>();
        Assert.Contains(audit, e => e.Action == "variant.register" && e.Actor == "job:" + job.Id && e.Target == int8.Id);
        Assert.Contains(audit, e => e.Action == "version.push" && e.Detail.Contains($"recipe 'fmnist-test' queued as job {job.Id}", StringComparison.Ordinal));

        // Deployments choose among them: the 16 KiB Cortex-M0 gets int8 (the base needs 30.6 KiB), never the rejected one.
        var db = s.Server.Database;
        var m0 = await Seed.DeviceAsync(db, P, "m0", Seed.Class("cortex-m0", 16 * Seed.KiB, 256 * Seed.KiB), "t");
        var phone = await Seed.DeviceAsync(db, P, "phone", Seed.Class("phone", 4L << 30, 64L << 30), "t");
        var d = await (await s.Admin.PostAsJsonAsync($"{Project}/deployments",
            new CreateDeploymentRequest { Model = "fmnist", Version = "2", Selector = ["t"], CanaryPercent = 100 }, ProtocolJsonOptions.Options)).ReadAsync<DeploymentDto>();
        var m0Target = d.Targets.Single(t => t.DeviceId == m0.Id);
        Assert.Equal(int8.Id, m0Target.VariantId);
        Assert.Contains($"{baseVariant.Id} (base) does not fit: planned peak memory 30.6 KiB exceeds the device's RAM 16.0 KiB", m0Target.Reason);
        Assert.Contains($"{pruned.Id} (pruned-90) is rejected (accuracy dropped", m0Target.Reason);
        // int8 targets the microcontroller classes only, so the phone gets the base model.
        var phoneChoice = d.Targets.Single(t => t.DeviceId == phone.Id);
        Assert.Equal(baseVariant.Id, phoneChoice.VariantId);
        Assert.Contains($"{int8.Id} (int8) is not meant for this class: its recipe targets cortex-m4, cortex-m0, not phone", phoneChoice.Reason);

        // A latency budget on the Cortex-M4 class that only the faster of base and int8 meets.
        var m4 = await Seed.DeviceAsync(db, P, "m4", Seed.Class("cortex-m4", 256 * Seed.KiB, 1024 * Seed.KiB), "m4");
        var fastest = new[] { baseVariant, int8 }.OrderBy(v => v.Evaluation!.DeviceLatencyUs["cortex-m4"]).First();
        var slowest = new[] { baseVariant, int8 }.Single(v => v.Id != fastest.Id);
        double budget = fastest.Evaluation!.DeviceLatencyUs["cortex-m4"];
        var budgeted = await (await s.Admin.PostAsJsonAsync($"{Project}/deployments", new CreateDeploymentRequest
        {
            Model = "fmnist", Version = "2", Selector = ["m4"], CanaryPercent = 100, LatencyBudgetsUs = new Dictionary<string, double> { ["cortex-m4"] = budget },
        }, ProtocolJsonOptions.Options)).ReadAsync<DeploymentDto>();
        Assert.Equal(budget, budgeted.LatencyBudgetsUs["cortex-m4"]);
        var m4Target = budgeted.Targets.Single(t => t.DeviceId == m4.Id);
        Assert.Equal(fastest.Id, m4Target.VariantId);
        Assert.Contains("within the", m4Target.Reason);
        if (slowest.Evaluation!.DeviceLatencyUs["cortex-m4"] > budget)
            Assert.Contains($"{slowest.Id} ({slowest.Name}) does not fit: its estimated latency on cortex-m4", m4Target.Reason);
        var refused = await s.Admin.PostAsJsonAsync($"{Project}/deployments", new CreateDeploymentRequest
        {
            Model = "fmnist", Version = "2", Selector = ["t"], LatencyBudgetsUs = new Dictionary<string, double> { ["phone"] = -5 },
        }, ProtocolJsonOptions.Options);
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Equal("latencyBudgetsUs", (await ProblemAsync(refused)).Field);

        // Running the recipe again on the version registers nothing twice.
        var again = await s.Admin.PostAsync($"{Project}/models/fmnist/versions/2/optimize", null);
        Assert.Equal(HttpStatusCode.Accepted, again.StatusCode);
        var rerun = await WaitForJobAsync(s.Admin, (await again.ReadAsync<JobDto>()).Id);
        Assert.Equal(JobStates.Succeeded, rerun.State);
        Assert.EndsWith("0 variants registered (0 accepted, 0 rejected by the accuracy gate); already registered, skipped: int8, pruned-90", rerun.Message);
        Assert.Equal(3, (await (await s.Admin.GetAsync($"{Project}/models/fmnist/versions/2")).ReadAsync<VersionDto>()).Variants.Count);
    }

    [Theory]
    [MemberData(nameof(TestServer.Backends), MemberType = typeof(TestServer))]
    public async Task AFailingJobIsReportedWithItsErrorAndTheNextJobsStillRun(string backend)
    {
        await using var s = await StartAsync(backend);
        byte[] model = RegistryTests.FmnistCnn();
        // A labelled set of 4x4 images: it cannot evaluate (or calibrate) a 28x28 model.
        var tiny = new CreateEvaluationSetRequest
        {
            Name = "tiny",
            Kind = EvaluationSetKinds.Tensors,
            Inputs = Convert.ToBase64String(OnnxTensors.WritePb(Tensor.FromArray(new float[3 * 16], 3, 1, 4, 4), "x")),
            Labels = Convert.ToBase64String(OnnxTensors.WritePb(Tensor.FromArray(new long[] { 0, 1, 2 }, 3), "y")),
        };
        Assert.Equal(HttpStatusCode.Created, (await CreateSetAsync(s.Admin, tiny)).StatusCode);
        foreach (var name in new[] { "bad", "mixed", "good" }) await RegistryTests.PushAsync(s.Admin, name, model);
        await (await PutRecipeAsync(s.Admin, "bad", "name: r\nevaluation: tiny\nlatency_runs: 0\nvariants:\n  - name: f\n    passes: [fold-constants]\n")).ReadAsync<RecipeDto>();
        await (await PutRecipeAsync(s.Admin, "mixed", """
            name: r
            latency_runs: 0
            variants:
              - name: broken
                passes:
                  - quantize: { calibration: tiny, samples: 3 }
              - name: folded
                passes: [fold-constants]
            """)).ReadAsync<RecipeDto>();
        await (await PutRecipeAsync(s.Admin, "good", "name: r\nlatency_runs: 0\nvariants:\n  - name: f\n    passes: [fold-constants]\n")).ReadAsync<RecipeDto>();

        foreach (var name in new[] { "bad", "mixed", "good" }) await RegistryTests.PushAsync(s.Admin, name, model);
        var bad = await WaitForJobAsync(s.Admin, Assert.Single(await JobsAsync(s.Admin, "bad", "2")).Id);
        var mixed = await WaitForJobAsync(s.Admin, Assert.Single(await JobsAsync(s.Admin, "mixed", "2")).Id);
        var good = await WaitForJobAsync(s.Admin, Assert.Single(await JobsAsync(s.Admin, "good", "2")).Id);

        Assert.Equal(JobStates.Failed, bad.State);
        Assert.Contains("evaluating the base model bad:2 on tiny failed, so no variant was built", bad.Error);
        Assert.Contains("evaluation set 'tiny' holds samples of shape [1,4,4], but bad:2's input", bad.Error);
        Assert.Equal(["base"], (await (await s.Admin.GetAsync($"{Project}/models/bad/versions/2")).ReadAsync<VersionDto>()).Variants.Select(v => v.Name));

        Assert.Equal(JobStates.Failed, mixed.State);
        Assert.StartsWith("1 of 2 variants failed: variant 'broken': recipe of model 'mixed': variant 'broken', pass 1 'quantize' failed on mixed:2", mixed.Error);
        Assert.EndsWith("(recipe 'r' on mixed:2: 1 variants registered (1 accepted, 0 rejected by the accuracy gate))", mixed.Error);
        Assert.Equal(["base", "folded"], (await (await s.Admin.GetAsync($"{Project}/models/mixed/versions/2")).ReadAsync<VersionDto>()).Variants.Select(v => v.Name));

        Assert.Equal(JobStates.Succeeded, good.State);
        var folded = (await (await s.Admin.GetAsync($"{Project}/models/good/versions/2")).ReadAsync<VersionDto>()).Variants.Single(v => v.Name == "f");
        Assert.Equal("accepted", folded.Status);
        Assert.Contains("not gated", folded.StatusReason);
        Assert.Null(folded.Evaluation!.Accuracy);
        Assert.Null(folded.Evaluation.LatencyUs); // latency_runs: 0
        Assert.True(folded.Evaluation.PlannedPeakBytes > 0);
    }
}
