using TinyOps.Engine.Conformance;
using TinyOps.Engine.Onnx;
using TinyOps.Engine.Tensors;
using TinyOps.Optimize.Passes;
using Xunit;

namespace TinyOps.Optimize.Tests.Passes;

/// <summary>Float16 weight storage: half the weight bytes, float16 rounding of the outputs, and files the engine runs.</summary>
public sealed class Float16WeightsTests
{
    [Fact]
    public void FmnistCnnHalvesItsWeightsAndKeepsItsAccuracy()
    {
        var model = OnnxLoader.LoadFile(TestPaths.FmnistCnn);
        var bytes = OnnxWriter.Write(new Float16Weights().Run(model, PassContext.Default).Model);
        var m = OnnxLoader.Load(bytes, "fp16");
        Assert.Equal(6, m.Graph.Nodes.Count(n => n.OpType == "Cast"));
        Assert.DoesNotContain(m.Graph.Initializers.Values, t => t.Type == DataType.Float32 && t.Length >= 16); // c1's 8 biases stay
        Assert.True(bytes.Length < new FileInfo(TestPaths.FmnistCnn).Length * 0.52, $"{bytes.Length} bytes");
        var x = TestModels.FashionBatch(100);
        double rel = TestModels.RelativeMaxDiff(TestModels.Run(model, x), TestModels.Run(m, x));
        Assert.True(rel < 2e-3, $"float16 weights moved the outputs by {rel:E2} of the largest");
        Assert.Equal(TestModels.Accuracy(model), TestModels.Accuracy(m), 3);
        // constant folding keeps the float16 storage
        var folded = new ConstantFolding().Run(m, PassContext.Default).Model;
        Assert.Equal(6, folded.Graph.Nodes.Count(n => n.OpType == "Cast"));
    }

    [Fact]
    public void WeightsBeyondFloat16RangeStayFloat32()
    {
        var model = OnnxLoader.LoadFile(TestPaths.FmnistMlp);
        var edit = new GraphEdit(model);
        var name = edit.Graph.Nodes.First(n => n.OpType == "Gemm").Inputs[1];
        var w = edit.Graph.Initializers[name].ToArray<float>();
        w[0] = 1e6f;
        edit.Graph.Initializers[name] = Tensor.FromArray(w, edit.Graph.Initializers[name].Shape);
        var outcome = new Float16Weights().Run(edit.ToModel(), PassContext.Default);
        Assert.Contains(outcome.Details, d => d.Contains(name) && d.Contains("65504"));
        Assert.Equal(DataType.Float32, outcome.Model.Graph.Initializers[name].Type);
    }

    [Fact]
    public void ConformanceModelsStayWithinFloat16Rounding()
    {
        var failures = new List<string>();
        int changed = 0;
        foreach (var c in ConformanceSuites.Cases.Value)
        {
            var outcome = new Float16Weights().Run(c.Model, PassContext.Default);
            if (outcome.Model.Graph.Nodes.Count == c.Model.Graph.Nodes.Count) continue;
            changed++;
            var after = ConformanceSuites.Run(OnnxLoader.Load(OnnxWriter.Write(outcome.Model), c.Id), c.Inputs);
            if (after is null) { failures.Add($"{c.Id}: no longer runs"); continue; }
            for (int i = 0; i < after.Length; i++)
                if (OnnxTestRunner.Compare(after[i], c.Actual[i], 5e-3, 1e-3) is { } diff) failures.Add($"{c.Id} output {i}: {diff}");
        }
        Assert.True(changed >= 10, $"only {changed} conformance models have float32 weights of 16 elements or more");
        Assert.True(failures.Count == 0, string.Join("\n", failures.Take(20)));
    }
}
