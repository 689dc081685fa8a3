using TinyOps.Engine.Onnx;
using TinyOps.Engine.Tensors;

namespace TinyOps.Agent.Tests;

/// <summary>The Fashion-MNIST reference models and their test inputs.</summary>
public static class TestModels
{
    public const string Root = "/work/shared/models";

    public static byte[] Mlp => File.ReadAllBytes(Path.Combine(Root, "fmnist_mlp.onnx"));
    public static byte[] Cnn => File.ReadAllBytes(Path.Combine(Root, "fmnist_cnn.onnx"));

    public static Tensor Input(string model) =>
        OnnxTensors.ReadPb(File.ReadAllBytes(Path.Combine(Root, $"{model}_test", "test_data_set_0", "input_0.pb")), "input_0.pb");

    public static Tensor ExpectedOutput(string model) =>
        OnnxTensors.ReadPb(File.ReadAllBytes(Path.Combine(Root, $"{model}_test", "test_data_set_0", "output_0.pb")), "output_0.pb");

    /// <summary>The class of the first image of the expected output.</summary>
    public static int ExpectedClass(string model)
    {
        var t = ExpectedOutput(model);
        var s = t.ReadOnlySpan<float>()[..t.Shape[^1]];
        int best = 0;
        for (int i = 1; i < s.Length; i++) if (s[i] > s[best]) best = i;
        return best;
    }

    /// <summary>The first image of the test input, as floats with a batch of one.</summary>
    public static (float[] Data, int[] Shape) FirstImage(string model)
    {
        var t = Input(model);
        int per = t.Length / t.Shape[0];
        var shape = (int[])t.Shape.Clone();
        shape[0] = 1;
        return (t.ReadOnlySpan<float>()[..per].ToArray(), shape);
    }
}
