using TinyOps.Engine.Ir;
using TinyOps.Engine.Runtime;
using TinyOps.Engine.Tensors;
using Xunit;

namespace TinyOps.Engine.Tests.Kernels;

public class RecurrentTests
{
    private const int T = 4, Bt = 3, I = 3, H = 2;
    private static readonly int[] Lens = [4, 1, 2];

    private static float[] Random(Random rng, int n, float scale = 0.8f)
    {
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(rng.NextDouble() * 2 - 1) * scale;
        return a;
    }

    private static double Sigmoid(double v) => 1 / (1 + Math.Exp(-v));

    /// <summary>Builds a one-node model whose inputs are all runtime graph inputs, runs it and returns the outputs.</summary>
    private static Dictionary<string, Tensor> RunNode(string op, int opset, Dictionary<string, AttributeValue> attrs,
        (string Name, Tensor? Value)[] inputs, string[] outputs)
    {
        var graph = new Graph { Name = "g" };
        var node = new Node { OpType = op, Name = "rnn", Attributes = attrs };
        var feeds = new Dictionary<string, Tensor>();
        foreach (var (name, value) in inputs)
        {
            node.Inputs.Add(value is null ? "" : name);
            if (value is null) continue;
            graph.Inputs.Add(new ValueInfo(name, value.Type, value.Shape.Select(d => Dim.Of(d)).ToArray()));
            feeds[name] = value;
        }
        foreach (var o in outputs)
        {
            node.Outputs.Add(o);
            if (o.Length > 0) graph.Outputs.Add(new ValueInfo(o, DataType.Float32, null));
        }
        graph.Nodes.Add(node);
        var model = new Model { Graph = graph, Opsets = { [""] = opset } };
        var session = new InferenceSession(model);
        return session.Run(feeds);
    }

    private static void AssertClose(double[] expected, Tensor actual, int[] shape)
    {
        Assert.Equal(shape, actual.Shape);
        var a = actual.ToArray<float>();
        Assert.Equal(expected.Length, a.Length);
        for (int i = 0; i < a.Length; i++)
            Assert.True(Math.Abs(a[i] - expected[i]) <= 1e-5 + 1e-4 * Math.Abs(expected[i]), $"element {i}: expected {expected[i]}, got {a[i]}");
    }

    // Layout helpers: the reference works in layout 0; batch-first tensors are transposed in and out.
    private static float[] ToBatchFirstX(float[] x)
    {
        var r = new float[x.Length];
        for (int t = 0; t < T; t++) for (int b = 0; b < Bt; b++) for (int k = 0; k < I; k++) r[(b * T + t) * I + k] = x[(t * Bt + b) * I + k];
        return r;
    }

    private static float[] ToBatchFirstState(float[] s, int d)
    {
        var r = new float[s.Length];
        for (int dir = 0; dir < d; dir++) for (int b = 0; b < Bt; b++) for (int j = 0; j < H; j++) r[(b * d + dir) * H + j] = s[(dir * Bt + b) * H + j];
        return r;
    }

    private static double[] ToBatchFirstState(double[] s, int d)
    {
        var r = new double[s.Length];
        for (int dir = 0; dir < d; dir++) for (int b = 0; b < Bt; b++) for (int j = 0; j < H; j++) r[(b * d + dir) * H + j] = s[(dir * Bt + b) * H + j];
        return r;
    }

    private static double[] ToBatchFirstY(double[] y, int d)
    {
        var r = new double[y.Length];
        for (int t = 0; t < T; t++) for (int dir = 0; dir < d; dir++) for (int b = 0; b < Bt; b++) for (int j = 0; j < H; j++)
            r[((b * T + t) * d + dir) * H + j] = y[((t * d + dir) * Bt + b) * H + j];
        return r;
    }

    /// <summary>out[n] = sum_k w[row0 + n, k] * v[k] for a [rows, k] matrix.</summary>
    private static double Dot(float[] w, int offset, int k, double[] v)
    {
        double s = 0;
        for (int i = 0; i < k; i++) s += w[offset + i] * v[i];
        return s;
    }

