using System.Diagnostics;
using TinyOps.Engine.Ir;
using TinyOps.Engine.Kernels.Nn;
using TinyOps.Engine.Kernels.Quantized;
using TinyOps.Engine.Runtime;
using TinyOps.Engine.Tensors;

// usage: dotnet run -c Release --project bench/TinyOps.Bench.Kernels [-- gemm M N K ...]
//        dotnet run -c Release --project bench/TinyOps.Bench.Kernels -- maxpool C H W K S CEIL [PAD]
//        dotnet run -c Release --project bench/TinyOps.Bench.Kernels -- conv C H W M K S PAD GROUP [SAVE.onnx]
//        dotnet run -c Release --project bench/TinyOps.Bench.Kernels -- qconv C H W M K S PAD GROUP   (QLinearConv, uint8 x, int8 per-channel w)
//        (SAVE.onnx: also writes the one-layer model, so ../shared/peers/ort/bench.mjs can time the same layer)
//        dotnet run -c Release --project bench/TinyOps.Bench.Kernels -- qdw [C H W S]...   (int8 depthwise 3x3, pad 1;
//        no shape: the 17 depthwise layers of MobileNetV2; times the default route and the forced AVX2 route)
//        dotnet run -c Release --project bench/TinyOps.Bench.Kernels -- ab MODEL ROUNDS SPEC_A SPEC_B [THREADS]
//        (A/B in one process, alternating run by run; SPEC: - or comma-separated Namespace.Type.Member=value static
//        settings, e.g. TinyOps.Engine.Kernels.Nn.SGemm.UseDotRows8=false, and opt:SessionOptionProperty=value; SPEC_B
//        may be model:OTHER.onnx; prints p50/p25/min of each side, see AbCommand.cs)
//        dotnet run -c Release --project bench/TinyOps.Bench.Kernels -- peak [--scaling]   (multiply-add throughput of
//        512-bit FMA, 256-bit FMA and 256-bit vpdpbusd: the int8 / fp32 ceiling on this machine; --scaling: how much
//        two threads gain on the host right now, one JSON line; see PeakCommand.cs)
//        dotnet run -c Release --project bench/TinyOps.Bench.Kernels -- qpairs MODEL.onnx   (for each QLinearConv with
//        int8 weights: the share of (4-row block, pair of quads) whose byte pairs, summed over the two quads, stay within
//        |a| + |b| + |c| + |d| <= 128, i.e. where the emulated dot product could add two vpmaddubsw results in int16)
// Without arguments: the GEMM shapes of the convolutions that dominate ResNet-18, MobileNetV2 and SqueezeNet.
if (args.Length == 2 && args[0] == "qpairs")
{
    var model = TinyOps.Engine.Onnx.OnnxLoader.LoadFile(args[1]);
    long blocksAll = 0, pairsAll = 0, blockPairsOk = 0;
    foreach (var node in model.Graph.Nodes.Where(n => n.OpType == "QLinearConv"))
    {
        if (!model.Graph.Initializers.TryGetValue(node.Inputs[3], out var wt) || wt.Type != DataType.Int8) continue;
        var w = wt.ReadOnlySpan<sbyte>().ToArray();
        int m = wt.Shape[0], k = w.Length / m;
        int kq = (k + 3) / 4, layerPairs = 0, layerOk = 0;
        for (int b0 = 0; b0 < m; b0 += 4)
            for (int q = 0; q + 1 < kq; q += 2)
            {
                bool ok = true;
                for (int r = b0; r < Math.Min(m, b0 + 4); r++)
                    for (int pp = 0; pp < 2; pp++)
                    {
                        int sum = 0;
                        foreach (int qq in new[] { q, q + 1 })
                            for (int j = 0; j < 2; j++) { int kk = qq * 4 + 2 * pp + j; if (kk < k) sum += Math.Abs((int)w[r * k + kk]); }
                        if (sum > 128) ok = false;
                    }
                layerPairs++; if (ok) layerOk++;
            }
        pairsAll += layerPairs; blockPairsOk += layerOk; blocksAll += (m + 3) / 4;
        Console.WriteLine($"{node.Name}: m {m} k {k}: block quad-pairs fitting {layerOk}/{layerPairs} ({100.0 * layerOk / Math.Max(1, layerPairs):F1}%)");
    }
    Console.WriteLine($"all: {blockPairsOk}/{pairsAll} ({100.0 * blockPairsOk / Math.Max(1, pairsAll):F1}%)");
    return;
}
if (args.Length >= 1 && args[0] == "peak")
{
    Environment.ExitCode = args.Length > 1 && args[1] == "--scaling" ? TinyOps.Bench.Kernels.PeakCommand.Scaling()
        : args.Length > 1 && args[1] == "--loops" ? TinyOps.Bench.Kernels.PeakCommand.Loops() : TinyOps.Bench.Kernels.PeakCommand.Run();
    return;
}
if (args.Length >= 1 && args[0] == "ab")
{
    Environment.ExitCode = TinyOps.Bench.Kernels.AbCommand.Run(args[1..]);
    return;
}
if (args.Length is 9 or 10 && args[0] == "conv")
{
    int c = int.Parse(args[1]), h = int.Parse(args[2]), w = int.Parse(args[3]), m = int.Parse(args[4]), k = int.Parse(args[5]);
    int st = int.Parse(args[6]), pad = int.Parse(args[7]), g = int.Parse(args[8]);
    var node = new Node { OpType = "Conv", Inputs = ["X", "W", "B"], Outputs = ["Y"] };
    node.Attributes["kernel_shape"] = AttributeValue.Of("kernel_shape", new long[] { k, k });
    node.Attributes["strides"] = AttributeValue.Of("strides", new long[] { st, st });
    node.Attributes["pads"] = AttributeValue.Of("pads", new long[] { pad, pad, pad, pad });
    node.Attributes["group"] = AttributeValue.Of("group", (long)g);
    var wts = new float[m * (c / g) * k * k];
    for (int i = 0; i < wts.Length; i++) wts[i] = (i * 7919 % 1000) / 1000f - 0.5f;
    var graph = new Graph
    {
        Nodes = [node, new Node { OpType = "Relu", Inputs = ["Y"], Outputs = ["Z"] }],
        Inputs = [new ValueInfo("X", DataType.Float32, [Dim.Of(1), Dim.Of(c), Dim.Of(h), Dim.Of(w)])],
        Outputs = [new ValueInfo("Z", DataType.Float32, null)],
        Initializers = { ["W"] = Tensor.FromArray(wts, m, c / g, k, k), ["B"] = Tensor.Zeros(DataType.Float32, m) },
    };
    if (args.Length == 10)
        TinyOps.Engine.Onnx.OnnxWriter.WriteFile(new Model { Graph = graph, Opsets = { [""] = 13 } }, args[9]);
    int oh = (h + 2 * pad - k) / st + 1, ow = (w + 2 * pad - k) / st + 1;
    double flops = 2.0 * m * oh * ow * (c / g) * k * k;
    var (p50, min) = TimeSingleNode(graph, c, h, w);
    Console.WriteLine($"conv {c}x{h}x{w} -> {m} k{k} s{st} p{pad} g{g}: p50 {p50:F1} us ({flops / p50 / 1e3:F1} GFLOP/s), min {min:F1} us");
    return;
}
if (args.Length == 9 && args[0] == "qconv")
{
    // QLinearConv as the static int8 quantizer writes it: uint8 activations, int8 per-channel weights, int32 bias
    int c = int.Parse(args[1]), h = int.Parse(args[2]), w = int.Parse(args[3]), m = int.Parse(args[4]), k = int.Parse(args[5]);
    int st = int.Parse(args[6]), pad = int.Parse(args[7]), g = int.Parse(args[8]);
    var node = new Node { OpType = "QLinearConv", Inputs = ["X", "xs", "xz", "W", "ws", "wz", "ys", "yz", "B"], Outputs = ["Y"] };
    node.Attributes["kernel_shape"] = AttributeValue.Of("kernel_shape", new long[] { k, k });
    node.Attributes["strides"] = AttributeValue.Of("strides", new long[] { st, st });
    node.Attributes["pads"] = AttributeValue.Of("pads", new long[] { pad, pad, pad, pad });
    node.Attributes["group"] = AttributeValue.Of("group", (long)g);
    // 7-bit weights spread like a trained layer's (normal, the largest about 3.3 standard deviations out, at ±64), as
    // the quantizer makes them (and the only ones the emulated dot product of machines without AVX-VNNI serves)
    var wq = new sbyte[m * (c / g) * k * k];
    var wr = new Random(1);
    for (int i = 0; i < wq.Length; i++)
    {
        double gauss = Math.Sqrt(-2 * Math.Log(1 - wr.NextDouble())) * Math.Cos(2 * Math.PI * wr.NextDouble());
        wq[i] = (sbyte)Math.Clamp(Math.Round(gauss * 64 / 3.3), -64, 64);
    }
    var scales = new float[m];
    for (int i = 0; i < m; i++) scales[i] = 0.001f + 0.0001f * (i % 7);
    var graph = new Graph
    {
        Nodes = [node],
        Inputs = [new ValueInfo("X", DataType.UInt8, [Dim.Of(1), Dim.Of(c), Dim.Of(h), Dim.Of(w)])],
        Outputs = [new ValueInfo("Y", DataType.UInt8, null)],
        Initializers =
        {
            ["xs"] = Tensor.Scalar(0.02f), ["xz"] = Tensor.Scalar((byte)3), ["W"] = Tensor.FromArray(wq, m, c / g, k, k),
            ["ws"] = Tensor.FromArray(scales, m), ["wz"] = Tensor.FromArray(new sbyte[m], m), ["ys"] = Tensor.Scalar(0.05f),
            ["yz"] = Tensor.Scalar((byte)0), ["B"] = Tensor.FromArray(Enumerable.Range(0, m).Select(i => i * 37 - 500).ToArray(), m),
        },
    };
    int oh = (h + 2 * pad - k) / st + 1, ow = (w + 2 * pad - k) / st + 1;
    double macs = (double)m * oh * ow * (c / g) * k * k;
    var (p50, min) = TimeSingleNode(graph, c, h, w, DataType.UInt8);
    Console.WriteLine($"qconv {c}x{h}x{w} -> {m} k{k} s{st} p{pad} g{g}: p50 {p50:F1} us ({macs / p50 / 1e3:F1} GMAC/s), min {min:F1} us");
    return;
}
if (args.Length >= 1 && args[0] == "qadd")
{
    // the residual sum of two uint8 tensors: exact (division) and by ratios, on n elements (default 56·56·24)
    int n = args.Length > 1 ? int.Parse(args[1]) : 56 * 56 * 24;
    var rnd = new Random(3);
    var a = new byte[n]; var b = new byte[n]; var y = new byte[n];
    rnd.NextBytes(a); rnd.NextBytes(b);
    foreach (var exact in new[] { true, false, true, false })
    {
        void Once()
        {
            if (exact) QuantizeVector.AddQuantize(a, false, 120, 0.02f, b, false, 130, 0.03f, default, false, 0.04f, 125, y, false);
            else QuantizeVector.AddQuantizeByRatios(a, false, 120, b, false, 130, 0.5f, 0.75f, false, 125, y, false);
        }
        var sw0 = Stopwatch.StartNew();
        while (sw0.ElapsedMilliseconds < 300) Once();
        var t = new double[200];
        for (int i = 0; i < t.Length; i++) { long s0 = Stopwatch.GetTimestamp(); Once(); t[i] = Stopwatch.GetElapsedTime(s0).TotalMicroseconds; }
        Array.Sort(t);
        Console.WriteLine($"qadd {(exact ? "exact " : "ratios")} n={n}: min {t[0]:F1} us, p50 {t[100]:F1} us ({n / t[100] / 1e3:F2} per ns)");
    }
    return;
}
if (args.Length >= 1 && args[0] == "qdw")
{
    var layers = new List<(int C, int H, int W, int S)>();
    for (int i = 1; i + 3 < args.Length; i += 4) layers.Add((int.Parse(args[i]), int.Parse(args[i + 1]), int.Parse(args[i + 2]), int.Parse(args[i + 3])));
    if (layers.Count == 0)
        layers.AddRange([(32, 112, 112, 1), (96, 112, 112, 2), (144, 56, 56, 1), (144, 56, 56, 2), (192, 28, 28, 1), (192, 28, 28, 1), (192, 28, 28, 2),
            (384, 14, 14, 1), (384, 14, 14, 1), (384, 14, 14, 1), (384, 14, 14, 1), (576, 14, 14, 1), (576, 14, 14, 1), (576, 14, 14, 2),
            (960, 7, 7, 1), (960, 7, 7, 1), (960, 7, 7, 1)]);
    foreach (var path in new[] { IntGemmPath.Auto, IntGemmPath.Avx2 })
    {
        double total = 0;
        FastIntGemm.Forced = path;
        foreach (var (c, h, w, st) in layers)
        {
            var node = new Node { OpType = "QLinearConv", Name = "dw" };
            node.Attributes["group"] = AttributeValue.Of("group", (long)c);
            node.Attributes["strides"] = AttributeValue.Of("strides", new long[] { st, st });
            node.Attributes["pads"] = AttributeValue.Of("pads", new long[] { 1, 1, 1, 1 });
            var g = new ConvGeometry(node);
            if (g.Compute([1, c, h, w], [c, 1, 3, 3]) is { } err) throw new InvalidOperationException(err);
            var rnd = new Random(c + h);
            var x = new byte[c * h * w];
            rnd.NextBytes(x);
            var wt = new byte[c * 9];
            // 7-bit weights, as `tinyops optimize --quantize` makes them (and the only ones the emulated dot product of
            // AVX-512 machines without AVX-VNNI serves, see ByteDot)
            for (int i = 0; i < wt.Length; i++) wt[i] = (byte)(sbyte)rnd.Next(-64, 65);
            int[] wz = new int[c];
            var bias = Enumerable.Range(0, c).Select(_ => rnd.Next(-3000, 3000)).ToArray();
            var mult = Enumerable.Range(0, c).Select(_ => 0.001f + 0.002f * (float)rnd.NextDouble()).ToArray();
            var y = new byte[c * g.OutSize];
            var packed = new int[IntDepthwise3x3.PackedInts(g)];
            IntDepthwise3x3.PackWeights(g, wt, true, wz, packed);
            var work = new byte[IntDepthwise3x3.WorkBytes(g)];
            void Once() => IntDepthwise3x3.Run(g, x, false, 128, wt, true, wz, bias, mult, 120, y, false, packed, work);
            var sw0 = Stopwatch.StartNew();
            while (sw0.ElapsedMilliseconds < 400) Once();
            var t = new double[100];
            for (int i = 0; i < t.Length; i++) { long s0 = Stopwatch.GetTimestamp(); Once(); t[i] = Stopwatch.GetElapsedTime(s0).TotalMicroseconds; }
            Array.Sort(t);
            total += t[0];
            Console.WriteLine($"qdw {path,-5} {c}x{h}x{w} s{st}: min {t[0],7:F1} us, p50 {t[50],7:F1} us");
        }
        Console.WriteLine($"qdw {path} total of minima: {total:F1} us");
    }
    FastIntGemm.Forced = IntGemmPath.Auto;
    return;
}
if (args.Length is 7 or 8 && args[0] == "maxpool")
{
    int c = int.Parse(args[1]), h = int.Parse(args[2]), w = int.Parse(args[3]), k = int.Parse(args[4]), st = int.Parse(args[5]), ceil = int.Parse(args[6]);
    int mpad = args.Length == 8 ? int.Parse(args[7]) : 0;
    var node = new Node { OpType = "MaxPool", Inputs = ["X"], Outputs = ["Y"] };
    node.Attributes["kernel_shape"] = AttributeValue.Of("kernel_shape", new long[] { k, k });
    node.Attributes["strides"] = AttributeValue.Of("strides", new long[] { st, st });
    node.Attributes["ceil_mode"] = AttributeValue.Of("ceil_mode", (long)ceil);
    node.Attributes["pads"] = AttributeValue.Of("pads", new long[] { mpad, mpad, mpad, mpad });
    var graph = new Graph
    {
        Nodes = [node],
        Inputs = [new ValueInfo("X", DataType.Float32, [Dim.Of(1), Dim.Of(c), Dim.Of(h), Dim.Of(w)])],
        Outputs = [new ValueInfo("Y", DataType.Float32, null)],
    };
    var (p50, min) = TimeSingleNode(graph, c, h, w);
    Console.WriteLine($"maxpool {c}x{h}x{w} k{k} s{st} ceil{ceil} pad{mpad}: p50 {p50:F1} us, min {min:F1} us");
    return;
}
var shapes = new List<(string Name, int M, int N, int K)>();
if (args.Length >= 4 && args[0] == "gemm")
    for (int i = 1; i + 2 < args.Length; i += 3) shapes.Add(("arg", int.Parse(args[i]), int.Parse(args[i + 1]), int.Parse(args[i + 2])));
