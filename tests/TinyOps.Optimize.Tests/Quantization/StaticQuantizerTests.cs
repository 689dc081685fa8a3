using TinyOps.Engine.Data;
using TinyOps.Engine.Ir;
using TinyOps.Engine.Onnx;
using TinyOps.Engine.Runtime;
using TinyOps.Engine.Tensors;
using TinyOps.Optimize.Quantization;
using Xunit;

namespace TinyOps.Optimize.Tests.Quantization;

/// <summary>
/// The static int8 quantizer on the real models: a valid QOperator file the engine loads, accuracy kept, zero allocation,
/// activation folding, and clear errors on bad input. Needs Debian's dataset-fashion-mnist, like the engine's model tests.
/// </summary>
public sealed class StaticQuantizerTests
{
    private static readonly Lazy<(QuantizationResult Result, byte[] Bytes)> Fmnist = new(() =>
    {
        var model = OnnxLoader.LoadFile(TestPaths.FmnistCnn);
        var set = CalibrationSet.FromImages(FashionMnist.LoadTrain(), 500, "the Fashion-MNIST training set");
        var result = StaticQuantizer.Quantize(model, set);
        return (result, OnnxWriter.Write(result.Model));
    });

    [Fact]
    public void QuantizedFmnistIsAValidQOperatorModel()
    {
        var (result, bytes) = Fmnist.Value;
        var reloaded = OnnxLoader.Load(bytes, "quantized fmnist_cnn");
        var ops = reloaded.Graph.Nodes.Select(n => n.OpType).ToList();
        Assert.Equal(2, ops.Count(o => o == "QLinearConv"));
        Assert.Equal(2, ops.Count(o => o == "QLinearMatMul"));
        Assert.DoesNotContain("Conv", ops);
        Assert.DoesNotContain("Gemm", ops);
        Assert.All(reloaded.Graph.Nodes, n => Assert.True(n.IsDefaultDomain, $"{n.DisplayName} is in domain '{n.Domain}'"));
        Assert.Equal(2, result.Report.FoldedActivations.Count);

        // folded Relu: the conv's output zero point is 0; weights are int8 per channel, bias int32
        foreach (var conv in reloaded.Graph.Nodes.Where(n => n.OpType == "QLinearConv"))
        {
            var init = reloaded.Graph.Initializers;
            Assert.Equal(DataType.UInt8, init[conv.Inputs[7]].Type);
            Assert.Equal(0, init[conv.Inputs[7]].GetInt64(0));
            Assert.Equal(DataType.Int8, init[conv.Inputs[3]].Type);
            Assert.Equal(init[conv.Inputs[3]].Shape[0], init[conv.Inputs[4]].Length);
            Assert.Equal(DataType.Int32, init[conv.Inputs[8]].Type);
            Assert.All(init[conv.Inputs[3]].ToArray<sbyte>(), v => Assert.InRange(v, -64, 64)); // 7-bit range by default
        }

        var session = InferenceSession.Load(bytes);
        var outputs = session.Run(new Dictionary<string, Tensor> { ["input"] = Tensor.Zeros(DataType.Float32, 2, 1, 28, 28) });
        Assert.Equal([2, 10], outputs["output"].Shape);
    }

    [Fact]
    public void QuantizedFmnistCountsTheMacsOfTheFloatModel()
    {
        // The engine fuses each QLinearConv with the 2 x 2 MaxPool after it (the node then has the pool's output shape);
        // the profile must still count the convolution's work, or device latency estimates from MACs come out too low.
        var (_, bytes) = Fmnist.Value;
        var fp32 = TinyOps.Engine.Profiling.ModelProfiler.Profile(InferenceSession.Load(TestPaths.FmnistCnn));
        var int8 = TinyOps.Engine.Profiling.ModelProfiler.Profile(InferenceSession.Load(bytes));
        Assert.Equal(fp32.TotalMacs, int8.TotalMacs);
    }

