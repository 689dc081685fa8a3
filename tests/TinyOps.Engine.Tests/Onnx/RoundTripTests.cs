using TinyOps.Engine.Onnx;
using TinyOps.Engine.Runtime;
using TinyOps.Engine.Tensors;
using Xunit;

namespace TinyOps.Engine.Tests.Onnx;

public sealed class RoundTripTests
{
    [Theory]
    [InlineData("fmnist_cnn.onnx")]
    [InlineData("fmnist_mlp.onnx")]
    public void WrittenModelLoadsAndComputesTheSame(string file)
    {
        var path = Path.Combine(TestPaths.ReferenceModels, file);
        var model = OnnxLoader.LoadFile(path);
        var again = OnnxLoader.Load(OnnxWriter.Write(model), "rewritten");
        Assert.Equal(model.Graph.Nodes.Count, again.Graph.Nodes.Count);
        Assert.Equal(model.Graph.Initializers.Keys, again.Graph.Initializers.Keys);
        Assert.Equal(model.Opsets, again.Opsets);

        var x = Tensor.Zeros(DataType.Float32, 2, 1, 28, 28);
        var rng = new Random(3);
        var span = x.Span<float>();
        for (int i = 0; i < span.Length; i++) span[i] = (float)rng.NextDouble();
        var a = new InferenceSession(model).Run(new Dictionary<string, Tensor> { ["input"] = x })["output"];
        var b = new InferenceSession(again).Run(new Dictionary<string, Tensor> { ["input"] = x })["output"];
        Assert.Equal(a.ToArray<float>(), b.ToArray<float>());
    }

    [Fact]
    public void TensorProtoRoundTripKeepsEveryType()
    {
        foreach (var t in new[]
        {
            Tensor.FromArray([1.5f, -2f], 2), Tensor.FromArray(new sbyte[] { -128, 127 }, 2), Tensor.FromArray(new byte[] { 0, 255 }, 2),
            Tensor.FromArray([int.MinValue, 5], 2), Tensor.FromArray([long.MaxValue, -1L], 1, 2), Tensor.FromArray([true, false], 2),
        })
        {
            var back = OnnxTensors.ReadPb(OnnxTensors.WritePb(t, "t"), "t.pb");
            Assert.Equal(t.Type, back.Type);
            Assert.Equal(t.Shape, back.Shape);
            Assert.Equal(t.Bytes.ToArray(), back.Bytes.ToArray());
        }
    }
}
