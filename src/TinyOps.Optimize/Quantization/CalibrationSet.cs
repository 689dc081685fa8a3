using TinyOps.Engine.Data;

namespace TinyOps.Optimize.Quantization;

/// <summary>
/// Inputs for calibrating a single-input float model: <see cref="Count"/> samples of shape <see cref="SampleShape"/>
/// (the model input's shape without the batch dimension).
/// </summary>
public abstract class CalibrationSet
{
    public abstract string Description { get; }
    public abstract int Count { get; }
    public abstract int[] SampleShape { get; }

    public int SampleSize
    {
        get
        {
            int n = 1;
            foreach (int d in SampleShape) n *= d;
            return n;
        }
    }

    /// <summary>Writes samples [start, start + count) one after the other into <paramref name="dst"/>.</summary>
    public abstract void Fill(int start, int count, Span<float> dst);

    /// <summary>The first <paramref name="count"/> images of a dataset (e.g. Fashion-MNIST's training set), shape [1, rows, cols].</summary>
    public static CalibrationSet FromImages(ImageDataset data, int count, string description)
    {
        if (count < 1) throw new QuantizationException($"the calibration set needs at least one image, {count} were asked for");
        if (count > data.Count) throw new QuantizationException($"{count} calibration images were asked for but {description} has only {data.Count}");
        return new SampleSet(data.Images, [1, data.Rows, data.Cols], count, $"{count} images of {description}");
    }

    /// <summary>The first <paramref name="count"/> samples of shape <paramref name="sampleShape"/> stored one after the other (a registered evaluation set).</summary>
    public static CalibrationSet FromSamples(float[] samples, int[] sampleShape, int count, string description)
    {
        if (count < 1) throw new QuantizationException($"the calibration set needs at least one sample, {count} were asked for");
        var set = new SampleSet(samples, (int[])sampleShape.Clone(), count, $"{count} samples of {description}");
        if ((long)set.SampleSize * count > samples.Length)
            throw new QuantizationException($"{count} calibration samples were asked for but {description} holds only {samples.Length / Math.Max(1, set.SampleSize)}");
        return set;
    }

    /// <summary>
    /// <paramref name="count"/> deterministic pseudo-random samples in [0, 1) (<see cref="PseudoRandomInputs"/>), starting at
    /// sample <paramref name="firstSample"/> (the agreement check uses samples 0–999, so calibration starts at 1000 by default).
    /// Not representative of real data: use it when no data set is at hand (e.g. MobileNetV2 without ImageNet).
    /// </summary>
    public static CalibrationSet Random(int[] sampleShape, int count, int firstSample = 1000)
    {
        if (count < 1) throw new QuantizationException($"the calibration set needs at least one sample, {count} were asked for");
        foreach (int d in sampleShape)
            if (d < 1) throw new QuantizationException($"random calibration needs a fully known sample shape, got [{string.Join(",", sampleShape)}]");
        return new RandomSet((int[])sampleShape.Clone(), count, firstSample);
    }

    private sealed class SampleSet(float[] samples, int[] shape, int count, string description) : CalibrationSet
    {
        public override string Description => description;
        public override int Count => count;
        public override int[] SampleShape => shape;
        public override void Fill(int start, int n, Span<float> dst) =>
            samples.AsSpan(start * SampleSize, n * SampleSize).CopyTo(dst);
    }

    private sealed class RandomSet(int[] shape, int count, int first) : CalibrationSet
    {
        public override string Description => $"{count} pseudo-random samples in [0,1) (samples {first}..{first + count - 1})";
        public override int Count => count;
        public override int[] SampleShape => shape;
        public override void Fill(int start, int n, Span<float> dst) => PseudoRandomInputs.Fill(first + start, SampleSize, dst.Slice(0, n * SampleSize));
    }
}
