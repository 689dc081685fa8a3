using TinyOps.Engine.Ir;
using TinyOps.Engine.Runtime;
using TinyOps.Engine.Tensors;
using Xunit;

namespace TinyOps.Engine.Tests.Kernels;

public class QuantizedTests
{
    private static Tensor RunOne(string op, int opset, (string Name, Tensor? Value)[] inputs, Dictionary<string, AttributeValue>? attrs = null, int outputs = 1, int outputIndex = 0)
    {
        var node = new Node { OpType = op, Inputs = inputs.Select(i => i.Value is null ? "" : i.Name).ToList(), Outputs = Enumerable.Range(0, outputs).Select(i => "y" + i).ToList(), Attributes = attrs ?? [] };
        var g = new Graph { Nodes = [node] };
        foreach (var (name, v) in inputs)
            if (v is not null) g.Inputs.Add(new ValueInfo(name, v.Type, v.Shape.Select(d => Dim.Of(d)).ToArray()));
        for (int i = 0; i < outputs; i++) g.Outputs.Add(new ValueInfo("y" + i, DataType.Undefined, null));
        var model = new Model { Graph = g, Opsets = { [""] = opset } };
        var session = new InferenceSession(model);
        var feed = inputs.Where(i => i.Value is not null).ToDictionary(i => i.Name, i => i.Value!);
        return session.Run(feed)["y" + outputIndex];
    }

    private static Dictionary<string, AttributeValue> Attrs(params AttributeValue[] a) => a.ToDictionary(x => x.Name);

    [Fact]
    public void QuantizeRoundsHalfToEvenAndSaturates()
    {
        var x = Tensor.FromArray(new float[] { 0.5f, 1.5f, 2.5f, -0.5f, -1.5f, 1000f, -1000f, 3.49f }, 8);
        var y = RunOne("QuantizeLinear", 13, [("x", x), ("s", Tensor.Scalar(1f)), ("z", Tensor.Scalar((byte)10))]);
        Assert.Equal(new byte[] { 10, 12, 12, 10, 8, 255, 0, 13 }, y.ToArray<byte>());
        var y8 = RunOne("QuantizeLinear", 13, [("x", x), ("s", Tensor.Scalar(1f)), ("z", Tensor.Scalar((sbyte)-1))]);
        Assert.Equal(new sbyte[] { -1, 1, 1, -1, -3, 127, -128, 2 }, y8.ToArray<sbyte>());
        // no zero point: uint8 output
        var yu = RunOne("QuantizeLinear", 10, [("x", x), ("s", Tensor.Scalar(2f)), ("z", null)]);
        Assert.Equal(DataType.UInt8, yu.Type);
        Assert.Equal(new byte[] { 0, 1, 1, 0, 0, 255, 0, 2 }, yu.ToArray<byte>());
        // output_dtype int8 without zero point (opset 21)
        var yo = RunOne("QuantizeLinear", 21, [("x", x), ("s", Tensor.Scalar(1f)), ("z", null)], Attrs(AttributeValue.Of("output_dtype", (long)DataType.Int8)));
        Assert.Equal(new sbyte[] { 0, 2, 2, 0, -2, 127, -128, 3 }, yo.ToArray<sbyte>());
        // int32 input
        var yi = RunOne("QuantizeLinear", 13, [("x", Tensor.FromArray(new[] { 3, -3, 5 }, 3)), ("s", Tensor.Scalar(2f)), ("z", Tensor.Scalar((sbyte)0))]);
        Assert.Equal(new sbyte[] { 2, -2, 2 }, yi.ToArray<sbyte>());
    }

