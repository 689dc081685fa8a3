using TinyOps.Engine.Ir;
using TinyOps.Engine.Onnx;
using TinyOps.Engine.Runtime;
using TinyOps.Engine.Tensors;
using Xunit;

namespace TinyOps.Engine.Tests.Robustness;

/// <summary>Every kind of bad input gives a specific exception whose message names the node or field.</summary>
public sealed class BadInputTests
{
    private static byte[] RealModelBytes() => File.ReadAllBytes(Path.Combine(TestPaths.ReferenceModels, "fmnist_cnn.onnx"));

    [Fact]
    public void EmptyFileIsRefused()
    {
        var e = Assert.Throws<ModelFormatException>(() => OnnxLoader.Load([], "empty.onnx"));
        Assert.Contains("empty.onnx", e.Message);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(100)]
    [InlineData(5000)]
    public void TruncatedFileIsRefused(int keep)
    {
        var bytes = RealModelBytes();
        var e = Assert.ThrowsAny<EngineException>(() => new InferenceSession(OnnxLoader.Load(bytes[..keep], "cut.onnx")));
        Assert.Contains("cut.onnx", e.Message);
    }

    [Fact]
    public void GarbageIsRefused()
    {
        var rng = new Random(7);
        var bytes = new byte[4096];
        rng.NextBytes(bytes);
        Assert.ThrowsAny<EngineException>(() => new InferenceSession(OnnxLoader.Load(bytes, "garbage.bin")));
    }

    [Fact]
    public void TextFileIsRefused()
    {
        var e = Assert.ThrowsAny<EngineException>(() => new InferenceSession(OnnxLoader.Load("hello, this is not a model\n"u8.ToArray(), "readme.txt")));
        Assert.Contains("readme.txt", e.Message);
    }

    [Fact]
    public void AbsurdInitializerDimensionsAreRefusedBeforeAllocating()
    {
        var proto = OnnxWriter.ToProto(TestModels.AddRelu());
        var b = proto.Graph.Initializer[0];
        b.Dims.Clear();
        b.Dims.Add(1L << 40);
        b.Dims.Add(1L << 40);
        var e = Assert.Throws<ResourceLimitException>(() => OnnxLoader.Load(Google.Protobuf.MessageExtensions.ToByteArray(proto)));
        Assert.Contains("'b'", e.Message);
    }

    [Fact]
    public void InitializerWithTooFewBytesIsRefused()
    {
        var proto = OnnxWriter.ToProto(TestModels.AddRelu());
        proto.Graph.Initializer[0].Dims[0] = 5;
        var e = Assert.Throws<ModelFormatException>(() => OnnxLoader.Load(Google.Protobuf.MessageExtensions.ToByteArray(proto)));
        Assert.Contains("'b'", e.Message);
        Assert.Contains("raw_data", e.Message);
    }

    [Fact]
    public void AbsurdInputDimensionIsRefusedAtRun()
    {
        var s = new InferenceSession(TestModels.AddRelu());
        Assert.ThrowsAny<EngineException>(() => s.Run(new Dictionary<string, Tensor> { ["x"] = Tensor.Zeros(DataType.Float32, 1, 5) }));
    }

    [Fact]
    public void CycleIsRefused()
    {
        var m = TestModels.AddRelu();
        m.Graph.Nodes[0].Inputs[0] = "y"; // add reads relu's output, relu reads add's
        var e = Assert.Throws<ModelValidationException>(() => new InferenceSession(m));
        Assert.Contains("cycle", e.Message);
        Assert.Contains("'add'", e.Message);
    }

    [Fact]
    public void MissingInitializerIsNamed()
    {
        var m = TestModels.AddRelu();
        m.Graph.Initializers.Clear();
        var e = Assert.Throws<ModelValidationException>(() => new InferenceSession(m));
        Assert.Contains("'b'", e.Message);
        Assert.Contains("node 'add'", e.Message);
    }

