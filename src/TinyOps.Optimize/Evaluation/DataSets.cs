using TinyOps.Engine.Data;
using TinyOps.Engine.Ir;
using TinyOps.Optimize.Quantization;

namespace TinyOps.Optimize.Evaluation;

/// <summary>
/// The named data sets passes and evaluations can ask for: the built-ins <c>fashion-mnist</c> (training images for
/// calibration, the 10,000 test images for accuracy; read from <see cref="FashionMnistDirectory"/>) and <c>random</c>
/// (deterministic pseudo-random inputs in [0, 1) of the model input's shape, no labels), plus the labelled sets a
/// caller registers (<see cref="Registered"/>: the server's evaluation sets), usable for accuracy and for calibration.
/// Loaded sets are cached.
/// </summary>
public sealed class DataSets
{
    /// <summary>The built-in sets.</summary>
    public static readonly IReadOnlyList<string> Names = ["fashion-mnist", "random"];

    private ImageDataset? _train, _test;

    /// <summary>Folder of the Fashion-MNIST IDX files (null: $TINYOPS_FASHION_MNIST or /usr/share/datasets/fashion-mnist).</summary>
    public string? FashionMnistDirectory { get; init; }

    /// <summary>Labelled sets registered by name (not a built-in name), loaded on first use.</summary>
    public IReadOnlyDictionary<string, Lazy<LabelledSet>> Registered { get; init; } = new Dictionary<string, Lazy<LabelledSet>>();

    /// <summary>Every name a calibration may use: the built-ins, then the registered sets.</summary>
    public IReadOnlyList<string> CalibrationNames => [.. Names, .. Registered.Keys.Order(StringComparer.Ordinal)];

    /// <summary>Every name with labels, which an accuracy evaluation may use.</summary>
    public IReadOnlyList<string> LabelledNames => ["fashion-mnist", .. Registered.Keys.Order(StringComparer.Ordinal)];

    /// <summary>Default calibration sample counts: 500 Fashion-MNIST images (or of a registered set, at most all), 32 random samples.</summary>
    public static int DefaultCalibrationCount(string name) => name == "random" ? 32 : 500;

    public CalibrationSet Calibration(string name, Model model, int? count = null)
    {
        if (Registered.TryGetValue(name, out var registered))
        {
            var set = registered.Value;
            return CalibrationSet.FromSamples(set.Samples, set.SampleShape, Math.Min(count ?? DefaultCalibrationCount(name), set.Count), set.Description);
        }
        switch (name)
        {
            case "fashion-mnist":
                return CalibrationSet.FromImages(_train ??= FashionMnist.LoadTrain(FashionMnistDirectory), count ?? DefaultCalibrationCount(name), "the Fashion-MNIST training set");
            case "random":
                var input = model.Graph.RuntimeInputs.FirstOrDefault()
                    ?? throw new QuantizationException("the model has no runtime input to calibrate");
                if (input.Shape is null || input.Shape.Length < 2 || input.Shape.Skip(1).Any(d => !d.IsKnown))
                    throw new QuantizationException($"random calibration needs the input's dimensions after the batch to be known; '{input.Name}' has shape {input.ShapeText}");
                return CalibrationSet.Random(input.Shape.Skip(1).Select(d => checked((int)d.Value)).ToArray(), count ?? DefaultCalibrationCount(name));
            default:
                throw new QuantizationException($"calibration set '{name}' is not known; use one of: {string.Join(", ", CalibrationNames)}");
        }
    }

    /// <summary>The labelled set for accuracy: the Fashion-MNIST test images, or a registered set.</summary>
    public LabelledSet Test(string name)
    {
        if (Registered.TryGetValue(name, out var registered)) return registered.Value;
        return name == "fashion-mnist"
            ? LabelledSet.FromImages(_test ??= FashionMnist.LoadTest(FashionMnistDirectory), "the Fashion-MNIST test set")
            : throw new ArgumentException($"evaluation set '{name}' has no labels; accuracy needs one of: {string.Join(", ", LabelledNames)}");
    }
}