    private static (double[] Y, double[] Yh, double[] Yc) ReferenceLstm(float[] x, float[] w, float[] r, float[] bias,
        int[] lens, float[] h0, float[] c0, float[] p, int d)
    {
        var y = new double[T * d * Bt * H];
        var yh = new double[d * Bt * H];
        var yc = new double[d * Bt * H];
        for (int dir = 0; dir < d; dir++)
        {
            for (int b = 0; b < Bt; b++)
            {
                var h = new double[H];
                var c = new double[H];
                for (int j = 0; j < H; j++) { h[j] = h0[(dir * Bt + b) * H + j]; c[j] = c0[(dir * Bt + b) * H + j]; }
                for (int s = 0; s < lens[b]; s++)
                {
                    int t = dir == 1 ? lens[b] - 1 - s : s;
                    var xt = new double[I];
                    for (int k = 0; k < I; k++) xt[k] = x[(t * Bt + b) * I + k];
                    var pre = new double[4 * H];
                    for (int g = 0; g < 4 * H; g++)
                        pre[g] = Dot(w, (dir * 4 * H + g) * I, I, xt) + Dot(r, (dir * 4 * H + g) * H, H, h)
                            + bias[dir * 8 * H + g] + bias[dir * 8 * H + 4 * H + g];
                    var hn = new double[H];
                    for (int j = 0; j < H; j++)
                    {
                        double pi = p[dir * 3 * H + j], po = p[dir * 3 * H + H + j], pf = p[dir * 3 * H + 2 * H + j];
                        double ig = Sigmoid(pre[j] + pi * c[j]);
                        double fg = Sigmoid(pre[2 * H + j] + pf * c[j]);
                        double cg = Math.Tanh(pre[3 * H + j]);
                        c[j] = fg * c[j] + ig * cg;
                        double og = Sigmoid(pre[H + j] + po * c[j]);
                        hn[j] = og * Math.Tanh(c[j]);
                    }
                    h = hn;
                    for (int j = 0; j < H; j++) y[((t * d + dir) * Bt + b) * H + j] = h[j];
                }
                for (int j = 0; j < H; j++) { yh[(dir * Bt + b) * H + j] = h[j]; yc[(dir * Bt + b) * H + j] = c[j]; }
            }
        }
        return (y, yh, yc);
    }

    private static (double[] Y, double[] Yh) ReferenceGru(float[] x, float[] w, float[] r, float[] bias,
        int[] lens, float[] h0, int d, bool linearBeforeReset)
    {
        var y = new double[T * d * Bt * H];
        var yh = new double[d * Bt * H];
        for (int dir = 0; dir < d; dir++)
        {
            int wb = dir * 6 * H, rb = dir * 6 * H + 3 * H;
            for (int b = 0; b < Bt; b++)
            {
                var h = new double[H];
                for (int j = 0; j < H; j++) h[j] = h0[(dir * Bt + b) * H + j];
                for (int s = 0; s < lens[b]; s++)
                {
                    int t = dir == 1 ? lens[b] - 1 - s : s;
                    var xt = new double[I];
                    for (int k = 0; k < I; k++) xt[k] = x[(t * Bt + b) * I + k];
                    var z = new double[H];
                    var rg = new double[H];
                    for (int j = 0; j < H; j++)
                    {
                        int gz = dir * 3 * H + j, gr = dir * 3 * H + H + j;
                        z[j] = Sigmoid(Dot(w, gz * I, I, xt) + Dot(r, gz * H, H, h) + bias[wb + j] + bias[rb + j]);
                        rg[j] = Sigmoid(Dot(w, gr * I, I, xt) + Dot(r, gr * H, H, h) + bias[wb + H + j] + bias[rb + H + j]);
                    }
                    var rh = new double[H];
                    for (int j = 0; j < H; j++) rh[j] = rg[j] * h[j];
                    var hn = new double[H];
                    for (int j = 0; j < H; j++)
                    {
                        int gh = dir * 3 * H + 2 * H + j;
                        double xpart = Dot(w, gh * I, I, xt) + bias[wb + 2 * H + j];
                        double ht = linearBeforeReset
                            ? Math.Tanh(xpart + rg[j] * (Dot(r, gh * H, H, h) + bias[rb + 2 * H + j]))
                            : Math.Tanh(xpart + Dot(r, gh * H, H, rh) + bias[rb + 2 * H + j]);
                        hn[j] = (1 - z[j]) * ht + z[j] * h[j];
                    }
                    h = hn;
                    for (int j = 0; j < H; j++) y[((t * d + dir) * Bt + b) * H + j] = h[j];
                }
                for (int j = 0; j < H; j++) yh[(dir * Bt + b) * H + j] = h[j];
            }
        }
        return (y, yh);
    }

    [Theory]
    [InlineData(7, 0)]
    [InlineData(14, 0)]
    [InlineData(22, 1)]
    public void LstmBidirectionalWithSequenceLensMatchesReference(int opset, int layout)
    {
        const int d = 2;
        var rng = new Random(42);
        var x = Random(rng, T * Bt * I);
        var w = Random(rng, d * 4 * H * I);
        var r = Random(rng, d * 4 * H * H);
        var bias = Random(rng, d * 8 * H);
        var h0 = Random(rng, d * Bt * H);
        var c0 = Random(rng, d * Bt * H);
        var p = Random(rng, d * 3 * H);
        var (ey, eyh, eyc) = ReferenceLstm(x, w, r, bias, Lens, h0, c0, p, d);

        bool bf = layout == 1;
        var attrs = new Dictionary<string, AttributeValue>
        {
            ["direction"] = AttributeValue.Of("direction", "bidirectional"),
            ["hidden_size"] = AttributeValue.Of("hidden_size", (long)H),
        };
        if (bf) attrs["layout"] = AttributeValue.Of("layout", 1L);
        int[] stateShape = bf ? [Bt, d, H] : [d, Bt, H];
        var outs = RunNode("LSTM", opset, attrs,
        [
            ("X", bf ? Tensor.FromArray(ToBatchFirstX(x), Bt, T, I) : Tensor.FromArray(x, T, Bt, I)),
            ("W", Tensor.FromArray(w, d, 4 * H, I)),
            ("R", Tensor.FromArray(r, d, 4 * H, H)),
            ("B", Tensor.FromArray(bias, d, 8 * H)),
            ("seq", Tensor.FromArray(Lens, Bt)),
            ("h0", Tensor.FromArray(bf ? ToBatchFirstState(h0, d) : h0, stateShape)),
            ("c0", Tensor.FromArray(bf ? ToBatchFirstState(c0, d) : c0, stateShape)),
            ("P", Tensor.FromArray(p, d, 3 * H)),
        ], ["Y", "Y_h", "Y_c"]);

        AssertClose(bf ? ToBatchFirstY(ey, d) : ey, outs["Y"], bf ? [Bt, T, d, H] : [T, d, Bt, H]);
        AssertClose(bf ? ToBatchFirstState(eyh, d) : eyh, outs["Y_h"], stateShape);
        AssertClose(bf ? ToBatchFirstState(eyc, d) : eyc, outs["Y_c"], stateShape);
    }

