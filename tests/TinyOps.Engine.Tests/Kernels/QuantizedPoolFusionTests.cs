using TinyOps.Engine.Ir;
using TinyOps.Engine.Kernels;
using TinyOps.Engine.Kernels.Quantized;
using TinyOps.Engine.Runtime;
using TinyOps.Engine.Runtime.Fusion;
using TinyOps.Engine.Tensors;
using Xunit;

namespace TinyOps.Engine.Tests.Kernels;

/// <summary>QLinearConv → MaxPool 2 × 2 / 2 fused into one node: the same bytes as the two nodes, on every int8 path.</summary>
public class QuantizedPoolFusionTests
{
    public static TheoryData<int> Paths => new() { (int)IntGemmPath.Reference, (int)IntGemmPath.Scalar, (int)IntGemmPath.Avx2, (int)IntGemmPath.AvxVnni, (int)IntGemmPath.AvxVnniWide };

    /// <summary>x → QLinearConv (uint8 x, int8 w, zero weight zero points) → MaxPool 2 × 2 / 2 → y.</summary>
    private static Model Block(Random rng, int c, int m, int kh, int kw, int h, int w, int[] pads, bool signedY, float yScale, bool negativeScale,
        Dictionary<string, AttributeValue>? poolAttrs = null, bool sevenBit = false)
    {
        var conv = new Node { Name = "conv", OpType = "QLinearConv", Inputs = ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"], Outputs = ["c"] };
        conv.Attributes["kernel_shape"] = AttributeValue.Of("kernel_shape", new long[] { kh, kw });
        conv.Attributes["pads"] = AttributeValue.Of("pads", pads.Select(p => (long)p).ToArray());
        var pool = new Node { Name = "pool", OpType = "MaxPool", Inputs = ["c"], Outputs = ["y"] };
        foreach (var (k, v) in poolAttrs ?? new Dictionary<string, AttributeValue>
        {
            ["kernel_shape"] = AttributeValue.Of("kernel_shape", new long[] { 2, 2 }),
            ["strides"] = AttributeValue.Of("strides", new long[] { 2, 2 }),
        }) pool.Attributes[k] = v;
        var wq = new sbyte[m * c * kh * kw];
        for (int i = 0; i < wq.Length; i++)
            wq[i] = sevenBit
                // 7-bit and mostly small, as the quantizer makes a trained layer's: the route for machines without
                // AVX-VNNI runs, with some quad pairs that share a vpmaddwd and some that cannot
                ? (sbyte)Math.Clamp((int)Math.Round((rng.NextDouble() - 0.5) * (rng.NextDouble() < 0.15 ? 128 : 40)), -64, 64)
                : (sbyte)rng.Next(-127, 128);
        var ws = Enumerable.Range(0, m).Select(i => (negativeScale && i == m / 2 ? -1f : 1f) * 0.005f * (0.5f + (float)rng.NextDouble())).ToArray();
        var g = new Graph
        {
            Nodes = [conv, pool],
            Inputs = [new ValueInfo("x", DataType.UInt8, [Dim.Of(2), Dim.Of(c), Dim.Of(h), Dim.Of(w)])],
            Outputs = [new ValueInfo("y", DataType.Undefined, null)],
            Initializers =
            {
                ["xs"] = Tensor.Scalar(0.02f), ["xz"] = Tensor.Scalar((byte)rng.Next(0, 256)), ["w"] = Tensor.FromArray(wq, m, c, kh, kw),
                ["ws"] = Tensor.FromArray(ws, m), ["wz"] = Tensor.FromArray(new sbyte[m], m), ["ys"] = Tensor.Scalar(yScale),
                ["yz"] = signedY ? Tensor.Scalar((sbyte)rng.Next(-20, 20)) : Tensor.Scalar((byte)rng.Next(0, 60)),
                ["b"] = Tensor.FromArray(Enumerable.Range(0, m).Select(_ => rng.Next(-30000, 30000)).ToArray(), m),
            },
        };
        return new Model { Graph = g, Opsets = { [""] = 13 } };
    }

    private static void AssertSameAsUnfused(Model model, IntGemmPath path, string what)
    {
        var xs = model.Graph.Inputs[0].Shape!.Select(d => (int)d.Value).ToArray();
        var bytes = new byte[xs.Aggregate(1, (a, b) => a * b)];
        new Random(xs.Sum()).NextBytes(bytes);
        var feed = new Dictionary<string, Tensor> { ["x"] = Tensor.FromArray(bytes, xs) };
        var old = FastIntGemm.Forced;
        FastIntGemm.Forced = path;
        try
        {
            var want = new InferenceSession(model, new SessionOptions { FuseQuantizedPools = false }).Run(feed)["y"];
            var session = new InferenceSession(model);
            session.Run(feed);
            var got = session.Run(feed)["y"];
            Assert.Equal(want.Type, got.Type);
            Assert.Equal(want.Shape, got.Shape);
            Assert.True(want.Bytes.SequenceEqual(got.Bytes), $"{path}: {what}");
        }
        finally { FastIntGemm.Forced = old; }
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void FusedPoolMatchesTheTwoNodes(int pathId)
    {
        var path = (IntGemmPath)pathId;
        var rng = new Random(77 + pathId);
        (int C, int M, int Kh, int Kw, int H, int W)[] shapes =
        [
            (1, 8, 3, 3, 28, 28), (8, 16, 3, 3, 14, 14), (4, 5, 3, 3, 9, 13), (3, 7, 2, 4, 11, 20), (12, 9, 5, 3, 17, 35), (1, 3, 3, 3, 3, 3),
        ];
        int trial = 0;
        foreach (var (c, m, kh, kw, h, w) in shapes)
        {
            trial++;
            int[] pads = [kh / 2, kw / 2, (kh - 1) / 2, (kw - 1) / 2];
            var model = Block(rng, c, m, kh, kw, h, w, pads, signedY: trial % 2 == 0, yScale: trial == 5 ? 1e-6f : 0.05f, negativeScale: false);
            var fused = QuantizedPoolFusion.Apply(model.Graph, model, KernelRegistry.Default);
            Assert.Single(fused.Nodes);
            AssertSameAsUnfused(model, path, $"conv {c}->{m} {kh}x{kw} on {h}x{w}");
        }
    }

    [Fact]
    public void FusedPoolOnSevenBitWeightsMatchesTheTwoNodes()
    {
        // the weights every machine with AVX-512 runs on the direct route (without AVX-VNNI: by quad pairs that share one
        // vpmaddwd where the weights allow, IntDirectConv.PlanPairs, and without them)
        var rng = new Random(31);
        (int C, int M, int Kh, int Kw, int H, int W)[] shapes =
            [(1, 8, 3, 3, 28, 28), (8, 16, 3, 3, 14, 14), (4, 5, 3, 3, 9, 13), (12, 9, 5, 3, 17, 35), (16, 7, 3, 3, 12, 12)];
        int paired = 0;
        foreach (var (c, m, kh, kw, h, w) in shapes)
            foreach (bool pairs in new[] { true, false })
            {
                int[] pads = [kh / 2, kw / 2, (kh - 1) / 2, (kw - 1) / 2];
                var model = Block(rng, c, m, kh, kw, h, w, pads, signedY: m % 2 == 0, yScale: 0.05f, negativeScale: false, sevenBit: true);
                IntDirectConv.UsePairs = pairs;
                try { AssertSameAsUnfused(model, IntGemmPath.Auto, $"7-bit conv {c}->{m} {kh}x{kw} on {h}x{w}, pairs {pairs}"); }
                finally { IntDirectConv.UsePairs = true; }
                if (IntDirectConv.LastRunPaired) paired++;
                if (!pairs || ByteDot.Native) Assert.False(IntDirectConv.LastRunPaired);
            }
        if (WideIntGemm.HardwareSupported && !ByteDot.Native) Assert.True(paired >= 3, $"{paired} shapes ran by quad pairs");
    }

    [Fact]
    public void NegativeMultipliersPoolTheBytesInstead()
    {
        var model = Block(new Random(5), 4, 6, 3, 3, 10, 10, [1, 1, 1, 1], signedY: false, yScale: 0.05f, negativeScale: true);
        AssertSameAsUnfused(model, IntGemmPath.Auto, "a negative weight scale");
    }

    [Fact]
    public void OtherPoolsAreNotFused()
    {
        var rng = new Random(9);
        var padded = Block(rng, 4, 4, 3, 3, 8, 8, [1, 1, 1, 1], false, 0.05f, false, new Dictionary<string, AttributeValue>
        {
            ["kernel_shape"] = AttributeValue.Of("kernel_shape", new long[] { 2, 2 }),
            ["strides"] = AttributeValue.Of("strides", new long[] { 2, 2 }),
            ["ceil_mode"] = AttributeValue.Of("ceil_mode", 1L),
        });
        Assert.Same(padded.Graph, QuantizedPoolFusion.Apply(padded.Graph, padded, KernelRegistry.Default));
        var three = Block(rng, 4, 4, 3, 3, 8, 8, [1, 1, 1, 1], false, 0.05f, false, new Dictionary<string, AttributeValue>
        {
            ["kernel_shape"] = AttributeValue.Of("kernel_shape", new long[] { 3, 3 }),
            ["strides"] = AttributeValue.Of("strides", new long[] { 2, 2 }),
        });
        Assert.Same(three.Graph, QuantizedPoolFusion.Apply(three.Graph, three, KernelRegistry.Default));
        AssertSameAsUnfused(padded, IntGemmPath.Auto, "ceil mode");
    }

    [Fact]
    public void FusedConvAllocatesNothingPerRun()
    {
        var model = Block(new Random(3), 8, 16, 3, 3, 14, 14, [1, 1, 1, 1], false, 0.05f, false);
        var session = new InferenceSession(model);
        var inputs = new[] { Tensor.FromArray(new byte[2 * 8 * 14 * 14], 2, 8, 14, 14) };
        var outputs = new Tensor[1];
        for (int i = 0; i < 3; i++) session.Run(inputs, outputs);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 5; i++) session.Run(inputs, outputs);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
