using TinyOps.Engine.Data;
using TinyOps.Engine.Ir;
using TinyOps.Optimize.Quantization;

namespace TinyOps.Optimize.Evaluation;

/// <summary>
/// The named data sets passes and evaluations can ask for: <c>fashion-mnist</c> (training images for calibration,
/// the 10,000 test images for accuracy; read from <see cref="FashionMnistDirectory"/>) and <c>random</c>
/// (deterministic pseudo-random inputs in [0, 1) of the model input's shape, no labels). Loaded sets are cached.
/// </summary>
public sealed class DataSets
{
    public static readonly IReadOnlyList<string> Names = ["fashion-mnist", "random"];

    private ImageDataset? _train, _test;

    /// <summary>Folder of the Fashion-MNIST IDX files (null: $TINYOPS_FASHION_MNIST or /usr/share/datasets/fashion-mnist).</summary>
    public string? FashionMnistDirectory { get; init; }

    public static bool IsKnown(string name) => Names.Contains(name);

    /// <summary>Default calibration sample counts: 500 Fashion-MNIST images, 32 random samples.</summary>
    public static int DefaultCalibrationCount(string name) => name == "random" ? 32 : 500;

    public CalibrationSet Calibration(string name, Model model, int? count = null)
    {
        switch (name)
        {
            case "fashion-mnist":
                return CalibrationSet.FromImages(_train ??= FashionMnist.LoadTrain(FashionMnistDirectory), count ?? 500, "the Fashion-MNIST training set");
            case "random":
                var input = model.Graph.RuntimeInputs.FirstOrDefault()
                    ?? throw new QuantizationException("the model has no runtime input to calibrate");
                if (input.Shape is null || input.Shape.Length < 2 || input.Shape.Skip(1).Any(d => !d.IsKnown))
                    throw new QuantizationException($"random calibration needs the input's dimensions after the batch to be known; '{input.Name}' has shape {input.ShapeText}");
                return CalibrationSet.Random(input.Shape.Skip(1).Select(d => checked((int)d.Value)).ToArray(), count ?? 32);
            default:
                throw new QuantizationException($"calibration set '{name}' is not known; use one of: {string.Join(", ", Names)}");
        }
    }

    /// <summary>The labelled test set for accuracy (only fashion-mnist has labels).</summary>
    public ImageDataset Test(string name) => name == "fashion-mnist"
        ? _test ??= FashionMnist.LoadTest(FashionMnistDirectory)
        : throw new ArgumentException($"evaluation set '{name}' has no labels; accuracy needs fashion-mnist");
}