    [Fact]
    public void QuantizePerAxisNegativeAxisAndBlocked()
    {
        var x = Tensor.FromArray(Enumerable.Range(0, 12).Select(i => (float)i).ToArray(), 2, 2, 3);
        var s = Tensor.FromArray(new[] { 1f, 2f, 4f }, 3);
        var z = Tensor.FromArray(new byte[] { 0, 1, 2 }, 3);
        var y = RunOne("QuantizeLinear", 13, [("x", x), ("s", s), ("z", z)], Attrs(AttributeValue.Of("axis", -1L)));
        var expect = new byte[12];
        for (int i = 0; i < 12; i++) expect[i] = (byte)(Math.Round(i / s.ToArray<float>()[i % 3], MidpointRounding.ToEven) + i % 3);
        Assert.Equal(expect, y.ToArray<byte>());
        // blocked along axis 2 with block 2: scale shape [2,2,2]
        var bs = Tensor.FromArray(new[] { 1f, 2f, 3f, 4f, 5f, 6f, 7f, 8f }, 2, 2, 2);
        var yb = RunOne("QuantizeLinear", 21, [("x", x), ("s", bs), ("z", null)], Attrs(AttributeValue.Of("axis", 2L), AttributeValue.Of("block_size", 2L)));
        var eb = new byte[12];
        for (int i = 0; i < 12; i++) { int row = i / 3, c = i % 3; eb[i] = (byte)Math.Round(i / (float)(row * 2 + c / 2 + 1), MidpointRounding.ToEven); }
        Assert.Equal(eb, yb.ToArray<byte>());
        var d = RunOne("DequantizeLinear", 21, [("x", yb), ("s", bs)], Attrs(AttributeValue.Of("axis", 2L), AttributeValue.Of("block_size", 2L)));
        for (int i = 0; i < 12; i++) { int row = i / 3, c = i % 3; Assert.Equal(eb[i] * (float)(row * 2 + c / 2 + 1), d.ToArray<float>()[i]); }
    }

    [Fact]
    public void DequantizeTypes()
    {
        var d = RunOne("DequantizeLinear", 13, [("x", Tensor.FromArray(new sbyte[] { -128, 0, 127 }, 3)), ("s", Tensor.Scalar(0.5f)), ("z", Tensor.Scalar((sbyte)-1))]);
        Assert.Equal(new[] { -63.5f, 0.5f, 64f }, d.ToArray<float>());
        var di = RunOne("DequantizeLinear", 10, [("x", Tensor.FromArray(new[] { -1000, 0, 1000 }, 3)), ("s", Tensor.Scalar(0.25f))]);
        Assert.Equal(new[] { -250f, 0f, 250f }, di.ToArray<float>());
        var da = RunOne("DequantizeLinear", 13, [("x", Tensor.FromArray(new byte[] { 1, 2, 3, 4, 5, 6 }, 3, 2)), ("s", Tensor.FromArray(new[] { 1f, 10f, 100f }, 3)), ("z", Tensor.FromArray(new byte[] { 1, 1, 1 }, 3))], Attrs(AttributeValue.Of("axis", 0L)));
        Assert.Equal(new[] { 0f, 1f, 20f, 30f, 400f, 500f }, da.ToArray<float>());
    }

    [Fact]
    public void DynamicQuantizeLinear()
    {
        var x = Tensor.FromArray(new[] { 1f, 2f, 3f, 4f }, 4); // range [0, 4]
        var y = RunOne("DynamicQuantizeLinear", 11, [("x", x)], outputs: 3);
        float scale = 4f / 255f;
        Assert.Equal(new[] { (byte)Math.Round(1f / scale), (byte)Math.Round(2f / scale), (byte)Math.Round(3f / scale), (byte)255 }, y.ToArray<byte>());
        var s = RunOne("DynamicQuantizeLinear", 11, [("x", x)], outputs: 3, outputIndex: 1);
        Assert.Equal(scale, s.ToArray<float>()[0]);
        var zero = RunOne("DynamicQuantizeLinear", 11, [("x", Tensor.FromArray(new[] { 0f, 0f }, 2))], outputs: 3, outputIndex: 2);
        Assert.Equal((byte)0, zero.ToArray<byte>()[0]);
    }

    private static T[] Random<T>(Random r, int n) where T : unmanaged
    {
        var a = new T[n];
        for (int i = 0; i < n; i++)
            a[i] = typeof(T) == typeof(byte) ? (T)(object)(byte)r.Next(256) : (T)(object)(sbyte)r.Next(-128, 128);
        return a;
    }

