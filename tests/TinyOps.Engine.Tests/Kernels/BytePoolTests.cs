using TinyOps.Engine.Ir;
using TinyOps.Engine.Kernels.Pooling;
using TinyOps.Engine.Runtime;
using TinyOps.Engine.Tensors;
using Xunit;

namespace TinyOps.Engine.Tests.Kernels;

[CollectionDefinition("BytePoolSwitch", DisableParallelization = true)]
public class BytePoolSwitchCollection { }

/// <summary>
/// The uint8/int8 MaxPool fast path (<see cref="MaxPool2dBytes"/>, every forced path) against the per-window
/// reference loop, bit for bit, on the CNN shapes and on random geometries with padding, strides, dilations and
/// ceil mode. Tests that set <see cref="MaxPool2dBytes.Forced"/> run one at a time.
/// </summary>
[Collection("BytePoolSwitch")]
public class BytePoolTests
{
    private static readonly BytePoolPath[] Paths = [BytePoolPath.Auto, BytePoolPath.Vector512, BytePoolPath.Vector128, BytePoolPath.Scalar];

    private static Graph PoolGraph(DataType type, int[] xShape, long[] k, long[] s, long[] d, long[] pads, int ceil) => new()
    {
        Nodes =
        [
            new Node
            {
                OpType = "MaxPool",
                Inputs = ["X"],
                Outputs = ["Y"],
                Attributes =
                {
                    ["kernel_shape"] = AttributeValue.Of("kernel_shape", k),
                    ["strides"] = AttributeValue.Of("strides", s),
                    ["dilations"] = AttributeValue.Of("dilations", d),
                    ["pads"] = AttributeValue.Of("pads", pads),
                    ["ceil_mode"] = AttributeValue.Of("ceil_mode", (long)ceil),
                },
            },
        ],
        Inputs = [new ValueInfo("X", type, xShape.Select(v => Dim.Of(v)).ToArray())],
        Outputs = [new ValueInfo("Y", type, null)],
    };

    private static byte[] Run(Graph graph, Tensor x)
    {
        var model = new Model { Graph = graph, Opsets = { [""] = 12 } };
        var session = new InferenceSession(model);
        var y = session.Run(new Dictionary<string, Tensor> { ["X"] = x })["Y"];
        return y.Type == DataType.UInt8 ? y.ToArray<byte>() : y.ToArray<sbyte>().Select(v => (byte)v).ToArray();
    }

    private static Tensor Input(DataType type, int[] shape, Random r)
    {
        int n = shape.Aggregate(1, (a, b) => a * b);
        var b = new byte[n];
        r.NextBytes(b);
        // some runs of the extremes (the minimum is also the padding value)
        for (int i = 0; i < n; i += 1 + r.Next(7)) b[i] = r.Next(2) == 0 ? (byte)0 : (byte)255;
        for (int i = 0; i < n; i += 1 + r.Next(11)) b[i] = 128;
        return type == DataType.UInt8 ? Tensor.FromArray(b, shape) : Tensor.FromArray(b.Select(v => (sbyte)v).ToArray(), shape);
    }

    private static void Check(DataType type, int[] xShape, long[] k, long[] s, long[] d, long[] pads, int ceil, int seed)
    {
        var graph = PoolGraph(type, xShape, k, s, d, pads, ceil);
        var x = Input(type, xShape, new Random(seed));
        byte[] expected;
        try
        {
            MaxPool2dBytes.Forced = BytePoolPath.Reference;
            expected = Run(graph, x);
        }
        finally { MaxPool2dBytes.Forced = BytePoolPath.Auto; }
        foreach (var path in Paths)
        {
            try
            {
                MaxPool2dBytes.Forced = path;
                var y = Run(graph, x);
                Assert.Equal(expected.Length, y.Length);
                for (int i = 0; i < y.Length; i++)
                    Assert.True(expected[i] == y[i],
                        $"{type.OnnxName()} {string.Join("x", xShape)} k={string.Join(",", k)} s={string.Join(",", s)} d={string.Join(",", d)} pads={string.Join(",", pads)} ceil={ceil} path={path} element {i}: expected {expected[i]}, got {y[i]}");
            }
            finally { MaxPool2dBytes.Forced = BytePoolPath.Auto; }
        }
    }