    [Fact]
    public void UnknownOperatorIsNamed()
    {
        var m = TestModels.AddRelu();
        m.Graph.Nodes[1].OpType = "FancyRelu";
        var e = Assert.Throws<UnsupportedOperatorException>(() => new InferenceSession(m));
        Assert.Contains("FancyRelu", e.Message);
        Assert.Contains("'relu'", e.Message);
    }

    [Fact]
    public void UnknownDomainIsNamed()
    {
        var m = TestModels.AddRelu();
        m.Graph.Nodes[1].Domain = "com.example";
        m.Opsets["com.example"] = 1;
        var e = Assert.Throws<UnsupportedOperatorException>(() => new InferenceSession(m));
        Assert.Contains("com.example", e.Message);
    }

    [Fact]
    public void DomainNotImportedIsNamed()
    {
        var m = TestModels.AddRelu();
        m.Graph.Nodes[1].Domain = "com.example";
        var e = Assert.Throws<UnsupportedOperatorException>(() => new InferenceSession(m));
        Assert.Contains("not imported", e.Message);
    }

    [Fact]
    public void WrongInputShapeIsNamed()
    {
        var s = new InferenceSession(TestModels.AddRelu());
        var e = Assert.Throws<InferenceInputException>(() => s.Run(new Dictionary<string, Tensor> { ["x"] = Tensor.Zeros(DataType.Float32, 2, 3) }));
        Assert.Contains("'x'", e.Message);
        Assert.Contains("[2,3]", e.Message);
    }

    [Fact]
    public void WrongInputTypeIsNamed()
    {
        var s = new InferenceSession(TestModels.AddRelu());
        var e = Assert.Throws<InferenceInputException>(() => s.Run(new Dictionary<string, Tensor> { ["x"] = Tensor.Zeros(DataType.Int32, 2, 4) }));
        Assert.Contains("'x'", e.Message);
        Assert.Contains("int32", e.Message);
    }

    [Fact]
    public void MissingAndUnknownInputsAreNamed()
    {
        var s = new InferenceSession(TestModels.AddRelu());
        Assert.Contains("'x'", Assert.Throws<InferenceInputException>(() => s.Run(new Dictionary<string, Tensor>())).Message);
        Assert.Contains("'z'", Assert.Throws<InferenceInputException>(() => s.Run(new Dictionary<string, Tensor>
        {
            ["x"] = Tensor.Zeros(DataType.Float32, 1, 4),
            ["z"] = Tensor.Zeros(DataType.Float32, 1, 4),
        })).Message);
    }

    [Fact]
    public void DuplicateOutputNameIsRefused()
    {
        var m = TestModels.AddRelu();
        m.Graph.Nodes[1].Outputs[0] = "s";
        var e = Assert.Throws<ModelValidationException>(() => new InferenceSession(m));
        Assert.Contains("'s'", e.Message);
    }

    [Fact]
    public void UnsupportedElementTypeIsNamed()
    {
        var proto = OnnxWriter.ToProto(TestModels.AddRelu());
        proto.Graph.Initializer[0].DataType = (int)DataType.Double;
        proto.Graph.Initializer[0].RawData = Google.Protobuf.ByteString.CopyFrom(new byte[32]);
        var e = Assert.Throws<UnsupportedTypeException>(() => OnnxLoader.Load(Google.Protobuf.MessageExtensions.ToByteArray(proto)));
        Assert.Contains("double", e.Message);
        Assert.Contains("'b'", e.Message);
    }

    [Fact]
    public void GoodModelRunsAfterAllThat()
    {
        var s = new InferenceSession(TestModels.AddRelu());
        var y = s.Run(new Dictionary<string, Tensor> { ["x"] = Tensor.FromArray([1f, 1f, 1f, 1f, -5f, 5f, 0f, 10f], 2, 4) })["y"];
        Assert.Equal([2f, 0f, 4f, 0f, 0f, 3f, 3f, 6f], y.ToArray<float>());
    }
}