    [Fact]
    public void QuantizedFmnistAccuracyIsWithinOnePointOfFloat()
    {
        var (_, bytes) = Fmnist.Value;
        var test = FashionMnist.LoadTest();
        var fp32 = Evaluator.Accuracy(InferenceSession.Load(TestPaths.FmnistCnn), test, test.Count, 200);
        var int8 = Evaluator.Accuracy(InferenceSession.Load(bytes), test, test.Count, 200);
        Assert.True(fp32.Accuracy > 0.8, $"fp32 accuracy {fp32.Accuracy:P2} is implausible");
        Assert.True(Math.Abs(fp32.Accuracy - int8.Accuracy) <= 0.01, $"int8 accuracy {int8.Accuracy:P2} is more than 1 point from fp32 {fp32.Accuracy:P2}");
    }

    [Fact]
    public void MaxPoolRunsOnUInt8ByDefault()
    {
        var (result, bytes) = Fmnist.Value;
        var g = OnnxLoader.Load(bytes, "quantized fmnist_cnn").Graph;
        var producer = g.Nodes.SelectMany(n => n.Outputs.Select(o => (o, n))).ToDictionary(p => p.o, p => p.n);
        var pools = g.Nodes.Where(n => n.OpType == "MaxPool").ToList();
        Assert.Equal(2, pools.Count);
        // each pool reads the QLinearConv's uint8 output directly: no DequantizeLinear -> MaxPool -> QuantizeLinear
        Assert.All(pools, p => Assert.Equal("QLinearConv", producer[p.Inputs[0]].OpType));
        var flatten = g.Nodes.Single(n => n.OpType == "Flatten");
        Assert.Equal("MaxPool", producer[flatten.Inputs[0]].OpType);
        Assert.Equal(3, result.Report.QuantizedPassThrough.Count); // two MaxPools and the Flatten
        Assert.Equal(2, g.Nodes.Count(n => n.OpType == "QuantizeLinear"));
        Assert.Equal(2, g.Nodes.Count(n => n.OpType == "DequantizeLinear"));
    }