else
{
    shapes.Add(("resnet layer1 3x3", 64, 3136, 576));
    shapes.Add(("resnet layer2 3x3", 128, 784, 1152));
    shapes.Add(("resnet layer4 3x3", 512, 49, 4608));
    shapes.Add(("resnet conv1 7x7", 64, 12544, 147));
    shapes.Add(("mnv2 1x1 16->96", 96, 12544, 16));
    shapes.Add(("mnv2 1x1 96->24", 24, 3136, 96));
    shapes.Add(("mnv2 1x1 144->24", 24, 3136, 144));
    shapes.Add(("mnv2 1x1 576->96", 96, 196, 576));
    shapes.Add(("mnv2 1x1 320->1280", 1280, 49, 320));
    shapes.Add(("sqz classifier 512->1000", 1000, 169, 512));
    shapes.Add(("sqz expand3x3 16->64", 64, 3025, 144));
}
var rng = new Random(1);
foreach (var (name, M, N, K) in shapes)
{
    var a = new float[M * K]; var b = new float[K * N]; var c = new float[M * N]; var bias = new float[M];
    for (int i = 0; i < a.Length; i++) a[i] = (float)rng.NextDouble() - 0.5f;
    for (int i = 0; i < b.Length; i++) b[i] = (float)rng.NextDouble() - 0.5f;
    var packed = SGemm.PackA(false, M, K, a, K);
    var act = new FusedActivation(ActivationKind.Relu);
    void Once() => SGemm.Multiply(false, false, M, N, K, 1f, a, K, b, N, 0f, c, N, bias, default, in act, 1, packed);
    var sw = Stopwatch.StartNew();
    while (sw.ElapsedMilliseconds < 300) Once();
    double flops = 2.0 * M * N * K;
    int reps = Math.Max(3, (int)(2e8 / flops));
    var times = new double[15];
    for (int t = 0; t < times.Length; t++)
    {
        long s = Stopwatch.GetTimestamp();
        for (int r = 0; r < reps; r++) Once();
        times[t] = Stopwatch.GetElapsedTime(s).TotalSeconds / reps;
    }
    Array.Sort(times);
    double med = times[times.Length / 2];
    Console.WriteLine($"{name,-26} M={M,5} N={N,6} K={K,5}  {med * 1e6,10:F1} us  {flops / med / 1e9,6:F1} GFLOP/s");
}

