using TinyOps.Engine.Data;
using TinyOps.Engine.Tensors;

namespace TinyOps.Optimize.Evaluation;

/// <summary>
/// Labelled samples for accuracy (and calibration): <see cref="Count"/> float32 samples of shape
/// <see cref="SampleShape"/> (a model input's shape without the batch dimension), one after the other, and a class
/// label for each.
/// </summary>
public sealed record LabelledSet
{
    public LabelledSet(string description, float[] samples, int[] sampleShape, int[] labels, int count)
    {
        int size = ShapeUtil.SizeChecked(sampleShape, description);
        if (count < 1) throw new ArgumentException($"{description}: a labelled set needs at least one sample");
        if ((long)size * count > samples.Length)
            throw new ArgumentException($"{description}: {count} samples of shape {ShapeUtil.Format(sampleShape)} need {(long)size * count} values, the set holds {samples.Length}");
        if (labels.Length < count) throw new ArgumentException($"{description}: {count} samples but {labels.Length} labels");
        Description = description;
        Samples = samples;
        SampleShape = (int[])sampleShape.Clone();
        Labels = labels;
        Count = count;
    }

    public string Description { get; }
    public float[] Samples { get; }
    public int[] SampleShape { get; }
    public int[] Labels { get; }
    public int Count { get; }

    /// <summary>The first <paramref name="count"/> (default all) images of an image set, shape [1, rows, cols].</summary>
    public static LabelledSet FromImages(ImageDataset data, string description, int? count = null)
    {
        int n = count ?? data.Count;
        if (n < 1 || n > data.Count) throw new ArgumentException($"{description}: {n} images were asked for; it has {data.Count}");
        var labels = new int[n];
        for (int i = 0; i < n; i++) labels[i] = data.Labels[i];
        return new LabelledSet(description, data.Images, [1, data.Rows, data.Cols], labels, n);
    }

    /// <summary>Accuracy of a session on the first <paramref name="count"/> samples.</summary>
    public Engine.Data.Evaluation Accuracy(Engine.Runtime.InferenceSession session, int count, int batch, Action<int>? progress = null) =>
        Evaluator.Accuracy(session, Samples, SampleShape, i => Labels[i], Math.Min(count, Count), batch, progress);
}