    [Fact]
    public void QuantizedMaxPoolKeepsTheAccuracyOfTheFloatPool()
    {
        var model = OnnxLoader.LoadFile(TestPaths.FmnistCnn);
        var set = CalibrationSet.FromImages(FashionMnist.LoadTrain(), 500, "the Fashion-MNIST training set");
        var floatPool = StaticQuantizer.Quantize(model, set, new QuantizationOptions { QuantizedMaxPool = false });
        Assert.Equal(4, floatPool.Model.Graph.Nodes.Count(n => n.OpType == "DequantizeLinear")); // the float pools' round trips
        var test = FashionMnist.LoadTest();
        var a = Evaluator.Accuracy(new InferenceSession(floatPool.Model), test, test.Count, 200);
        var b = Evaluator.Accuracy(InferenceSession.Load(Fmnist.Value.Bytes), test, test.Count, 200);
        Assert.True(Math.Abs(a.Accuracy - b.Accuracy) <= 0.001, $"uint8 MaxPool accuracy {b.Accuracy:P2}, float MaxPool {a.Accuracy:P2}");
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(8, 1)]
    [InlineData(8, 2)]
    public void QuantizedFmnistAllocatesNothingPerInference(int batch, int threads)
    {
        var session = InferenceSession.Load(Fmnist.Value.Bytes, new SessionOptions { Threads = threads });
        var input = Tensor.Zeros(DataType.Float32, batch, 1, 28, 28);
        PseudoRandomInputs.Fill(0, 784, input.Span<float>());
        var outputs = new Tensor[session.Outputs.Count];
        var inputs = new[] { input };
        session.Run(inputs, outputs);
        session.Run(inputs, outputs);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 3; i++) session.Run(inputs, outputs);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated == 0, $"int8 fmnist_cnn batch {batch}, {threads} thread(s): {allocated} bytes allocated in 3 runs after warm-up");
    }

    [Fact]
    public void MobileNetV2FoldsReluSixAndRunsDepthwiseInInt8()
    {
        var model = OnnxLoader.LoadFile(TestPaths.MobileNetV2);
        var result = StaticQuantizer.Quantize(model, CalibrationSet.Random([3, 224, 224], 2), new QuantizationOptions { CalibrationBatch = 2 });
        var g = result.Model.Graph;
        Assert.Equal(52, g.Nodes.Count(n => n.OpType == "QLinearConv"));
        Assert.Equal(1, g.Nodes.Count(n => n.OpType == "QLinearMatMul"));
        Assert.Equal(35, result.Report.FoldedActivations.Count); // every Clip(0, 6)
        Assert.DoesNotContain(g.Nodes, n => n.OpType is "Clip" or "Conv" or "Gemm");
        // the residual sums read both addends through their uint8 forms (10 of them in MobileNetV2), so the only
        // QuantizeLinear of a sum is the one after it and the input's and the classifier's remain
        var producers = g.Nodes.SelectMany(n => n.Outputs.Select(o => (o, n))).ToDictionary(p => p.o, p => p.n);
        var adds = g.Nodes.Where(n => n.OpType == "Add" && n.Inputs.All(producers.ContainsKey)).ToList();
        Assert.Equal(10, adds.Count);
        Assert.All(adds, a => Assert.All(a.Inputs, i => Assert.Equal("DequantizeLinear", producers[i].OpType)));
        var session = new InferenceSession(OnnxLoader.Load(OnnxWriter.Write(result.Model)));
        var x = Tensor.Zeros(DataType.Float32, 1, 3, 224, 224);
        PseudoRandomInputs.Fill(0, 3 * 224 * 224, x.Span<float>());
        var y = session.Run(new Dictionary<string, Tensor> { ["input"] = x })["output"];
        Assert.Equal([1, 1000], y.Shape);
        Assert.All(y.ToArray<float>(), v => Assert.True(float.IsFinite(v)));
    }

    [Fact]
    public void ModelWithNothingToQuantizeIsRefused()
    {
        var g = new Graph { Name = "relu_only" };
        g.Inputs.Add(new ValueInfo("x", DataType.Float32, [Dim.Sym("N"), Dim.Of(4)]));
        g.Outputs.Add(new ValueInfo("y", DataType.Float32, [Dim.Sym("N"), Dim.Of(4)]));
        g.Nodes.Add(new Node { OpType = "Relu", Name = "relu", Inputs = ["x"], Outputs = ["y"] });
        var model = new Model { Graph = g, Opsets = { [""] = 13 } };
        var e = Assert.Throws<QuantizationException>(() => StaticQuantizer.Quantize(model, CalibrationSet.Random([4], 2)));
        Assert.Contains("relu_only", e.Message);
        Assert.Contains("nothing to quantize", e.Message);
    }

    [Fact]
    public void CalibrationSetOfTheWrongShapeIsRefused()
    {
        var model = OnnxLoader.LoadFile(TestPaths.FmnistCnn);
        var e = Assert.Throws<QuantizationException>(() => StaticQuantizer.Quantize(model, CalibrationSet.Random([3, 224, 224], 2)));
        Assert.Contains("[3,224,224]", e.Message);
        Assert.Contains("input 'input'", e.Message);
        var e2 = Assert.Throws<QuantizationException>(() => StaticQuantizer.Quantize(model, CalibrationSet.Random([28, 28], 2)));
        Assert.Contains("rank", e2.Message);
    }

    [Fact]
    public void TheQuantizePassWritesExactlyWhatTheQuantizerWrites()
    {
        // `tinyops optimize IN OUT --quantize static-int8 --calibration fashion-mnist --per-channel` goes through a
        // one-variant recipe; its file must stay the quantizer's own, byte for byte
        var spec = TinyOps.Optimize.Recipes.PassSpec.Of("quantize", ("mode", "static-int8"), ("calibration", "fashion-mnist"), ("per_channel", "true"));
        var recipe = new TinyOps.Optimize.Recipes.Recipe { Name = "cli", Source = "test", LatencyRuns = 0, Variants = [new() { Name = "q", Passes = [spec] }] };
        var viaRecipe = new TinyOps.Optimize.Recipes.RecipeRunner(recipe) { StampVariant = false }.BuildVariant(File.ReadAllBytes(TestPaths.FmnistCnn), TestPaths.FmnistCnn, 0);
        Assert.Equal(Fmnist.Value.Bytes, viaRecipe.Bytes);
    }

    [Fact]
    public void ImpossiblePercentileIsRefused()
    {
        var model = OnnxLoader.LoadFile(TestPaths.FmnistCnn);
        var set = CalibrationSet.Random([1, 28, 28], 1);
        var e = Assert.Throws<QuantizationException>(() => StaticQuantizer.Quantize(model, set, new QuantizationOptions { Calibration = CalibrationMethod.Percentile, Percentile = 120 }));
        Assert.Contains("percentile", e.Message);
    }
}