    [Theory]
    [InlineData(1, 8, 28, 28, 2, 2, 1, 0, 0)]    // the Fashion-MNIST CNN's pools
    [InlineData(1, 16, 14, 14, 2, 2, 1, 0, 0)]
    [InlineData(2, 3, 29, 31, 2, 2, 1, 0, 0)]    // odd sizes: last row and column dropped
    [InlineData(1, 5, 6, 6, 2, 2, 1, 0, 0)]      // exact 2x2: rows of 3, fewer pairs than a vector
    [InlineData(1, 3, 18, 18, 2, 2, 1, 0, 0)]    // rows of 9
    [InlineData(1, 2, 40, 40, 2, 2, 1, 0, 0)]    // rows of 20
    [InlineData(2, 3, 64, 130, 2, 2, 1, 0, 0)]   // rows of 65
    [InlineData(1, 3, 14, 14, 2, 2, 1, 0, 1)]    // ceil mode on even sizes: still exact
    [InlineData(3, 7, 22, 42, 2, 2, 1, 0, 0)]    // rows of 21: three to a permute step
    [InlineData(1, 9, 26, 128, 2, 2, 1, 0, 0)]   // rows of 64: one to a permute step
    [InlineData(1, 40, 2, 2, 2, 2, 1, 0, 0)]     // rows of 1: 64 to a permute step
    [InlineData(1, 3, 112, 112, 3, 2, 1, 1, 0)]  // ResNet stem
    [InlineData(1, 2, 111, 111, 3, 2, 1, 0, 1)]  // SqueezeNet, ceil mode
    [InlineData(1, 3, 27, 27, 3, 2, 1, 0, 1)]
    [InlineData(1, 2, 30, 70, 4, 2, 1, 1, 0)]
    [InlineData(1, 2, 13, 17, 3, 1, 1, 1, 0)]    // stride 1
    [InlineData(1, 2, 40, 90, 5, 1, 2, 2, 0)]    // stride 1, dilated, rows longer than a vector
    [InlineData(1, 1, 20, 9, 2, 3, 2, 1, 1)]
    [InlineData(1, 2, 9, 40, 1, 1, 3, 0, 0)]
    [InlineData(1, 2, 5, 5, 2, 2, 1, 1, 1)]      // tiny planes: rows shorter than any vector
    public void SquareWindowsMatchReference(int n, int c, int h, int w, int k, int s, int d, int pad, int ceil)
    {
        foreach (var type in new[] { DataType.UInt8, DataType.Int8 })
            Check(type, [n, c, h, w], [k, k], [s, s], [d, d], [pad, pad, pad, pad], ceil, h * 31 + w);
    }

    [Fact]
    public void RandomGeometriesMatchReference()
    {
        var r = new Random(12345);
        int done = 0;
        while (done < 160)
        {
            int k1 = 1 + r.Next(5), k2 = 1 + r.Next(5);
            int s1 = 1 + r.Next(3), s2 = r.Next(3) == 0 ? 2 : 1 + r.Next(3);
            int d1 = 1 + r.Next(2), d2 = r.Next(3) == 0 ? 2 : 1;
            long[] pads = [r.Next(k1), r.Next(k2), r.Next(k1), r.Next(k2)];
            int h = 1 + r.Next(40), w = 1 + r.Next(70), c = 1 + r.Next(4);
            int ceil = r.Next(2);
            if (h + pads[0] + pads[2] < (k1 - 1) * d1 + 1 || w + pads[1] + pads[3] < (k2 - 1) * d2 + 1) continue;
            var type = r.Next(2) == 0 ? DataType.UInt8 : DataType.Int8;
            Check(type, [1, c, h, w], [k1, k2], [s1, s2], [d1, d2], pads, ceil, done);
            done++;
        }
    }

    [Fact]
    public void OneDimensionalPoolMatchesReference()
    {
        Check(DataType.UInt8, [2, 3, 50], [3], [2], [1], [1, 1], 1, 7);
        Check(DataType.Int8, [1, 4, 33], [2], [1], [2], [0, 1], 0, 8);
    }
}
