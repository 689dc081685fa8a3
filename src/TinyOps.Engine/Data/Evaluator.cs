using TinyOps.Engine.Runtime;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Data;

public readonly record struct Evaluation(int Correct, int Count)
{
    public double Accuracy => Count == 0 ? 0 : (double)Correct / Count;
}

/// <summary>Classification accuracy of a session on a labelled set (argmax of the first output against the label).</summary>
public static class Evaluator
{
    public static Evaluation Accuracy(InferenceSession session, ImageDataset data, int count, int batch, Action<int>? progress = null) =>
        Accuracy(session, data.Images, [1, data.Rows, data.Cols], i => data.Labels[i], count, batch, progress);

    /// <summary>
    /// Accuracy on <paramref name="count"/> samples stored one after the other in <paramref name="samples"/>, each of shape
    /// <paramref name="sampleShape"/> (the model input's shape without the batch dimension), with class labels from <paramref name="label"/>.
    /// </summary>
    public static Evaluation Accuracy(InferenceSession session, ReadOnlySpan<float> samples, int[] sampleShape, Func<int, int> label, int count, int batch, Action<int>? progress = null)
    {
        if (session.Inputs.Count != 1) throw new InferenceInputException($"the model takes {session.Inputs.Count} inputs; a classifier for evaluation takes one tensor");
        int sampleSize = ShapeUtil.SizeChecked(sampleShape, "sample");
        if ((long)sampleSize * count > samples.Length)
            throw new InferenceInputException($"{count} samples of shape {ShapeUtil.Format(sampleShape)} need {(long)sampleSize * count} values; the set holds {samples.Length}");
        int correct = 0;
        var outputs = new Tensor[session.Outputs.Count];
        Tensor? input = null;
        for (int start = 0; start < count; start += batch)
        {
            int b = Math.Min(batch, count - start);
            if (input is null || input.Shape[0] != b) input = Tensor.Zeros(DataType.Float32, [b, .. sampleShape]);
            samples.Slice(start * sampleSize, b * sampleSize).CopyTo(input.Span<float>());
            session.Run([input], outputs);
            var scores = outputs[0];
            if (scores.Type != DataType.Float32 || scores.Length % b != 0)
                throw new InferenceInputException($"the model's first output {scores} is not a float32 [batch, classes] score tensor");
            int classes = scores.Length / b;
            var s = scores.Span<float>();
            for (int i = 0; i < b; i++)
            {
                var row = s.Slice(i * classes, classes);
                int arg = 0;
                for (int k = 1; k < classes; k++) if (row[k] > row[arg]) arg = k;
                if (arg == label(start + i)) correct++;
            }
            progress?.Invoke(start + b);
        }
        return new Evaluation(correct, count);
    }
}
