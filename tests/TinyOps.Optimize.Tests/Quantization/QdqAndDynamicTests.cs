using TinyOps.Engine.Ir;
using TinyOps.Engine.Onnx;
using TinyOps.Engine.Tensors;
using TinyOps.Optimize.Quantization;
using Xunit;

namespace TinyOps.Optimize.Tests.Quantization;

/// <summary>QDQ static quantization and dynamic quantization on the reference models and the conformance models.</summary>
public sealed class QdqAndDynamicTests
{
    private static readonly Lazy<long> FloatSize = new(() => new FileInfo(TestPaths.FmnistCnn).Length);

    [Fact]
    public void QdqPerChannelFmnistCnnKeepsAccuracyAndShrinks()
    {
        var model = OnnxLoader.LoadFile(TestPaths.FmnistCnn);
        var q = StaticQuantizer.Quantize(model, TestModels.Calibration(), new QuantizationOptions { Format = QuantizationFormat.Qdq });
        var bytes = OnnxWriter.Write(q.Model);
        var m = OnnxLoader.Load(bytes, "qdq");
        var g = m.Graph;
        // weights stored int8 and read through DequantizeLinear, per output channel for Conv (axis 0)
        var convs = g.Nodes.Where(n => n.OpType == "Conv").ToList();
        Assert.Equal(2, convs.Count);
        var producer = g.Nodes.SelectMany(n => n.Outputs.Select(o => (o, n))).ToDictionary(p => p.o, p => p.n);
        foreach (var c in convs)
        {
            var dqW = producer[c.Inputs[1]];
            Assert.Equal("DequantizeLinear", dqW.OpType);
            Assert.Equal(0, dqW.GetInt("axis", 1));
            Assert.Equal(DataType.Int8, g.Initializers[dqW.Inputs[0]].Type);
            Assert.Equal(g.Initializers[dqW.Inputs[0]].Shape[0], g.Initializers[dqW.Inputs[1]].Length);
            Assert.Equal(DataType.Int32, g.Initializers[producer[c.Inputs[2]].Inputs[0]].Type);
            Assert.Equal("DequantizeLinear", producer[c.Inputs[0]].OpType); // activation through Q -> DQ
        }
        Assert.DoesNotContain(g.Initializers.Values, t => t.Type == DataType.Float32 && t.Length > 1000);
        Assert.True(FloatSize.Value / (double)bytes.Length >= 3.4, $"{bytes.Length} bytes, float {FloatSize.Value}");
        double acc = TestModels.Accuracy(m);
        Assert.True(acc >= 0.8733 - 0.01, $"QDQ accuracy {acc:P2}");
    }

    [Fact]
    public void DynamicInt8FmnistUsesMatMulIntegerAndKeepsAccuracy()
    {
        foreach (var path in new[] { TestPaths.FmnistCnn, TestPaths.FmnistMlp })
        {
            var model = OnnxLoader.LoadFile(path);
            var (q, report) = DynamicQuantizer.Quantize(model);
            var m = OnnxLoader.Load(OnnxWriter.Write(q), "dynamic");
            var ops = m.Graph.Nodes.Select(n => n.OpType).ToList();
            Assert.Equal(2, ops.Count(o => o == "MatMulInteger"));
            Assert.Equal(2, ops.Count(o => o == "DynamicQuantizeLinear"));
            Assert.DoesNotContain("Gemm", ops);
            Assert.Equal(2, report.QuantizedNodes.Count);
            var zp = m.Graph.Nodes.Where(n => n.OpType == "MatMulInteger").Select(n => m.Graph.Initializers[n.Inputs[3]]).ToList();
            Assert.All(zp, z => { Assert.Equal(DataType.Int8, z.Type); Assert.Equal(1, z.Rank); }); // per column
            var before = TestModels.Accuracy(model);
            var after = TestModels.Accuracy(m);
            Assert.True(before - after <= 0.01, $"{Path.GetFileName(path)}: dynamic int8 {after:P2}, float {before:P2}");
        }
    }