/// <summary>p50 and min microseconds of one run of a one-input graph on a [1, c, h, w] input, after 0.5 s of warm-up.</summary>
static (double P50, double Min) TimeSingleNode(Graph graph, int c, int h, int w, DataType type = DataType.Float32)
{
    var session = new InferenceSession(new Model { Graph = graph, Opsets = { [""] = 13 } });
    var x = Tensor.Zeros(type, 1, c, h, w);
    if (type == DataType.UInt8)
    {
        var xb = x.Span<byte>();
        for (int i = 0; i < xb.Length; i++) xb[i] = (byte)(i * 7919 % 251);
    }
    var xs = type == DataType.Float32 ? x.Span<float>() : default;
    for (int i = 0; i < xs.Length; i++) xs[i] = (i * 7919 % 1000) / 1000f;
    // TINYOPS_BENCH_INPUT=FILE: raw little-endian float32 input values instead of the synthetic ones.
    if (Environment.GetEnvironmentVariable("TINYOPS_BENCH_INPUT") is { Length: > 0 } file)
        System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(File.ReadAllBytes(file)).Slice(0, xs.Length).CopyTo(xs);
    var outs = new Tensor[1];
    Tensor[] ins = [x];
    var sw0 = Stopwatch.StartNew();
    while (sw0.ElapsedMilliseconds < 500) session.Run(ins, outs);
    var t = new double[200];
    // TINYOPS_BENCH_COLD=1: evict the caches before each run (write 64 MiB), as when the input was produced long before.
    byte[]? flush = Environment.GetEnvironmentVariable("TINYOPS_BENCH_COLD") == "1" ? new byte[64 << 20] : null;
    for (int i = 0; i < t.Length; i++)
    {
        if (flush is not null) Array.Fill(flush, (byte)i);
        long s0 = Stopwatch.GetTimestamp(); session.Run(ins, outs); t[i] = Stopwatch.GetElapsedTime(s0).TotalMicroseconds;
    }
    Array.Sort(t);
    return (t[100], t[0]);
}
