using TinyOps.Engine.Ir;
using TinyOps.Engine.Kernels.Nn;
using TinyOps.Engine.Runtime;
using TinyOps.Engine.Tensors;
using Xunit;

namespace TinyOps.Engine.Tests.Kernels;

public class NnTests
{
    private static float[] Random(int n, int seed)
    {
        var r = new Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(r.NextDouble() * 2 - 1);
        return a;
    }

    private static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-4 + 1e-4 * Math.Abs(expected[i]), $"element {i}: expected {expected[i]}, got {actual[i]}");
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(true, true)]
    public void SGemmMatchesNaive(bool transA, bool transB)
    {
        int[][] sizes = [[1, 1, 1], [5, 37, 3], [9, 33, 300], [4, 16, 7], [13, 70, 513], [3, 1, 19]];
        foreach (var sz in sizes)
        {
            int m = sz[0], n = sz[1], k = sz[2];
            int lda = (transA ? m : k) + 2, ldb = (transB ? k : n) + 1, ldc = n + 3;
            var a = Random((transA ? k : m) * lda, 1);
            var b = Random((transB ? n : k) * ldb, 2);
            var c = Random(m * ldc, 3);
            var expected = (float[])c.Clone();
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                {
                    double s = 0;
                    for (int p = 0; p < k; p++)
                        s += (double)(transA ? a[p * lda + i] : a[i * lda + p]) * (transB ? b[j * ldb + p] : b[p * ldb + j]);
                    expected[i * ldc + j] = (float)(0.5 * s + 2.0 * c[i * ldc + j]);
                }
            SGemm.Multiply(transA, transB, m, n, k, 0.5f, a, lda, b, ldb, 2f, c, ldc);
            AssertClose(expected, c);
        }
    }

    private static Tensor RunSingle(string op, (string Name, Tensor Value)[] inputs, params AttributeValue[] attrs)
    {
        var node = new Node { OpType = op, Inputs = inputs.Select(i => i.Name).ToList(), Outputs = ["Y"] };
        foreach (var a in attrs) node.Attributes[a.Name] = a;
        var graph = new Graph
        {
            Nodes = [node],
            Inputs = inputs.Select(i => new ValueInfo(i.Name, i.Value.Type, i.Value.Shape.Select(d => Dim.Of(d)).ToArray())).ToList(),
            Outputs = [new ValueInfo("Y", DataType.Float32, null)],
        };
        var model = new Model { Graph = graph, Opsets = { [""] = 17 } };
        var session = new InferenceSession(model);
        var feeds = inputs.ToDictionary(i => i.Name, i => i.Value);
        return session.Run(feeds)["Y"];
    }

    /// <summary>Naive Conv on shapes lifted to 3-D; pads are begin pads, output sizes given.</summary>
    private static float[] NaiveConv(float[] x, float[] w, float[]? bias, int n, int c, int m, int group,
        int[] inS, int[] k, int[] outS, int[] stride, int[] dil, int[] pad)
    {
        int inSize = inS[0] * inS[1] * inS[2], outSize = outS[0] * outS[1] * outS[2], kvol = k[0] * k[1] * k[2];
        int cg = c / group, mg = m / group;
        var y = new float[n * m * outSize];
        for (int b = 0; b < n; b++)
            for (int oc = 0; oc < m; oc++)
            {
                int g = oc / mg;
                for (int od = 0; od < outS[0]; od++)
                    for (int oh = 0; oh < outS[1]; oh++)
                        for (int ow = 0; ow < outS[2]; ow++)
                        {
                            double s = bias?[oc] ?? 0;
                            for (int ic = 0; ic < cg; ic++)
                                for (int kd = 0; kd < k[0]; kd++)
                                    for (int kh = 0; kh < k[1]; kh++)
                                        for (int kw = 0; kw < k[2]; kw++)
                                        {
                                            int id = od * stride[0] - pad[0] + kd * dil[0];
                                            int ih = oh * stride[1] - pad[1] + kh * dil[1];
                                            int iw = ow * stride[2] - pad[2] + kw * dil[2];
                                            if (id < 0 || id >= inS[0] || ih < 0 || ih >= inS[1] || iw < 0 || iw >= inS[2]) continue;
                                            s += (double)x[(b * c + g * cg + ic) * inSize + (id * inS[1] + ih) * inS[2] + iw]
                                                * w[(oc * cg + ic) * kvol + (kd * k[1] + kh) * k[2] + kw];
                                        }
                            y[(b * m + oc) * outSize + (od * outS[1] + oh) * outS[2] + ow] = (float)s;
                        }
            }
        return y;
    }

    [Theory]
    // n, c, m, group, h, w, kh, kw, stride, dilation, pad
    [InlineData(1, 64, 8, 1, 64, 64, 3, 3, 1, 1, 1)]   // chunked im2col
    [InlineData(2, 6, 4, 2, 17, 13, 3, 2, 2, 2, 2)]
    [InlineData(1, 8, 16, 8, 15, 15, 3, 3, 2, 1, 1)]  // depthwise, multiplier 2, strided
    [InlineData(1, 8, 8, 8, 9, 9, 5, 5, 1, 2, 3)]     // depthwise dilated
    [InlineData(2, 16, 12, 1, 7, 9, 1, 1, 1, 1, 0)]   // pointwise direct
    [InlineData(1, 3, 5, 1, 10, 11, 1, 1, 2, 1, 0)]   // 1x1 strided
    public void Conv2dMatchesNaive(int n, int c, int m, int group, int h, int wd, int kh, int kw, int stride, int dil, int pad)
    {
        var x = Random(n * c * h * wd, 4);
        var w = Random(m * (c / group) * kh * kw, 5);
        var b = Random(m, 6);
        int oh = (h + 2 * pad - ((kh - 1) * dil + 1)) / stride + 1;
        int ow = (wd + 2 * pad - ((kw - 1) * dil + 1)) / stride + 1;
        var expected = NaiveConv(x, w, b, n, c, m, group, [1, h, wd], [1, kh, kw], [1, oh, ow], [1, stride, stride], [1, dil, dil], [0, pad, pad]);
        var y = RunSingle("Conv",
            [("X", Tensor.FromArray(x, n, c, h, wd)), ("W", Tensor.FromArray(w, m, c / group, kh, kw)), ("B", Tensor.FromArray(b, m))],
            AttributeValue.Of("group", (long)group), AttributeValue.Of("strides", new long[] { stride, stride }),
            AttributeValue.Of("dilations", new long[] { dil, dil }), AttributeValue.Of("pads", new long[] { pad, pad, pad, pad }));
        Assert.Equal(new[] { n, m, oh, ow }, y.Shape);
        AssertClose(expected, y.Span<float>());
    }

    [Fact]
    public void Conv3dAnd1dMatchNaive()
    {
        var x = Random(2 * 4 * 5 * 6 * 7, 7);
        var w = Random(6 * 2 * 2 * 3 * 2, 8);
        var expected = NaiveConv(x, w, null, 2, 4, 6, 2, [5, 6, 7], [2, 3, 2], [3, 6, 3], [2, 1, 2], [1, 1, 2], [1, 1, 0]);
        var y = RunSingle("Conv", [("X", Tensor.FromArray(x, 2, 4, 5, 6, 7)), ("W", Tensor.FromArray(w, 6, 2, 2, 3, 2))],
            AttributeValue.Of("group", 2L), AttributeValue.Of("strides", new long[] { 2, 1, 2 }),
            AttributeValue.Of("dilations", new long[] { 1, 1, 2 }), AttributeValue.Of("pads", new long[] { 1, 1, 0, 0, 1, 1 }));
        Assert.Equal(new[] { 2, 6, 3, 6, 3 }, y.Shape);
        AssertClose(expected, y.Span<float>());

        var x1 = Random(3 * 20, 9);
        var w1 = Random(2 * 3 * 4, 10);
        var e1 = NaiveConv(x1, w1, null, 1, 3, 2, 1, [1, 1, 20], [1, 1, 4], [1, 1, 7], [1, 1, 3], [1, 1, 1], [0, 0, 1]);
        var y1 = RunSingle("Conv", [("X", Tensor.FromArray(x1, 1, 3, 20)), ("W", Tensor.FromArray(w1, 2, 3, 4))],
            AttributeValue.Of("strides", new long[] { 3 }), AttributeValue.Of("auto_pad", "SAME_UPPER"));
        Assert.Equal(new[] { 1, 2, 7 }, y1.Shape);
        AssertClose(e1, y1.Span<float>());
    }

    [Theory]
    // c, m, group, h, w, k, stride, pad, outPad
    [InlineData(4, 6, 2, 5, 7, 3, 2, 1, 1)]
    [InlineData(32, 32, 1, 48, 48, 4, 2, 1, 0)]   // chunked col buffer
    [InlineData(3, 2, 1, 4, 4, 3, 3, 0, 2)]
    public void ConvTransposeMatchesNaive(int c, int m, int group, int h, int wd, int k, int stride, int pad, int outPad)
    {
        int n = 2;
        var x = Random(n * c * h * wd, 11);
        var w = Random(c * (m / group) * k * k, 12);
        var b = Random(m, 13);
        int oh = stride * (h - 1) + outPad + k - 2 * pad, ow = stride * (wd - 1) + outPad + k - 2 * pad;
        var expected = new double[n * m * oh * ow];
        int cg = c / group, mg = m / group;
        for (int bi = 0; bi < n; bi++)
            for (int ic = 0; ic < c; ic++)
            {
                int g = ic / cg;
                for (int om = 0; om < mg; om++)
                    for (int ih = 0; ih < h; ih++)
                        for (int iw = 0; iw < wd; iw++)
                            for (int kh = 0; kh < k; kh++)
                                for (int kw = 0; kw < k; kw++)
                                {
                                    int yh = ih * stride - pad + kh, yw = iw * stride - pad + kw;
                                    if (yh < 0 || yh >= oh || yw < 0 || yw >= ow) continue;
                                    expected[((bi * m + g * mg + om) * oh + yh) * ow + yw] +=
                                        (double)x[((bi * c + ic) * h + ih) * wd + iw] * w[((ic * mg + om) * k + kh) * k + kw];
                                }
            }
        for (int i = 0; i < expected.Length; i++) expected[i] += b[(i / (oh * ow)) % m];
        var y = RunSingle("ConvTranspose",
            [("X", Tensor.FromArray(x, n, c, h, wd)), ("W", Tensor.FromArray(w, c, m / group, k, k)), ("B", Tensor.FromArray(b, m))],
            AttributeValue.Of("group", (long)group), AttributeValue.Of("strides", new long[] { stride, stride }),
            AttributeValue.Of("pads", new long[] { pad, pad, pad, pad }), AttributeValue.Of("output_padding", new long[] { outPad, outPad }));
        Assert.Equal(new[] { n, m, oh, ow }, y.Shape);
        AssertClose(expected.Select(v => (float)v).ToArray(), y.Span<float>());
    }

    [Fact]
    public void MatMulBroadcastsBatches()
    {
        var a = Random(3 * 1 * 5 * 7, 14);
        var b = Random(4 * 7 * 6, 15);
        var y = RunSingle("MatMul", [("A", Tensor.FromArray(a, 3, 1, 5, 7)), ("B", Tensor.FromArray(b, 4, 7, 6))]);
        Assert.Equal(new[] { 3, 4, 5, 6 }, y.Shape);
        var expected = new float[3 * 4 * 5 * 6];
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 4; j++)
                for (int r = 0; r < 5; r++)
                    for (int q = 0; q < 6; q++)
                    {
                        double s = 0;
                        for (int p = 0; p < 7; p++) s += (double)a[(i * 5 + r) * 7 + p] * b[(j * 7 + p) * 6 + q];
                        expected[((i * 4 + j) * 5 + r) * 6 + q] = (float)s;
                    }
        AssertClose(expected, y.Span<float>());
    }
}
