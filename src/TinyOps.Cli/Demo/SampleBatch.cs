using TinyOps.Engine.Onnx;
using TinyOps.Engine.Tensors;
using TinyOps.Protocol.Management;

namespace TinyOps.Cli.Demo;

/// <summary>
/// The demo's embedded test batch: PyTorch's input images <c>[N, 1, 28, 28]</c> (the first N Fashion-MNIST test
/// images) labelled with PyTorch's predictions, the argmax of its reference outputs <c>[N, classes]</c> (for these
/// images they are the test set's labels). The fleet's devices infer on its images; without Fashion-MNIST it is the
/// evaluation set of the demo's recipe.
/// </summary>
public sealed record SampleBatch(Tensor Inputs, int[] Labels)
{
    public int Count => Inputs.Shape[0];

    public int SampleSize => Inputs.Length / Count;

    /// <summary>Image <paramref name="i"/> modulo the batch size, as the float32 pixels of one sample.</summary>
    public float[] Image(int i) => Inputs.ReadOnlySpan<float>().Slice(i % Count * SampleSize, SampleSize).ToArray();

    /// <summary>Reads the ONNX test-data files: the inputs and the reference outputs whose argmax labels each input.</summary>
    public static SampleBatch Read(byte[] inputsPb, byte[] referenceOutputsPb)
    {
        var inputs = OnnxTensors.ReadPb(inputsPb, "input_0.pb");
        var outputs = OnnxTensors.ReadPb(referenceOutputsPb, "output_0.pb");
        if (inputs.Type != DataType.Float32 || inputs.Rank < 2 || outputs.Type != DataType.Float32 || outputs.Rank != 2 || outputs.Shape[0] != inputs.Shape[0])
            throw new InvalidDataException($"the demo's test batch must be float32 inputs [N, ...] and reference outputs [N, classes]; got {inputs} and {outputs}");
        var scores = outputs.ReadOnlySpan<float>();
        int classes = outputs.Shape[1];
        var labels = new int[inputs.Shape[0]];
        for (int i = 0; i < labels.Length; i++)
        {
            var row = scores.Slice(i * classes, classes);
            for (int c = 1; c < classes; c++)
                if (row[c] > row[labels[i]]) labels[i] = c;
        }
        return new SampleBatch(inputs, labels);
    }

    /// <summary>The batch as an uploaded evaluation set (kind tensors: inputs float32 [N, ...], labels int64 [N]).</summary>
    public CreateEvaluationSetRequest ToEvaluationSet(string name, string description) => new()
    {
        Name = name,
        Kind = EvaluationSetKinds.Tensors,
        Description = description,
        Inputs = Convert.ToBase64String(OnnxTensors.WritePb(Inputs, "inputs")),
        Labels = Convert.ToBase64String(OnnxTensors.WritePb(Tensor.FromArray(Labels.Select(l => (long)l).ToArray(), Count), "labels")),
    };
}
