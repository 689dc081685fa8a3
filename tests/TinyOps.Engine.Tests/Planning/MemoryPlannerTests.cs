using FsCheck;
using FsCheck.Fluent;
using TinyOps.Engine.Planning;
using TinyOps.Engine.Profiling;
using TinyOps.Engine.Runtime;
using Xunit;

namespace TinyOps.Engine.Tests.Planning;

public sealed class MemoryPlannerTests
{
    [Fact]
    public void BuffersWithDisjointLifetimesShareMemory()
    {
        var plan = MemoryPlanner.Plan([new(1024, 0, 1), new(1024, 2, 3), new(1024, 4, 5)]);
        Assert.Equal(1024, plan.ArenaBytes);
        Assert.Equal(1024, plan.LiveLowerBound);
    }

    [Fact]
    public void OverlappingBuffersDoNotShareMemory()
    {
        var plan = MemoryPlanner.Plan([new(1024, 0, 2), new(2048, 1, 3)]);
        Assert.Equal(3072, plan.ArenaBytes);
        Assert.True(plan.Offsets[0] >= 2048 || plan.Offsets[1] >= 1024);
    }

    /// <summary>For random lifetimes, no two live-at-once buffers overlap in memory, and the arena covers them all.</summary>
    [Fact]
    public void PlacementIsAlwaysSafe()
    {
        var request = Gen.Choose(1, 100_000).SelectMany(bytes => Gen.Choose(0, 40).SelectMany(first => Gen.Choose(0, 10).Select(len => new BufferRequest(bytes, first, first + len))));
        Prop.ForAll(request.ListOf().ToArbitrary(), list =>
        {
            var reqs = list.ToArray();
            var plan = MemoryPlanner.Plan(reqs);
            for (int i = 0; i < reqs.Length; i++)
            {
                if (plan.Offsets[i] + reqs[i].Bytes > plan.ArenaBytes) return false;
                for (int j = i + 1; j < reqs.Length; j++)
                {
                    bool timeOverlap = reqs[i].FirstStep <= reqs[j].LastStep && reqs[j].FirstStep <= reqs[i].LastStep;
                    bool memOverlap = plan.Offsets[i] < plan.Offsets[j] + reqs[j].Bytes && plan.Offsets[j] < plan.Offsets[i] + reqs[i].Bytes;
                    if (timeOverlap && memOverlap) return false;
                }
            }
            return plan.ArenaBytes >= plan.LiveLowerBound;
        }).Check(Config.QuickThrowOnFailure.WithMaxTest(300));
    }

    public static IEnumerable<object[]> RealModels() =>
    [
        [Path.Combine(TestPaths.ReferenceModels, "fmnist_mlp.onnx")],
        [Path.Combine(TestPaths.ReferenceModels, "fmnist_cnn.onnx")],
        [Path.Combine(TestPaths.TorchvisionModels, "mobilenet_v2", "model.onnx")],
        [Path.Combine(TestPaths.TorchvisionModels, "resnet18", "model.onnx")],
        [Path.Combine(TestPaths.TorchvisionModels, "squeezenet1_1", "model.onnx")],
    ];

    /// <summary>The planned peak is at most 10% above the largest sum of simultaneously live tensors.</summary>
    [Theory]
    [MemberData(nameof(RealModels))]
    public void PlannedPeakIsWithinTenPercentOfTheLiveBound(string path)
    {
        foreach (int batch in new[] { 1, 8 })
        {
            var profile = ModelProfiler.Profile(InferenceSession.Load(path), batch);
            Assert.True(profile.LiveLowerBound > 0);
            Assert.True(profile.PlannedArenaBytes <= profile.LiveLowerBound * 1.10,
                $"{Path.GetFileName(path)} batch {batch}: planned {profile.PlannedArenaBytes} bytes, live bound {profile.LiveLowerBound}");
        }
    }
}