    [Fact]
    public void DynamicQuantizationOfAModelWithoutMatMulSaysWhy()
    {
        var conv = Passes.ConformanceSuites.Cases.Value.First(c => c.Id == "node/test_conv_with_strides_padding");
        var e = Assert.Throws<QuantizationException>(() => DynamicQuantizer.Quantize(Freeze(conv)));
        Assert.Contains("Conv is not quantized dynamically", e.Message);
        var old = Assert.Throws<QuantizationException>(() => DynamicQuantizer.Quantize(Pruning.PruningTests.ConformanceModel("pytorch-converted/test_Linear")));
        Assert.Contains("opset 11", old.Message);
    }

    /// <summary>
    /// A conformance model with every input after the first turned into an initializer holding the test's value
    /// (node tests pass weights as inputs): the same computation on input 0, with constant weights to quantize.
    /// </summary>
    private static Model Freeze(Passes.ConformanceCase c)
    {
        var edit = new TinyOps.Optimize.Passes.GraphEdit(c.Model);
        var runtime = c.Model.Graph.RuntimeInputs.ToList();
        for (int i = 1; i < runtime.Count && i < c.Inputs.Length; i++)
        {
            edit.Graph.Initializers[runtime[i].Name] = c.Inputs[i];
            edit.Graph.Inputs.RemoveAll(v => v.Name == runtime[i].Name);
        }
        return edit.ToModel();
    }

    [Fact]
    public void QuantizedConformanceModelsStayCloseToFloat()
    {
        // Conformance models (opset 13+) whose Conv / Gemm / MatMul weights, given as inputs, are frozen into
        // constants: every quantized form runs and stays within a few quantization steps of the float outputs
        // (5 % of the largest output; 7-bit weights and 8-bit activations calibrated on the test input itself).
        int checkedModels = 0;
        foreach (var c in Passes.ConformanceSuites.Cases.Value)
        {
            if (c.Model.DefaultOpset < 13 || c.Inputs.Length < 1 || c.Inputs[0].Type != DataType.Float32 || c.Inputs[0].Rank < 2) continue;
            var frozen = Freeze(c);
            var g = new TinyOps.Optimize.Passes.GraphEdit(frozen);
            if (!g.Graph.Nodes.Any(n => n.OpType is "Conv" or "Gemm" or "MatMul" && n.Inputs.Count > 1 && g.TryFloatConstant(n.Inputs[1], out var w) && w.Rank >= 2)) continue;
            var input = c.Inputs[0];
            var set = new FixedSet(input);
            var models = new List<(string, Model)>();
            foreach (var format in new[] { QuantizationFormat.QOperator, QuantizationFormat.Qdq })
            {
                try { models.Add((format.ToString(), StaticQuantizer.Quantize(frozen, set, new QuantizationOptions { Format = format, CalibrationBatch = input.Shape[0] }).Model)); }
                catch (QuantizationException) { }
            }
            try { models.Add(("dynamic", DynamicQuantizer.Quantize(frozen).Model)); } catch (QuantizationException) { }
            foreach (var (name, m) in models)
            {
                var outs = Passes.ConformanceSuites.Run(OnnxLoader.Load(OnnxWriter.Write(m), c.Id), [input]);
                Assert.True(outs is not null, $"{c.Id} ({name}) does not run after quantization");
                var a = c.Actual[0].ToArray<float>();
                double rel = TestModels.RelativeMaxDiff(a, outs![0].ToArray<float>());
                Assert.True(rel < 0.05, $"{c.Id} ({name}): outputs differ by {rel:P1} of the largest");
            }
            if (models.Count > 0) checkedModels++;
        }
        Assert.True(checkedModels >= 5, $"only {checkedModels} conformance models were quantized");
    }

    /// <summary>A calibration set of one fixed batch (the conformance test's own input).</summary>
    private sealed class FixedSet(Tensor batch) : CalibrationSet
    {
        public override string Description => "the test input";
        public override int Count => batch.Shape[0];
        public override int[] SampleShape => batch.Shape[1..];
        public override void Fill(int start, int count, Span<float> dst) =>
            batch.ReadOnlySpan<float>().Slice(start * SampleSize, count * SampleSize).CopyTo(dst);
    }
}
