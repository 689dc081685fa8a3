using TinyOps.Engine.Ir;
using TinyOps.Engine.Kernels.Nn;
using TinyOps.Engine.Runtime;
using TinyOps.Engine.Tensors;
using Xunit;

namespace TinyOps.Engine.Tests.Kernels;

/// <summary>Tests that share <see cref="SGemm.ForceScalar"/> run one at a time.</summary>
[CollectionDefinition("SGemmScalarSwitch", DisableParallelization = true)]
public class SGemmScalarSwitchCollection { }

/// <summary>
/// The fast fp32 kernels (packed SGEMM with epilogue, depthwise conv, fused activations, threads) against plain
/// reference loops, on odd shapes, with the vector and the forced scalar paths.
/// </summary>
[Collection("SGemmScalarSwitch")]
public class FastKernelTests
{
    private static float[] Random(int n, int seed)
    {
        var r = new Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(r.NextDouble() * 2 - 1);
        return a;
    }

    private static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-4 + 1e-4 * Math.Abs(expected[i]), $"{what}: element {i}: expected {expected[i]}, got {actual[i]}");
    }

    private static float Act(FusedActivation a, float v) => a.Kind switch
    {
        ActivationKind.Relu => Math.Max(v, 0f),
        ActivationKind.Clip => Math.Min(Math.Max(v, a.A), a.B),
        ActivationKind.LeakyRelu => v < 0 ? a.A * v : v,
        ActivationKind.HardSigmoid => Math.Clamp(a.A * v + a.B, 0f, 1f),
        ActivationKind.HardSwish => v * Math.Clamp(v / 6f + 0.5f, 0f, 1f),
        ActivationKind.Sigmoid => (float)(1 / (1 + Math.Exp(-v))),
        _ => v,
    };

    private static readonly FusedActivation[] Activations =
    [
        FusedActivation.None,
        new(ActivationKind.Relu),
        new(ActivationKind.Clip, 0f, 6f),
        new(ActivationKind.LeakyRelu, 0.1f),
        new(ActivationKind.HardSigmoid, 0.2f, 0.5f),
        new(ActivationKind.HardSwish, 1f / 6f, 0.5f),
        new(ActivationKind.Sigmoid),
    ];

    public static TheoryData<bool, int> Modes() => new() { { false, 1 }, { true, 1 }, { false, 2 }, { true, 2 } };

    [Fact]
    public void PackedGemm512PathMatchesNaiveOnAnyHardware()
    {
        // The 8 x 32 Vector512 kernel runs in software where AVX-512 is missing, so this checks it everywhere.
        PackedGemm.ForcePath = PackedGemm.Path.Avx512;
        try
        {
            PackedGemmMatchesNaiveOnOddShapes(false, 1);
            PackedGemmMatchesNaiveOnOddShapes(false, 2);
        }
        finally
        {
            PackedGemm.ForcePath = null;
        }
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void PackedGemmMatchesNaiveOnOddShapes(bool scalar, int threads)
    {
        int[][] sizes =
        [
            [1, 1, 1], [4, 5, 3], [8, 32, 16], [9, 33, 17], [17, 31, 300], [6, 16, 7], [13, 70, 513], [40, 100, 5],
            [129, 65, 257], [7, 1030, 9], [33, 2100, 3], [300, 49, 40], [16, 3, 1], [20, 17, 0], [12, 64, 600], [24, 48, 16],
            [2, 300, 1000], [9, 129, 2100], // few rows, enough columns to split across threads
        ];
        var rnd = new Random(5);
        SGemm.ForceScalar = scalar;
        try
        {
            int t = 0;
            foreach (var sz in sizes)
                foreach (bool transA in new[] { false, true })
                    foreach (bool transB in new[] { false, true })
                    {
                        t++;
                        int m = sz[0], n = sz[1], k = sz[2];
                        int lda = (transA ? m : k) + t % 3, ldb = (transB ? k : n) + t % 2, ldc = n + t % 4;
                        var a = Random(Math.Max(1, (transA ? k : m) * lda), t);
                        var b = Random(Math.Max(1, (transB ? n : k) * ldb), t + 100);
                        var c = Random(m * ldc, t + 200);
                        var act = Activations[t % Activations.Length];
                        float alpha = t % 2 == 0 ? 1f : 0.75f;
                        float beta = (t % 3) switch { 0 => 0f, 1 => 1f, _ => -0.5f };
                        var rowBias = t % 4 == 1 ? Random(m, t + 300) : null;
                        var colBias = t % 4 == 2 ? Random(n, t + 400) : null;
                        var expected = (float[])c.Clone();
                        for (int i = 0; i < m; i++)
                            for (int j = 0; j < n; j++)
                            {
                                double s = 0;
                                for (int p = 0; p < k; p++)
                                    s += (double)(transA ? a[p * lda + i] : a[i * lda + p]) * (transB ? b[j * ldb + p] : b[p * ldb + j]);
                                double v = alpha * s + (beta == 0f ? 0 : beta * c[i * ldc + j]) + (rowBias?[i] ?? 0) + (colBias?[j] ?? 0);
                                expected[i * ldc + j] = Act(act, (float)v);
                            }
                        SGemm.Multiply(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, rowBias, colBias, in act, threads);
                        AssertClose(expected, c, $"M{m} N{n} K{k} transA={transA} transB={transB} act={act.Kind} beta={beta}");
                    }
        }
        finally
        {
            SGemm.ForceScalar = false;
        }
    }

    [Fact]
    public void PackedGemmAgreesWithReferenceGemm()
    {
        foreach (var (m, n, k) in new[] { (64, 64, 64), (31, 257, 129), (100, 7, 600) })
        {
            var a = Random(m * k, 1);
            var b = Random(k * n, 2);
            var c1 = Random(m * n, 3);
            var c2 = (float[])c1.Clone();
            SGemm.Multiply(false, false, m, n, k, 1f, a, k, b, n, 1f, c1, n);
            SGemm.MultiplyReference(false, false, m, n, k, 1f, a, k, b, n, 1f, c2, n);
            AssertClose(c2, c1, $"{m}x{n}x{k}");
        }
    }

    /// <summary>Naive Conv on shapes lifted to 3-D; pads are begin pads.</summary>
    private static float[] NaiveConv(float[] x, float[] w, float[]? bias, int n, int c, int m, int group,
        int[] inS, int[] k, int[] outS, int[] stride, int[] dil, int[] pad)
    {
        int cg = c / group, mg = m / group;
        int inSize = inS[0] * inS[1] * inS[2], outSize = outS[0] * outS[1] * outS[2], kvol = k[0] * k[1] * k[2];
        var y = new float[n * m * outSize];
        for (int b = 0; b < n; b++)
            for (int o = 0; o < m; o++)
            {
                int g = o / mg;
                for (int od = 0; od < outS[0]; od++)
                    for (int oh = 0; oh < outS[1]; oh++)
                        for (int ow = 0; ow < outS[2]; ow++)
                        {
                            double s = bias?[o] ?? 0;
                            for (int ci = 0; ci < cg; ci++)
                                for (int kd = 0; kd < k[0]; kd++)
                                    for (int kh = 0; kh < k[1]; kh++)
                                        for (int kw = 0; kw < k[2]; kw++)
                                        {
                                            int id = od * stride[0] - pad[0] + kd * dil[0];
                                            int ih = oh * stride[1] - pad[1] + kh * dil[1];
                                            int iw = ow * stride[2] - pad[2] + kw * dil[2];
                                            if (id < 0 || ih < 0 || iw < 0 || id >= inS[0] || ih >= inS[1] || iw >= inS[2]) continue;
                                            s += (double)x[((b * c + g * cg + ci) * inS[0] + id) * inS[1] * inS[2] + ih * inS[2] + iw]
                                                * w[(o * cg + ci) * kvol + (kd * k[1] + kh) * k[2] + kw];
                                        }
                            y[(b * m + o) * outSize + (od * outS[1] + oh) * outS[2] + ow] = (float)s;
                        }
            }
        return y;
    }

    private static Dictionary<string, Tensor> RunModel(Graph graph, Dictionary<string, Tensor> feeds, int threads = 1)
    {
        var model = new Model { Graph = graph, Opsets = { [""] = 17 } };
        var session = new InferenceSession(model, new SessionOptions { Threads = threads });
        return session.Run(feeds);
    }

    private static Node ConvNode(int group, int k, int stride, int dil, int pad, string output = "Y") => new()
    {
        Name = "conv",
        OpType = "Conv",
        Inputs = ["X", "W", "B"],
        Outputs = [output],
        Attributes =
        {
            ["group"] = AttributeValue.Of("group", (long)group),
            ["kernel_shape"] = AttributeValue.Of("kernel_shape", new long[] { k, k }),
            ["strides"] = AttributeValue.Of("strides", new long[] { stride, stride }),
            ["dilations"] = AttributeValue.Of("dilations", new long[] { dil, dil }),
            ["pads"] = AttributeValue.Of("pads", new long[] { pad, pad, pad, pad }),
        },
    };

    public static TheoryData<int, int, int, int, int, int, int, int, int, int> ConvCases() => new()
    {
        // n, c, m, group, h, w, k, stride, dil, pad
        { 1, 8, 8, 8, 13, 11, 3, 1, 1, 1 },     // depthwise 3x3
        { 2, 6, 6, 6, 17, 23, 3, 2, 1, 1 },     // depthwise stride 2, odd sizes
        { 1, 4, 8, 4, 9, 40, 3, 2, 2, 2 },      // depthwise with channel multiplier 2, dilation
        { 1, 5, 5, 5, 8, 7, 5, 3, 1, 2 },       // depthwise 5x5 stride 3
        { 1, 3, 3, 3, 7, 5, 3, 1, 1, 0 },       // depthwise, no padding
        { 1, 5, 5, 5, 6, 61, 3, 1, 1, 1 },      // depthwise, wide rows
        { 1, 7, 7, 7, 7, 7, 3, 1, 1, 1 },       // depthwise, a 7 x 7 plane (rows shorter than a vector)
        { 1, 6, 6, 6, 14, 14, 3, 2, 1, 1 },     // depthwise, stride 2 on an even plane
        { 1, 4, 4, 4, 11, 9, 5, 2, 1, 2 },      // depthwise 5x5 stride 2
        { 1, 3, 3, 3, 10, 13, 3, 1, 3, 3 },     // depthwise, dilation 3
        { 1, 2, 2, 2, 12, 12, 3, 3, 1, 0 },     // depthwise, stride 3
        { 2, 4, 4, 4, 5, 70, 3, 2, 1, 1 },      // depthwise, wide rows, stride 2
        { 1, 32, 32, 32, 14, 14, 3, 1, 1, 1 },  // depthwise channels-last blocks: 196 pixels (a ragged 16-pixel group)
        { 2, 17, 17, 17, 7, 7, 3, 1, 1, 1 },    // depthwise channels-last: one block and one channel on the flat path, 49 pixels
        { 1, 48, 48, 48, 15, 13, 3, 2, 1, 1 },  // depthwise channels-last, stride 2, odd sizes
        { 1, 16, 16, 16, 12, 12, 5, 1, 1, 2 },  // depthwise channels-last 5x5
        { 1, 16, 16, 16, 9, 11, 3, 2, 1, 0 },   // depthwise channels-last, no padding, columns the window never reaches
        { 2, 5, 5, 5, 28, 28, 3, 1, 1, 1 },     // depthwise in place: 784 pixels (whole 16-output steps), batch 2
        { 1, 4, 4, 4, 9, 1, 3, 1, 1, 1 },       // depthwise in place: one column (both side taps always padding)
        { 1, 3, 3, 3, 1, 1, 3, 1, 1, 1 },       // depthwise in place: a single pixel
        { 1, 3, 3, 3, 5, 16, 3, 1, 1, 1 },      // depthwise in place: rows of exactly one step
        { 1, 3, 3, 3, 6, 17, 3, 1, 1, 1 },      // depthwise in place: rows one past a step
        { 1, 2, 2, 2, 4, 47, 3, 1, 1, 1 },      // depthwise in place: the widest row it takes
        { 1, 3, 3, 3, 9, 40, 3, 2, 1, 1 },      // depthwise in place, stride 2: two 16-output steps a row (the second ragged)
        { 2, 2, 2, 2, 7, 66, 3, 2, 1, 1 },      // depthwise in place, stride 2: three steps a row, odd height
        { 1, 3, 3, 3, 1, 2, 3, 2, 1, 1 },       // depthwise in place, stride 2: one output
        { 1, 3, 3, 3, 30, 100, 3, 1, 1, 1 },    // depthwise row streaming, stride 1
        { 1, 2, 2, 2, 31, 95, 3, 2, 1, 1 },     // depthwise row streaming, stride 2, odd sizes
        { 1, 3, 10, 1, 19, 21, 3, 2, 1, 1 },    // first layer of a CNN
        { 1, 3, 17, 1, 40, 75, 3, 2, 1, 0 },    // stem: 37 outputs a row (a ragged 32-output step), 17 channels (ragged group)
        { 2, 2, 9, 1, 23, 30, 5, 1, 2, 2 },     // stem: two channels, 5x5 dilated, stride 1
        { 2, 3, 32, 1, 48, 50, 3, 2, 1, 1 },    // stem, batch 2, enough work for two threads (the split copy in parts too)
        { 1, 1, 8, 1, 10, 14, 3, 1, 1, 1 },     // stem: rows of 14 outputs, all in the one-vector tail step
        { 2, 17, 33, 1, 9, 9, 1, 1, 1, 0 },     // 1x1, odd channel counts
        { 1, 12, 18, 3, 10, 12, 3, 1, 2, 2 },   // grouped, dilated
        { 1, 8, 35, 1, 6, 5, 2, 2, 1, 1 },      // even kernel, stride 2
        { 1, 40, 70, 1, 7, 7, 1, 2, 1, 0 },     // 1x1 stride 2 (im2col path)
        { 1, 40, 20, 1, 24, 24, 1, 1, 1, 0 },   // 1x1, few output channels over a large plane: X read in place (one pass of 24 rows)
        { 1, 17, 33, 1, 23, 25, 1, 1, 1, 0 },   // 1x1, few output channels: two passes, a ragged last 16-column block
        { 2, 8, 5, 1, 32, 17, 1, 1, 1, 0 },     // 1x1, five output channels (one pass of 8 rows), batch 2
        { 1, 256, 96, 1, 7, 7, 1, 1, 1, 0 },    // 1x1 computed transposed (pixels as GEMM rows): a 7 x 7 plane
        { 2, 300, 200, 1, 4, 4, 1, 1, 1, 0 },   // 1x1 transposed: 200 channels (a ragged 16-channel group), batch 2, two K blocks
        { 1, 256, 320, 1, 14, 14, 1, 1, 1, 0 }, // 1x1 transposed: 196 pixels (a ragged 16-pixel group)
        { 2, 16, 24, 1, 11, 13, 3, 1, 1, 1 },   // implicit GEMM: 3x3, batch 2, 143 pixels (ragged last tile), ragged panel
        { 1, 9, 40, 1, 15, 14, 3, 2, 2, 2 },    // implicit GEMM: stride 2, dilation 2
        { 1, 4, 16, 1, 12, 12, 5, 1, 1, 0 },    // implicit GEMM: 5x5, no padding
        { 2, 3, 8, 1, 9, 8, 7, 2, 1, 3 },       // implicit GEMM: 7x7 stride 2 (a ResNet stem)
        { 1, 32, 33, 1, 3, 3, 3, 1, 1, 1 },     // implicit GEMM: fewer pixels than a tile, two K blocks
        { 1, 24, 16, 1, 20, 21, 3, 1, 1, 1 },   // implicit GEMM: 70 pixel tiles (three chunks), two K blocks
        { 1, 20, 70, 1, 17, 19, 3, 1, 1, 1 },   // implicit GEMM, 32-channel panels: ragged panel, 323 pixels (ragged 8-pixel tile), two K blocks
        { 2, 16, 64, 1, 9, 9, 3, 2, 1, 1 },     // implicit GEMM, 32-channel panels: stride 2, 25 pixels
        { 1, 5, 16, 1, 9, 10, 3, 1, 1, 1 },     // implicit GEMM, 16-channel panels: odd depth (45 steps), ragged 8-pixel tile
        { 3, 8, 16, 1, 14, 14, 3, 1, 1, 1 },    // implicit GEMM: fmnist_cnn's second layer, batch 3
        { 1, 72, 96, 1, 8, 9, 3, 1, 1, 1 },     // implicit GEMM, 64-channel panels: ragged panel, 72 pixels in 6-pixel tiles, six K blocks
        { 1, 16, 64, 1, 5, 5, 3, 1, 1, 1 },     // implicit GEMM, 64-channel panels: 25 pixels (a one-pixel last tile)
    };

    [Fact]
    public void DepthwiseAndStemConvVector256PathsMatchNaive()
    {
        // Where Vector512 is accelerated the depthwise and stem kernels use it; this runs their Vector256 code there too.
        DepthwiseConv.Force256 = true;
        SmallChannelConv.Force256 = true;
        try
        {
            foreach (var row in ConvCases())
            {
                var a = row.Select(o => (int)o).ToArray();
                bool depthwise = a[3] > 1 && a[3] == a[1], stem = a[3] == 1 && a[1] <= SmallChannelConv.MaxChannels && a[6] > 1;
                if (!depthwise && !stem) continue;
                ConvWithFusedActivationMatchesNaive(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9]);
            }
        }
        finally
        {
            DepthwiseConv.Force256 = false;
            SmallChannelConv.Force256 = false;
        }
    }

    [Theory]
    [InlineData(true, true)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    public void ImplicitGemmConvMatchesNaiveWithEitherPanelWidth(bool wide, bool use64)
    {
        // The 32- and 64-channel Vector512 panels run in software where AVX-512 is missing, so every width is checked everywhere.
        ImplicitGemmConv.Force512 = wide;
        ImplicitGemmConv.Use64 = use64;
        try
        {
            foreach (var row in ConvCases())
            {
                var a = row.Select(o => (int)o).ToArray();
                if (a[3] != 1 || a[6] == 1) continue; // only dense convolutions wider than 1x1 take the implicit GEMM
                ConvWithFusedActivationMatchesNaive(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9]);
            }
        }
        finally
        {
            ImplicitGemmConv.Force512 = null;
            ImplicitGemmConv.Use64 = true;
        }
    }

    [Theory]
    [MemberData(nameof(ConvCases))]
    public void ConvWithFusedActivationMatchesNaive(int n, int c, int m, int group, int h, int wd, int k, int stride, int dil, int pad)
    {
        int oh = (h + 2 * pad - ((k - 1) * dil + 1)) / stride + 1, ow = (wd + 2 * pad - ((k - 1) * dil + 1)) / stride + 1;
        var x = Random(n * c * h * wd, 1);
        var w = Random(m * (c / group) * k * k, 2);
        var b = Random(m, 3);
        var conv = NaiveConv(x, w, b, n, c, m, group, [1, h, wd], [1, k, k], [1, oh, ow], [1, stride, stride], [1, dil, dil], [0, pad, pad]);
        var feeds = new Dictionary<string, Tensor>
        {
            ["X"] = Tensor.FromArray(x, n, c, h, wd),
        };
        var inits = new Dictionary<string, Tensor>(StringComparer.Ordinal)
        {
            ["W"] = Tensor.FromArray(w, m, c / group, k, k),
            ["B"] = Tensor.FromArray(b, m),
            ["lo"] = Tensor.FromArray(new[] { -0.25f }, []),
            ["hi"] = Tensor.FromArray(new[] { 0.5f }, []),
        };
        var acts = new (Node Node, Func<float, float> F)[]
        {
            (new Node { OpType = "Relu", Inputs = ["T"], Outputs = ["Y"] }, v => Math.Max(v, 0f)),
            (new Node { OpType = "Clip", Inputs = ["T", "lo", "hi"], Outputs = ["Y"] }, v => Math.Min(Math.Max(v, -0.25f), 0.5f)),
            (new Node { OpType = "LeakyRelu", Inputs = ["T"], Outputs = ["Y"], Attributes = { ["alpha"] = AttributeValue.Of("alpha", 0.3f) } }, v => v < 0 ? 0.3f * v : v),
            (new Node { OpType = "HardSwish", Inputs = ["T"], Outputs = ["Y"] }, v => v * Math.Clamp(v / 6f + 0.5f, 0f, 1f)),
            (new Node { OpType = "Sigmoid", Inputs = ["T"], Outputs = ["Y"] }, v => (float)(1 / (1 + Math.Exp(-v)))),
        };
        foreach (bool scalar in new[] { false, true })
            foreach (int threads in new[] { 1, 2 })
                foreach (var (actNode, f) in acts)
                {
                    SGemm.ForceScalar = scalar;
                    try
                    {
                        var graph = new Graph
                        {
                            Nodes = [ConvNode(group, k, stride, dil, pad, "T"), actNode],
                            Inputs = [new ValueInfo("X", DataType.Float32, [Dim.Of(n), Dim.Of(c), Dim.Of(h), Dim.Of(wd)])],
                            Outputs = [new ValueInfo("Y", DataType.Float32, null)],
                            Initializers = inits,
                        };
                        var y = RunModel(graph, feeds, threads)["Y"];
                        var expected = conv.Select(f).ToArray();
                        AssertClose(expected, y.ReadOnlySpan<float>(), $"{actNode.OpType} scalar={scalar} threads={threads}");
                    }
                    finally
                    {
                        SGemm.ForceScalar = false;
                    }
                }
    }

    [Theory]
    [InlineData(8, 10, 0)]  // the last row and column of padding missing: the bottom and right taps never read padding
    [InlineData(7, 9, 2)]   // a second row and column of padding after: outputs whose right and lower taps are all padding
    [InlineData(6, 40, 1)]  // two 16-output steps a row
    public void DepthwiseStride2WithUnevenPaddingMatchesNaive(int h, int wd, int padEnd)
    {
        // The in-place stride-2 route needs one row and column of padding before; whatever comes after is read as 0.
        const int n = 1, c = 5;
        int oh = (h + 1 + padEnd - 3) / 2 + 1, ow = (wd + 1 + padEnd - 3) / 2 + 1;
        var x = Random(n * c * h * wd, 11);
        var w = Random(c * 9, 12);
        var b = Random(c, 13);
        var expected = NaiveConv(x, w, b, n, c, c, c, [1, h, wd], [1, 3, 3], [1, oh, ow], [1, 2, 2], [1, 1, 1], [0, 1, 1]);
        var node = ConvNode(c, 3, 2, 1, 1);
        node.Attributes["pads"] = AttributeValue.Of("pads", new long[] { 1, 1, padEnd, padEnd });
        foreach (int threads in new[] { 1, 2 })
        {
            var graph = new Graph
            {
                Nodes = [node],
                Inputs = [new ValueInfo("X", DataType.Float32, [Dim.Of(n), Dim.Of(c), Dim.Of(h), Dim.Of(wd)])],
                Outputs = [new ValueInfo("Y", DataType.Float32, null)],
                Initializers = new Dictionary<string, Tensor>(StringComparer.Ordinal)
                {
                    ["W"] = Tensor.FromArray(w, c, 1, 3, 3),
                    ["B"] = Tensor.FromArray(b, c),
                },
            };
            var y = RunModel(graph, new Dictionary<string, Tensor> { ["X"] = Tensor.FromArray(x, n, c, h, wd) }, threads)["Y"];
            Assert.Equal(new[] { n, c, oh, ow }, y.Shape);
            AssertClose(expected, y.ReadOnlySpan<float>(), $"{h}x{wd} pad end {padEnd} threads={threads}");
        }
    }

    [Fact]
    public void FusionRewritesOnlySingleConsumerIntermediates()
    {
        var x = Random(1 * 4 * 6 * 6, 1);
        var w = Random(4 * 1 * 3 * 3, 2);
        var b = Random(4, 3);
        var conv = NaiveConv(x, w, b, 1, 4, 4, 4, [1, 6, 6], [1, 3, 3], [1, 6, 6], [1, 1, 1], [1, 1, 1], [0, 1, 1]);
        var inits = new Dictionary<string, Tensor>(StringComparer.Ordinal) { ["W"] = Tensor.FromArray(w, 4, 1, 3, 3), ["B"] = Tensor.FromArray(b, 4) };
        var feeds = new Dictionary<string, Tensor> { ["X"] = Tensor.FromArray(x, 1, 4, 6, 6) };
        // T feeds Relu and is a graph output: not fused, both outputs right.
        var g1 = new Graph
        {
            Nodes = [ConvNode(4, 3, 1, 1, 1, "T"), new Node { OpType = "Relu", Inputs = ["T"], Outputs = ["Y"] }],
            Inputs = [new ValueInfo("X", DataType.Float32, [Dim.Of(1), Dim.Of(4), Dim.Of(6), Dim.Of(6)])],
            Outputs = [new ValueInfo("Y", DataType.Float32, null), new ValueInfo("T", DataType.Float32, null)],
            Initializers = inits,
        };
        var r1 = RunModel(g1, feeds);
        AssertClose(conv, r1["T"].ReadOnlySpan<float>(), "T");
        AssertClose(conv.Select(v => Math.Max(v, 0f)).ToArray(), r1["Y"].ReadOnlySpan<float>(), "Y");
        // T feeds Relu and Add: not fused.
        var g2 = new Graph
        {
            Nodes =
            [
                ConvNode(4, 3, 1, 1, 1, "T"),
                new Node { OpType = "Relu", Inputs = ["T"], Outputs = ["R"] },
                new Node { OpType = "Add", Inputs = ["R", "T"], Outputs = ["Y"] },
            ],
            Inputs = [new ValueInfo("X", DataType.Float32, [Dim.Of(1), Dim.Of(4), Dim.Of(6), Dim.Of(6)])],
            Outputs = [new ValueInfo("Y", DataType.Float32, null)],
            Initializers = inits,
        };
        AssertClose(conv.Select(v => Math.Max(v, 0f) + v).ToArray(), RunModel(g2, feeds)["Y"].ReadOnlySpan<float>(), "Y2");
        // The caller's graph is not modified by a fusing session.
        var g3 = new Graph
        {
            Nodes = [ConvNode(4, 3, 1, 1, 1, "T"), new Node { OpType = "Relu", Inputs = ["T"], Outputs = ["Y"] }],
            Inputs = [new ValueInfo("X", DataType.Float32, [Dim.Of(1), Dim.Of(4), Dim.Of(6), Dim.Of(6)])],
            Outputs = [new ValueInfo("Y", DataType.Float32, null)],
            Initializers = inits,
        };
        AssertClose(conv.Select(v => Math.Max(v, 0f)).ToArray(), RunModel(g3, feeds)["Y"].ReadOnlySpan<float>(), "Y3");
        Assert.Equal(2, g3.Nodes.Count);
        Assert.False(g3.Nodes[0].HasAttribute(FusedActivation.KindAttribute));
    }

    [Fact]
    public void GemmWithBiasRowAndFusedReluMatchesNaive()
    {
        int m = 5, k = 37, n = 19;
        var a = Random(m * k, 1);
        var w = Random(n * k, 2);
        var bias = Random(n, 3);
        var graph = new Graph
        {
            Nodes =
            [
                new Node { OpType = "Gemm", Inputs = ["A", "W", "B"], Outputs = ["T"], Attributes = { ["transB"] = AttributeValue.Of("transB", 1L) } },
                new Node { OpType = "Relu", Inputs = ["T"], Outputs = ["Y"] },
            ],
            Inputs = [new ValueInfo("A", DataType.Float32, [Dim.Of(m), Dim.Of(k)])],
            Outputs = [new ValueInfo("Y", DataType.Float32, null)],
            Initializers = new(StringComparer.Ordinal) { ["W"] = Tensor.FromArray(w, n, k), ["B"] = Tensor.FromArray(bias, n) },
        };
        var expected = new float[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = bias[j];
                for (int p = 0; p < k; p++) s += (double)a[i * k + p] * w[j * k + p];
                expected[i * n + j] = (float)Math.Max(s, 0);
            }
        AssertClose(expected, RunModel(graph, new() { ["A"] = Tensor.FromArray(a, m, k) })["Y"].ReadOnlySpan<float>(), "Gemm+Relu");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void ConvModelAllocatesNothingPerRun(int threads)
    {
        // Conv (im2col) + Relu, depthwise + Clip, 1x1 conv: every fast path, with the pool for threads > 1.
        var inits = new Dictionary<string, Tensor>(StringComparer.Ordinal)
        {
            ["W1"] = Tensor.FromArray(Random(16 * 3 * 3 * 3, 1), 16, 3, 3, 3),
            ["B1"] = Tensor.FromArray(Random(16, 2), 16),
            ["W2"] = Tensor.FromArray(Random(16 * 9, 3), 16, 1, 3, 3),
            ["B2"] = Tensor.FromArray(Random(16, 4), 16),
            ["W3"] = Tensor.FromArray(Random(32 * 16, 5), 32, 16, 1, 1),
            ["B3"] = Tensor.FromArray(Random(32, 6), 32),
            ["lo"] = Tensor.FromArray(new[] { 0f }, []),
            ["hi"] = Tensor.FromArray(new[] { 6f }, []),
        };
        Node Conv(string x, string w, string b, string y, int group, int k) => new()
        {
            OpType = "Conv",
            Inputs = [x, w, b],
            Outputs = [y],
            Attributes =
            {
                ["group"] = AttributeValue.Of("group", (long)group),
                ["pads"] = AttributeValue.Of("pads", k == 3 ? new long[] { 1, 1, 1, 1 } : new long[] { 0, 0, 0, 0 }),
            },
        };
        var graph = new Graph
        {
            Nodes =
            [
                Conv("X", "W1", "B1", "T1", 1, 3),
                new Node { OpType = "Relu", Inputs = ["T1"], Outputs = ["R1"] },
                Conv("R1", "W2", "B2", "T2", 16, 3),
                new Node { OpType = "Clip", Inputs = ["T2", "lo", "hi"], Outputs = ["R2"] },
                Conv("R2", "W3", "B3", "Y", 1, 1),
            ],
            Inputs = [new ValueInfo("X", DataType.Float32, [Dim.Of(1), Dim.Of(3), Dim.Of(48), Dim.Of(48)])],
            Outputs = [new ValueInfo("Y", DataType.Float32, null)],
            Initializers = inits,
        };
        var session = new InferenceSession(new Model { Graph = graph, Opsets = { [""] = 17 } }, new SessionOptions { Threads = threads });
        Tensor[] inputs = [Tensor.FromArray(Random(3 * 48 * 48, 7), 1, 3, 48, 48)];
        var outputs = new Tensor[1];
        // Warm-up past tiered compilation (30 calls and the back-edge counts, counted only after the runtime's 100 ms
        // quiet period): a tier-1 or OSR compile that lands in the measured runs allocates on the JIT's thread.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        for (int i = 0; i < 40 || clock.ElapsedMilliseconds < 400; i++) session.Run(inputs, outputs);
        Thread.Sleep(200);
        for (int i = 0; i < 5; i++) session.Run(inputs, outputs);
        long thread0 = GC.GetAllocatedBytesForCurrentThread();
        long total0 = GC.GetTotalAllocatedBytes(true);
        for (int i = 0; i < 20; i++) session.Run(inputs, outputs);
        long thread1 = GC.GetAllocatedBytesForCurrentThread();
        long total1 = GC.GetTotalAllocatedBytes(true);
        Assert.Equal(0, thread1 - thread0);
        // Other test threads may allocate concurrently; this collection runs alone, so a small margin suffices.
        Assert.True(total1 - total0 < 4096, $"{total1 - total0} bytes allocated process-wide over 20 runs");
    }

    [Theory]
    [InlineData(2, 3, 28, 28)]
    [InlineData(1, 2, 9, 31)]
    [InlineData(1, 1, 4, 2)]
    public void MaxPool2x2MatchesNaive(int n, int c, int h, int w)
    {
        var x = Random(n * c * h * w, 9);
        var node = new Node
        {
            OpType = "MaxPool",
            Inputs = ["X"],
            Outputs = ["Y"],
            Attributes =
            {
                ["kernel_shape"] = AttributeValue.Of("kernel_shape", new long[] { 2, 2 }),
                ["strides"] = AttributeValue.Of("strides", new long[] { 2, 2 }),
            },
        };
        var graph = new Graph
        {
            Nodes = [node],
            Inputs = [new ValueInfo("X", DataType.Float32, [Dim.Of(n), Dim.Of(c), Dim.Of(h), Dim.Of(w)])],
            Outputs = [new ValueInfo("Y", DataType.Float32, null)],
        };
        int oh = h / 2, ow = w / 2;
        var expected = new float[n * c * oh * ow];
        for (int p = 0; p < n * c; p++)
            for (int i = 0; i < oh; i++)
                for (int j = 0; j < ow; j++)
                {
                    float best = float.NegativeInfinity;
                    for (int a = 0; a < 2; a++)
                        for (int b = 0; b < 2; b++) best = Math.Max(best, x[(p * h + 2 * i + a) * w + 2 * j + b]);
                    expected[(p * oh + i) * ow + j] = best;
                }
        AssertClose(expected, RunModel(graph, new() { ["X"] = Tensor.FromArray(x, n, c, h, w) })["Y"].ReadOnlySpan<float>(), "MaxPool");
    }

    [Theory]
    // c, h, w, kernel, stride, dilation, pads (top, left, bottom, right), ceil mode
    [InlineData(3, 112, 112, 3, 2, 1, 1, 1, 1, 1, 0)]   // ResNet-18
    [InlineData(2, 111, 111, 3, 2, 1, 0, 0, 0, 0, 1)]   // SqueezeNet, ceil mode
    [InlineData(3, 27, 27, 3, 2, 1, 0, 0, 0, 0, 1)]     // SqueezeNet's second pool: 13 outputs a row, less than a vector
    [InlineData(2, 30, 70, 4, 2, 1, 1, 1, 1, 1, 0)]     // even kernel, stride 2, 35 outputs a row
    [InlineData(2, 13, 17, 3, 1, 1, 1, 1, 1, 1, 0)]
    [InlineData(1, 20, 9, 2, 3, 2, 0, 1, 1, 0, 1)]
    [InlineData(2, 7, 33, 5, 2, 1, 2, 2, 2, 2, 0)]
    [InlineData(1, 4, 3, 4, 1, 1, 0, 3, 0, 3, 0)]
    [InlineData(1, 9, 40, 1, 1, 3, 0, 0, 0, 0, 0)]
    public void MaxPoolRowKernelMatchesReference(int c, int h, int w, int k, int s, int d, int pt, int pl, int pb, int pr, int ceil)
    {
        var x = Random(c * h * w, 21 + h + w);
        var node = new Node
        {
            OpType = "MaxPool",
            Inputs = ["X"],
            Outputs = ["Y"],
            Attributes =
            {
                ["kernel_shape"] = AttributeValue.Of("kernel_shape", new long[] { k, k }),
                ["strides"] = AttributeValue.Of("strides", new long[] { s, s }),
                ["dilations"] = AttributeValue.Of("dilations", new long[] { d, d }),
                ["pads"] = AttributeValue.Of("pads", new long[] { pt, pl, pb, pr }),
                ["ceil_mode"] = AttributeValue.Of("ceil_mode", (long)ceil),
            },
        };
        var graph = new Graph
        {
            Nodes = [node],
            Inputs = [new ValueInfo("X", DataType.Float32, [Dim.Of(1), Dim.Of(c), Dim.Of(h), Dim.Of(w)])],
            Outputs = [new ValueInfo("Y", DataType.Float32, null)],
        };
        var feeds = new Dictionary<string, Tensor> { ["X"] = Tensor.FromArray(x, 1, c, h, w) };
        float[] expected;
        try
        {
            TinyOps.Engine.Kernels.Pooling.MaxPoolKernel.UseReference = true;
            expected = RunModel(graph, feeds)["Y"].ToArray<float>();
        }
        finally { TinyOps.Engine.Kernels.Pooling.MaxPoolKernel.UseReference = false; }
        foreach (var (scalar, narrow) in new[] { (false, false), (false, true), (true, false) })
        {
            try
            {
                SGemm.ForceScalar = scalar;
                TinyOps.Engine.Kernels.Pooling.MaxPool2d.Force256 = narrow;
                var y = RunModel(graph, feeds)["Y"].ToArray<float>();
                Assert.Equal(expected.Length, y.Length);
                for (int i = 0; i < y.Length; i++) Assert.True(expected[i] == y[i], $"scalar={scalar} vector256={narrow} element {i}: expected {expected[i]}, got {y[i]}");
            }
            finally
            {
                SGemm.ForceScalar = false;
                TinyOps.Engine.Kernels.Pooling.MaxPool2d.Force256 = false;
            }
        }
    }
}