    [Theory]
    [InlineData(7, 0, 0)]
    [InlineData(7, 0, 1)]
    [InlineData(14, 1, 0)]
    [InlineData(22, 1, 1)]
    public void GruBidirectionalWithSequenceLensMatchesReference(int opset, int layout, int linearBeforeReset)
    {
        const int d = 2;
        var rng = new Random(7);
        var x = Random(rng, T * Bt * I);
        var w = Random(rng, d * 3 * H * I);
        var r = Random(rng, d * 3 * H * H);
        var bias = Random(rng, d * 6 * H);
        var h0 = Random(rng, d * Bt * H);
        var (ey, eyh) = ReferenceGru(x, w, r, bias, Lens, h0, d, linearBeforeReset == 1);

        bool bf = layout == 1;
        var attrs = new Dictionary<string, AttributeValue>
        {
            ["direction"] = AttributeValue.Of("direction", "bidirectional"),
            ["hidden_size"] = AttributeValue.Of("hidden_size", (long)H),
            ["linear_before_reset"] = AttributeValue.Of("linear_before_reset", (long)linearBeforeReset),
        };
        if (bf) attrs["layout"] = AttributeValue.Of("layout", 1L);
        int[] stateShape = bf ? [Bt, d, H] : [d, Bt, H];
        var outs = RunNode("GRU", opset, attrs,
        [
            ("X", bf ? Tensor.FromArray(ToBatchFirstX(x), Bt, T, I) : Tensor.FromArray(x, T, Bt, I)),
            ("W", Tensor.FromArray(w, d, 3 * H, I)),
            ("R", Tensor.FromArray(r, d, 3 * H, H)),
            ("B", Tensor.FromArray(bias, d, 6 * H)),
            ("seq", Tensor.FromArray(Lens, Bt)),
            ("h0", Tensor.FromArray(bf ? ToBatchFirstState(h0, d) : h0, stateShape)),
        ], ["Y", "Y_h"]);

        AssertClose(bf ? ToBatchFirstY(ey, d) : ey, outs["Y"], bf ? [Bt, T, d, H] : [T, d, Bt, H]);
        AssertClose(bf ? ToBatchFirstState(eyh, d) : eyh, outs["Y_h"], stateShape);
    }

    [Fact]
    public void GruWithoutOptionalInputsOnlyYh()
    {
        // Forward GRU with no B, sequence_lens or initial_h, and only Y_h requested: equals the reference with zeros.
        var rng = new Random(3);
        var x = Random(rng, T * Bt * I);
        var w = Random(rng, 3 * H * I);
        var r = Random(rng, 3 * H * H);
        var (_, eyh) = ReferenceGru(x, w, r, new float[6 * H], [T, T, T], new float[Bt * H], 1, false);
        var attrs = new Dictionary<string, AttributeValue> { ["hidden_size"] = AttributeValue.Of("hidden_size", (long)H) };
        var outs = RunNode("GRU", 14, attrs,
        [
            ("X", Tensor.FromArray(x, T, Bt, I)),
            ("W", Tensor.FromArray(w, 1, 3 * H, I)),
            ("R", Tensor.FromArray(r, 1, 3 * H, H)),
        ], ["", "Y_h"]);
        AssertClose(eyh, outs["Y_h"], [1, Bt, H]);
    }

    [Fact]
    public void LstmRejectsBadWeightShape()
    {
        var attrs = new Dictionary<string, AttributeValue> { ["hidden_size"] = AttributeValue.Of("hidden_size", (long)H) };
        var ex = Assert.ThrowsAny<Exception>(() => RunNode("LSTM", 14, attrs,
        [
            ("X", Tensor.Zeros(DataType.Float32, T, Bt, I)),
            ("W", Tensor.Zeros(DataType.Float32, 1, 3 * H, I)),
            ("R", Tensor.Zeros(DataType.Float32, 1, 4 * H, H)),
        ], ["Y"]));
        Assert.Contains("W has shape", ex.Message);
    }
}
