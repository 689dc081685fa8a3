using Spectre.Console;
using TinyOps.Cli.Api;
using TinyOps.Cli.Demo;
using TinyOps.Engine.Data;
using TinyOps.Protocol.Devices;
using TinyOps.Protocol.Management;
using TinyOps.Server.Hosting;
using Xunit;

namespace TinyOps.EndToEnd.Tests;

/// <summary>
/// The demo's fleet half closes the loop: the recipe it sets before the push runs as a job that registers evaluated
/// variants with lineage, and the deployment gives the 16 KiB Cortex-M0 devices the int8 variant (refused before
/// recipes existed), which they install and run. With Fashion-MNIST (<see cref="DashboardTests"/>) and without it
/// (here): then the gate uses the embedded test batch, uploaded as a tensors evaluation set.
/// </summary>
[Collection(E2E.RecipeJobs)]
public sealed class DemoTests
{
    [Fact]
    public async Task WithoutFashionMnistTheDemoGatesOnItsEmbeddedBatchAndStillFitsTheCortexM0()
    {
        string missing = Path.Combine(Path.GetTempPath(), "tinyops-e2e-no-fmnist-" + Guid.NewGuid().ToString("N")[..8]);
        var result = await RunDemoAsync(8, missing);

        Assert.Equal((EvaluationSetKinds.Tensors, 8), (result.EvaluationSet.Kind, result.EvaluationSet.Count));
        AssertTheLoopClosed(result, DemoRecipe.BatchSet, 8, DemoRecipe.BatchSet);
    }

    [Fact]
    public void TheEmbeddedBatchIsLabelledWithTheFashionMnistTestLabels()
    {
        var batch = Batch();
        var test = FashionMnist.LoadTest();
        Assert.Equal(8, batch.Count);
        for (int i = 0; i < batch.Count; i++)
        {
            Assert.Equal(test.Image(i).ToArray(), batch.Image(i));
            Assert.Equal((int)test.Labels[i], batch.Labels[i]);
        }
    }

    internal static SampleBatch Batch()
    {
        string dir = Path.Combine(E2E.RepoRoot, "samples", "fmnist_cnn", "test_data_set_0");
        return SampleBatch.Read(File.ReadAllBytes(Path.Combine(dir, "input_0.pb")), File.ReadAllBytes(Path.Combine(dir, "output_0.pb")));
    }

    /// <summary>Runs the fleet demo quietly on a small fleet; <paramref name="fashionMnist"/> null is the server's default folder.</summary>
    internal static Task<FleetDemoResult> RunDemoAsync(int devices, string? fashionMnist, Func<TinyOpsServer, Task>? serve = null) =>
        FleetDemo.RunAsync(new FleetDemo.Options
        {
            Model = E2E.CnnModel,
            Samples = Batch(),
            FashionMnistDirectory = fashionMnist,
            Devices = devices,
            InferencesPerDevice = 5,
            DataDirectory = Path.Combine(Path.GetTempPath(), "tinyops-e2e-demo-" + Guid.NewGuid().ToString("N")[..8]),
            Serve = serve,
        }, AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(TextWriter.Null) }));

    /// <summary>
    /// The recipe job succeeded and registered every variant with its lineage and evaluation; the gate accepted int8
    /// and rejected pruned-90; every device (the Cortex-M0 ones too) installed a variant, the Cortex-M0 ones int8,
    /// whose planned peak fits their RAM where the base model's does not; they ran it and their telemetry arrived.
    /// </summary>
    internal static void AssertTheLoopClosed(FleetDemoResult result, string evaluationSet, int samples, string calibration)
    {
        Assert.True(result.Job.State == JobStates.Succeeded, $"{result.Job.State}: {result.Job.Error}");
        var byName = result.Version.Variants.ToDictionary(v => v.Name);
        Assert.Equal(["base", "fp16-weights", "int8", "pruned-90"], byName.Keys.Order());
        var baseVariant = byName["base"];
        Assert.Equal(evaluationSet, baseVariant.Evaluation!.EvaluationSet);
        foreach (var v in result.Version.Variants.Where(v => v.Name != "base"))
        {
            Assert.Equal(baseVariant.Id, v.ParentId);
            var l = v.Lineage!;
            Assert.Equal((baseVariant.Id, result.Version.Version, DemoRecipe.Name, v.Name, result.Job.Id), (l.BaseVariantId, l.BaseVersion, l.Recipe, l.Variant, l.JobId));
            Assert.Equal((evaluationSet, samples), (v.Evaluation!.EvaluationSet, v.Evaluation.EvaluatedSamples));
            Assert.Equal(DeviceProfile.All.Select(c => c.DeviceClass), v.Evaluation.DeviceLatencyUs.Keys);
        }
        var int8 = byName["int8"];
        Assert.Equal("accepted", int8.Status);
        Assert.Equal(["cortex-m0", "cortex-m4"], int8.Lineage!.Targets);
        Assert.Equal(calibration, int8.Lineage.Passes.Single(p => p.Pass == "quantize").Parameters["calibration"]);
        Assert.InRange(int8.Metadata.PlannedPeakBytes, 1, DeviceProfile.CortexM0.RamBytes);
        Assert.True(baseVariant.Metadata.PlannedPeakBytes > DeviceProfile.CortexM0.RamBytes);
        Assert.Equal("rejected", byName["pruned-90"].Status);

        var d = result.Deployment;
        Assert.Equal("completed", d.Status);
        Assert.Equal((0, 0, result.Devices), (d.Incompatible, d.Failed, d.Installed));
        Assert.DoesNotContain(d.Targets, t => t.VariantId == byName["pruned-90"].Id);
        var m0 = d.Targets.Where(t => t.DeviceClass == "cortex-m0").ToList();
        Assert.NotEmpty(m0);
        foreach (var t in m0)
        {
            Assert.Equal((int8.Id, "installed"), (t.VariantId, t.State));
            Assert.StartsWith($"chose {int8.Id} (int8): fits", t.Reason);
            Assert.Contains($"{baseVariant.Id} (base) does not fit: planned peak memory 30.6 KiB exceeds the device's RAM 16.0 KiB", t.Reason);
        }
        Assert.Equal(result.Inferences, result.Telemetry.Inferences);
        var m0Telemetry = Assert.Single(result.Telemetry.ByClass, c => c.DeviceClass == "cortex-m0");
        Assert.Equal(int8.Id, m0Telemetry.VariantId);
        Assert.Equal(5L * m0.Count, m0Telemetry.Inferences);
    }
}
