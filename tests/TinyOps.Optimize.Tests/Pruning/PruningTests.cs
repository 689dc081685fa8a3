using TinyOps.Engine.Onnx;
using TinyOps.Engine.Profiling;
using TinyOps.Engine.Runtime;
using TinyOps.Engine.Tensors;
using TinyOps.Optimize.Passes;
using TinyOps.Optimize.Pruning;
using Xunit;

namespace TinyOps.Optimize.Tests.Pruning;

/// <summary>Magnitude and channel pruning on fmnist_cnn, fmnist_mlp and the conformance models.</summary>
public sealed class PruningTests
{
    private static readonly Lazy<double> BaseAccuracy = new(() => TestModels.Accuracy(OnnxLoader.LoadFile(TestPaths.FmnistCnn)));

    [Fact]
    public void FiftyPercentMagnitudePruningOfFmnistCnnLosesAtMostOnePoint()
    {
        var pruned = TestModels.ApplyAndReload(new MagnitudePruning(0.5), OnnxLoader.LoadFile(TestPaths.FmnistCnn));
        Assert.Equal(0.5, TinyOps.Optimize.Evaluation.ModelEvaluator.WeightSparsity(pruned), 6);
        double acc = TestModels.Accuracy(pruned);
        Assert.True(BaseAccuracy.Value - acc <= 0.01, $"50 % pruned accuracy {acc:P2}, base {BaseAccuracy.Value:P2}");
    }

    [Theory]
    [InlineData(PruningScope.Layer)]
    [InlineData(PruningScope.Global)]
    public void TheWeightsReachTheSparsity(PruningScope scope)
    {
        var outcome = new MagnitudePruning(0.3, scope).Run(OnnxLoader.LoadFile(TestPaths.FmnistMlp), PassContext.Default);
        var edit = new GraphEdit(outcome.Model);
        foreach (var w in MagnitudePruning.WeightNames(edit))
        {
            var v = edit.Graph.Initializers[w].ReadOnlySpan<float>();
            double s = (double)MagnitudePruning.CountZeros(v) / v.Length;
            if (scope == PruningScope.Layer) Assert.Equal(Math.Floor(0.3 * v.Length) / v.Length, s, 6);
        }
        Assert.Contains("30.0 %", outcome.Summary);
    }

    [Fact]
    public void ZeroSparsityChangesNothing()
    {
        var model = OnnxLoader.LoadFile(TestPaths.FmnistCnn);
        var x = TestModels.FashionBatch(32);
        Assert.Equal(TestModels.Run(model, x), TestModels.Run(TestModels.ApplyAndReload(new MagnitudePruning(0), model), x));
    }

    [Theory]
    [InlineData(1.0)]
    [InlineData(1.5)]
    [InlineData(-0.1)]
    [InlineData(double.NaN)]
    public void ImpossibleSparsityIsRefused(double s)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new MagnitudePruning(s));
        Assert.Contains("sparsity", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new ChannelPruning(s));
    }

    [Fact]
    public void ModelWithoutWeightsIsRefusedByName()
    {
        var m = ConformanceModel("node/test_relu");
        var e = Assert.Throws<PassException>(() => new MagnitudePruning(0.5).Run(m, PassContext.Default));
        Assert.Contains("nothing to prune", e.Message);
    }

    [Fact]
    public void ChannelPruningShrinksFmnistCnnAndKeepsItValid()
    {
        var model = OnnxLoader.LoadFile(TestPaths.FmnistCnn);
        var outcome = new ChannelPruning(0.25).Run(model, PassContext.Default);
        Assert.Equal(3, outcome.Details.Count); // c1 -> c2, c2 -> (Flatten) f1, f1 -> f2
        var pruned = OnnxLoader.Load(OnnxWriter.Write(outcome.Model), "pruned");
        var init = pruned.Graph.Initializers;
        var c1 = pruned.Graph.Nodes.First(n => n.OpType == "Conv");
        Assert.Equal(6, init[c1.Inputs[1]].Shape[0]);
        var before = ModelProfiler.Profile(new InferenceSession(model));
        var after = ModelProfiler.Profile(new InferenceSession(pruned));
        Assert.True(after.TotalMacs < before.TotalMacs * 0.7, $"MACs {after.TotalMacs:N0} of {before.TotalMacs:N0}");
        Assert.True(after.TotalParameters < before.TotalParameters * 0.8);
        Assert.Equal(160, TestModels.Run(pruned, TestModels.FashionBatch(16)).Length);
        double acc = TestModels.Accuracy(pruned);
        Assert.True(acc > 0.8, $"accuracy {acc:P2} after removing a quarter of the channels");
    }

    [Fact]
    public void RemovingUnitsWhoseWeightsAreZeroKeepsTheOutputs()
    {
        // fmnist_mlp: Flatten -> Gemm a (128 units) -> Relu -> Gemm b. Zero 32 units of a (weights and bias): they
        // output Relu(0) = 0, so removing them (the 32 smallest L1 norms at ratio 0.25) changes no output beyond
        // the order of the float sums.
        var model = OnnxLoader.LoadFile(TestPaths.FmnistMlp);
        var edit = new GraphEdit(model);
        var a = edit.Graph.Nodes.First(n => n.OpType == "Gemm");
        var wt = edit.Graph.Initializers[a.Inputs[1]];
        Assert.Equal(1, a.GetInt("transB", 0)); // [128, 784]
        var w = wt.ToArray<float>();
        var b = edit.Graph.Initializers[a.Inputs[2]].ToArray<float>();
        for (int u = 0; u < 128; u += 4) { Array.Clear(w, u * 784, 784); b[u] = 0; }
        edit.Graph.Initializers[a.Inputs[1]] = Tensor.FromArray(w, 128, 784);
        edit.Graph.Initializers[a.Inputs[2]] = Tensor.FromArray(b, 128);
        var zeroed = edit.ToModel();
        var outcome = new ChannelPruning(0.25).Run(zeroed, PassContext.Default);
        Assert.Single(outcome.Details);
        Assert.Contains("128 -> 96", outcome.Details[0]);
        var pruned = OnnxLoader.Load(OnnxWriter.Write(outcome.Model), "pruned");
        var x = TestModels.FashionBatch(64);
        double rel = TestModels.RelativeMaxDiff(TestModels.Run(zeroed, x), TestModels.Run(pruned, x));
        Assert.True(rel <= 1e-6, $"outputs differ by {rel:E2} of the largest");
    }

    internal static TinyOps.Engine.Ir.Model ConformanceModel(string id) => OnnxLoader.LoadFile(Path.Combine(TestPaths.Shared, "onnx", id, "model.onnx"));

    [Fact]
    public void PruningKeepsConformanceModelsValid()
    {
        int pruned = 0;
        foreach (var c in Passes.ConformanceSuites.Cases.Value)
        {
            if (MagnitudePruning.WeightNames(new GraphEdit(c.Model)).Count == 0) continue;
            foreach (IModelPass pass in new IModelPass[] { new MagnitudePruning(0.5), new ChannelPruning(0.5) })
            {
                var m = TestModels.ApplyAndReload(pass, c.Model);
                var outs = Passes.ConformanceSuites.Run(m, c.Inputs);
                Assert.True(outs is not null, $"{c.Id} after {pass.Name} no longer runs");
                Assert.All(outs!, (t, i) => Assert.Equal(c.Actual[i].Shape, t.Shape));
            }
            pruned++;
        }
        Assert.True(pruned >= 20, $"only {pruned} conformance models have weights to prune");
    }
}