    private static int I<T>(T v) => v switch { byte b => b, sbyte s => s, _ => throw new InvalidOperationException() };

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(true, true)]
    public void MatMulIntegerBatchedBroadcastWithRowAndColumnZeroPoints(bool aSigned, bool bSigned)
    {
        if (aSigned && bSigned) CheckMatMulInteger<sbyte, sbyte>();
        else if (aSigned) CheckMatMulInteger<sbyte, byte>();
        else if (bSigned) CheckMatMulInteger<byte, sbyte>();
        else CheckMatMulInteger<byte, byte>();
    }

    private static void CheckMatMulInteger<TA, TB>() where TA : unmanaged where TB : unmanaged
    {
        var r = new Random(1);
        int m = 3, k = 5, n = 4;
        var a = Random<TA>(r, 2 * 1 * m * k);   // [2,1,M,K]
        var b = Random<TB>(r, 3 * k * n);       // [3,K,N]
        var az = Random<TA>(r, m);
        var bz = Random<TB>(r, n);
        var y = RunOne("MatMulInteger", 10, [("a", Tensor.FromArray(a, 2, 1, m, k)), ("b", Tensor.FromArray(b, 3, k, n)), ("az", Tensor.FromArray(az, m)), ("bz", Tensor.FromArray(bz, n))]);
        Assert.Equal(new[] { 2, 3, m, n }, y.Shape);
        var got = y.ToArray<int>();
        for (int i0 = 0; i0 < 2; i0++)
            for (int i1 = 0; i1 < 3; i1++)
                for (int i = 0; i < m; i++)
                    for (int j = 0; j < n; j++)
                    {
                        int acc = 0;
                        for (int p = 0; p < k; p++) acc += (I(a[(i0 * m + i) * k + p]) - I(az[i])) * (I(b[(i1 * k + p) * n + j]) - I(bz[j]));
                        Assert.Equal(acc, got[((i0 * 3 + i1) * m + i) * n + j]);
                    }
        // 1-D a with scalar zero point, no b zero point
        var y1 = RunOne("MatMulInteger", 10, [("a", Tensor.FromArray(a[..k], k)), ("b", Tensor.FromArray(b[..(k * n)], k, n)), ("az", Tensor.FromArray(az[..1], 1)), ("bz", null)]);
        Assert.Equal(new[] { n }, y1.Shape);
        for (int j = 0; j < n; j++)
        {
            int acc = 0;
            for (int p = 0; p < k; p++) acc += (I(a[p]) - I(az[0])) * I(b[p * n + j]);
            Assert.Equal(acc, y1.ToArray<int>()[j]);
        }
    }

    [Fact]
    public void QLinearMatMulPerColumn()
    {
        var r = new Random(2);
        int m = 2, k = 3, n = 4;
        var a = Random<byte>(r, m * k);
        var b = Random<sbyte>(r, k * n);
        var bs = new[] { 0.01f, 0.02f, 0.03f, 0.04f };
        var bz = Random<sbyte>(r, n);
        var y = RunOne("QLinearMatMul", 10, [("a", Tensor.FromArray(a, m, k)), ("as", Tensor.Scalar(0.1f)), ("az", Tensor.Scalar((byte)128)),
            ("b", Tensor.FromArray(b, k, n)), ("bs", Tensor.FromArray(bs, n)), ("bz", Tensor.FromArray(bz, n)), ("ys", Tensor.Scalar(0.05f)), ("yz", Tensor.Scalar((sbyte)3))]);
        var got = y.ToArray<sbyte>();
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                int acc = 0;
                for (int p = 0; p < k; p++) acc += (a[i * k + p] - 128) * (b[p * n + j] - bz[j]);
                double v = Math.Round(acc * (double)(0.1f * bs[j] / 0.05f) + 3, MidpointRounding.ToEven);
                Assert.Equal((sbyte)Math.Clamp(v, -128, 127), got[i * n + j]);
            }
    }

    /// <summary>Naive 2-D integer conv reference.</summary>
    private static int[] NaiveConv<TX, TW>(TX[] x, int[] xs, TW[] w, int[] ws, int xz, int[] wz, int group, int[] strides, int[] dil, int[] padsBegin, int oh, int ow)
    {
        int nb = xs[0], c = xs[1], h = xs[2], wd = xs[3], mo = ws[0], cg = ws[1], kh = ws[2], kw = ws[3];
        int mg = mo / group;
        var y = new int[nb * mo * oh * ow];
        for (int b = 0; b < nb; b++)
            for (int m = 0; m < mo; m++)
            {
                int g = m / mg;
                for (int i = 0; i < oh; i++)
                    for (int j = 0; j < ow; j++)
                    {
                        int acc = 0;
                        for (int cc = 0; cc < cg; cc++)
                            for (int a = 0; a < kh; a++)
                                for (int e = 0; e < kw; e++)
                                {
                                    int ih = i * strides[0] - padsBegin[0] + a * dil[0], iw = j * strides[1] - padsBegin[1] + e * dil[1];
                                    if (ih < 0 || ih >= h || iw < 0 || iw >= wd) continue;
                                    int xv = I(x[((b * c + g * cg + cc) * h + ih) * wd + iw]) - xz;
                                    int wv = I(w[((m * cg + cc) * kh + a) * kw + e]) - wz[wz.Length == 1 ? 0 : m];
                                    acc += xv * wv;
                                }
                        y[((b * mo + m) * oh + i) * ow + j] = acc;
                    }
            }
        return y;
    }

    [Theory]
    [InlineData(1, 1, 1, 0, "NOTSET")]
    [InlineData(2, 2, 1, 1, "NOTSET")]
    [InlineData(1, 1, 2, 2, "NOTSET")]
    [InlineData(4, 2, 1, 0, "SAME_UPPER")]
    [InlineData(2, 1, 2, 0, "SAME_LOWER")]
    [InlineData(1, 3, 1, 0, "VALID")]
    public void ConvIntegerAndQLinearConvMatchNaive(int group, int stride, int dilation, int pad, string autoPad)
    {
        var r = new Random(group * 100 + stride * 10 + dilation + pad);
        int nb = 2, c = 4, h = 7, wd = 6, mo = 4, k = 3;
        int[] xs = [nb, c, h, wd], ws = [mo, c / group, k, k];
        var x = Random<byte>(r, nb * c * h * wd);
        var w = Random<sbyte>(r, mo * (c / group) * k * k);
        var wz = Random<sbyte>(r, mo);
        byte xz = 7;
        var attrs = Attrs(AttributeValue.Of("group", (long)group), AttributeValue.Of("strides", new long[] { stride, stride }),
            AttributeValue.Of("dilations", new long[] { dilation, dilation }), AttributeValue.Of("auto_pad", autoPad));
        if (autoPad == "NOTSET") attrs["pads"] = AttributeValue.Of("pads", new long[] { pad, pad, pad, pad });
        int ek = (k - 1) * dilation + 1;
        int oh, ow, pb0, pb1;
        if (autoPad.StartsWith("SAME"))
        {
            oh = (h + stride - 1) / stride; ow = (wd + stride - 1) / stride;
            int t0 = Math.Max(0, (oh - 1) * stride + ek - h), t1 = Math.Max(0, (ow - 1) * stride + ek - wd);
            pb0 = autoPad == "SAME_UPPER" ? t0 / 2 : t0 - t0 / 2; pb1 = autoPad == "SAME_UPPER" ? t1 / 2 : t1 - t1 / 2;
        }
        else
        {
            int p = autoPad == "VALID" ? 0 : pad;
            oh = (h + 2 * p - ek) / stride + 1; ow = (wd + 2 * p - ek) / stride + 1; pb0 = pb1 = p;
        }
        var expect = NaiveConv(x, xs, w, ws, xz, wz.Select(v => (int)v).ToArray(), group, [stride, stride], [dilation, dilation], [pb0, pb1], oh, ow);
        var y = RunOne("ConvInteger", 10, [("x", Tensor.FromArray(x, xs)), ("w", Tensor.FromArray(w, ws)), ("xz", Tensor.Scalar(xz)), ("wz", Tensor.FromArray(wz, mo))], attrs);
        Assert.Equal(new[] { nb, mo, oh, ow }, y.Shape);
        Assert.Equal(expect, y.ToArray<int>());

        var wsc = new[] { 0.01f, 0.02f, 0.005f, 0.03f };
        var bias = new[] { 100, -200, 300, 0 };
        var q = RunOne("QLinearConv", 10, [("x", Tensor.FromArray(x, xs)), ("xs", Tensor.Scalar(0.05f)), ("xz", Tensor.Scalar(xz)), ("w", Tensor.FromArray(w, ws)),
            ("wsc", Tensor.FromArray(wsc, mo)), ("wz", Tensor.FromArray(wz, mo)), ("ys", Tensor.Scalar(0.5f)), ("yz", Tensor.Scalar((byte)100)), ("b", Tensor.FromArray(bias, mo))], attrs);
        var got = q.ToArray<byte>();
        int plane = oh * ow;
        for (int i = 0; i < expect.Length; i++)
        {
            int m = i / plane % mo;
            double v = Math.Round((expect[i] + bias[m]) * (double)(0.05f * wsc[m] / 0.5f) + 100, MidpointRounding.ToEven);
            Assert.Equal((byte)Math.Clamp(v, 0, 255), got[i]);
        }
    }

    [Fact]
    public void ConvInteger1DAnd3D()
    {
        // 1-D: x [1,1,5], w [1,1,2], pads 1
        var y = RunOne("ConvInteger", 10, [("x", Tensor.FromArray(new byte[] { 1, 2, 3, 4, 5 }, 1, 1, 5)), ("w", Tensor.FromArray(new byte[] { 1, 2 }, 1, 1, 2)), ("xz", Tensor.Scalar((byte)1))],
            Attrs(AttributeValue.Of("pads", new long[] { 1, 1 })));
        Assert.Equal(new[] { 0, 2, 5, 8, 11, 4 }, y.ToArray<int>());
        // 3-D 1x1x1 kernel pointwise equals a per-position dot product
        var x = Tensor.FromArray(Enumerable.Range(0, 16).Select(i => (sbyte)(i - 8)).ToArray(), 1, 2, 2, 2, 2);
        var y3 = RunOne("ConvInteger", 10, [("x", x), ("w", Tensor.FromArray(new sbyte[] { 2, -1 }, 1, 2, 1, 1, 1))]);
        for (int i = 0; i < 8; i++) Assert.Equal(2 * (i - 8) - (i + 8 - 8), y3.ToArray<int>()[i]);
    }

    [Fact]
    public void RunDoesNotAllocate()
    {
        var r = new Random(5);
        var cases = new (string Op, int Opset, (string, Tensor?)[] Inputs, Dictionary<string, AttributeValue>? Attrs)[]
        {
            ("QLinearConv", 10, [("x", Tensor.FromArray(Random<byte>(r, 2 * 4 * 6 * 6), 2, 4, 6, 6)), ("xs", Tensor.Scalar(0.05f)), ("xz", Tensor.Scalar((byte)3)),
                ("w", Tensor.FromArray(Random<sbyte>(r, 4 * 2 * 9), 4, 2, 3, 3)), ("wsc", Tensor.FromArray(new[] { 0.1f, 0.2f, 0.3f, 0.4f }, 4)), ("wz", Tensor.FromArray(new sbyte[4], 4)),
                ("ys", Tensor.Scalar(0.5f)), ("yz", Tensor.Scalar((byte)1))], Attrs(AttributeValue.Of("group", 2L), AttributeValue.Of("pads", new long[] { 1, 1, 1, 1 }))),
            ("MatMulInteger", 10, [("a", Tensor.FromArray(Random<byte>(r, 2 * 3 * 4), 2, 3, 4)), ("b", Tensor.FromArray(Random<sbyte>(r, 4 * 5), 4, 5)),
                ("az", Tensor.FromArray(Random<byte>(r, 3), 3)), ("bz", Tensor.FromArray(Random<sbyte>(r, 5), 5))], null),
            ("QuantizeLinear", 13, [("x", Tensor.FromArray(new float[24], 2, 3, 4)), ("s", Tensor.FromArray(new[] { 1f, 2f, 3f }, 3)), ("z", Tensor.FromArray(new sbyte[3], 3))], null),
            ("DequantizeLinear", 13, [("x", Tensor.FromArray(new sbyte[24], 2, 3, 4)), ("s", Tensor.FromArray(new[] { 1f, 2f, 3f }, 3)), ("z", Tensor.FromArray(new sbyte[3], 3))], null),
            ("DynamicQuantizeLinear", 11, [("x", Tensor.FromArray(new float[] { 1, -2, 3 }, 3))], null),
        };
        foreach (var (op, opset, inputs, attrs) in cases)
        {
            var node = new Node { OpType = op, Inputs = inputs.Select(i => i.Item1).ToList(), Outputs = ["y"], Attributes = attrs ?? [] };
            var g = new Graph { Nodes = [node] };
            foreach (var (name, v) in inputs) g.Inputs.Add(new ValueInfo(name, v!.Type, v.Shape.Select(d => Dim.Of(d)).ToArray()));
            g.Outputs.Add(new ValueInfo("y", DataType.Undefined, null));
            var session = new InferenceSession(new Model { Graph = g, Opsets = { [""] = opset } });
            var ins = inputs.Select(i => i.Item2!).ToArray();
            var outs = new Tensor[1];
            session.Run(ins, outs);
            session.Run(ins, outs);
            long before = GC.GetAllocatedBytesForCurrentThread();
            session.Run(ins, outs);
            long after = GC.GetAllocatedBytesForCurrentThread();
            Assert.True(after == before, $"{op} allocated {after - before} bytes");
        }
    }
}
