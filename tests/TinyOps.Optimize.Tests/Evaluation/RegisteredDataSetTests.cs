using TinyOps.Engine.Data;
using TinyOps.Engine.Onnx;
using TinyOps.Engine.Runtime;
using TinyOps.Optimize.Evaluation;
using TinyOps.Optimize.Passes;
using TinyOps.Optimize.Recipes;
using Xunit;

namespace TinyOps.Optimize.Tests.Evaluation;

/// <summary>Labelled sets registered by a caller (the server's evaluation sets): named by recipes, used for accuracy and calibration.</summary>
public sealed class RegisteredDataSetTests
{
    private static LabelledSet First(int n) => LabelledSet.FromImages(TestModels.Test.Value, $"the first {n} test images", n);

    private static DataSets With(string name, Func<LabelledSet> load) =>
        new() { Registered = new Dictionary<string, Lazy<LabelledSet>> { [name] = new(load) } };

    [Fact]
    public void ARegisteredSetGivesTheAccuracyOfTheSameImages()
    {
        var sets = With("first-300", () => First(300));
        var e = ModelEvaluator.Evaluate(TestPaths.FmnistCnn, new EvaluationOptions { DataSet = "first-300", LatencyRuns = 0 }, sets);
        var direct = Evaluator.Accuracy(InferenceSession.Load(File.ReadAllBytes(TestPaths.FmnistCnn)), TestModels.Test.Value, 300, 100);
        Assert.Equal(300, e.EvaluatedImages);
        Assert.Equal(direct.Accuracy, e.Accuracy);
        Assert.Equal(["fashion-mnist", "first-300"], sets.LabelledNames);
        Assert.Equal(["fashion-mnist", "random", "first-300"], sets.CalibrationNames);
    }

    [Fact]
    public void ASetOfAnotherShapeIsRefusedSayingBothShapes()
    {
        var sets = With("tiny", () => new LabelledSet("evaluation set 'tiny'", new float[2 * 16], [1, 4, 4], [0, 1], 2));
        var e = Assert.Throws<ArgumentException>(() => ModelEvaluator.Evaluate(TestPaths.FmnistCnn, new EvaluationOptions { DataSet = "tiny", LatencyRuns = 0 }, sets));
        Assert.Contains("evaluation set 'tiny' holds samples of shape [1,4,4]", e.Message);
        Assert.Contains("takes [", e.Message);
        Assert.Throws<ArgumentException>(() => new LabelledSet("short", new float[10], [1, 4, 4], [0], 1));
        Assert.Throws<ArgumentException>(() => new LabelledSet("few labels", new float[32], [1, 4, 4], [0], 2));
    }

    [Fact]
    public void RecipesNameRegisteredSetsWhichLoadOnlyWhenUsed()
    {
        var sets = With("mine", () => First(200));
        var recipe = RecipeParser.Parse("""
            name: r
            evaluation: mine
            latency_runs: 0
            variants:
              - name: int8
                passes:
                  - quantize: { calibration: mine, samples: 50 }
            """, "r.yaml", sets);
        Assert.False(sets.Registered["mine"].IsValueCreated); // validating needs only the names
        Assert.Equal("mine", recipe.Evaluation);

        var v = new RecipeRunner(recipe, new PassContext { DataSets = sets }).BuildVariant(File.ReadAllBytes(TestPaths.FmnistCnn), "fmnist_cnn", 0);
        Assert.True(sets.Registered["mine"].IsValueCreated);
        Assert.Equal(200, v.Evaluation!.EvaluatedImages);
        Assert.StartsWith("static-int8, QOperator", v.Model.Metadata["tinyops.quantization"]);
        Assert.Contains("50 samples of the first 200 test images", v.Model.Metadata["tinyops.quantization"]);
        Assert.True(v.WithinBudget);

        // Without the registration the same names are refused, saying which names there are.
        var e = Assert.Throws<RecipeException>(() => RecipeParser.Parse("name: r\nvariants:\n  - name: v\n    passes:\n      - quantize: { calibration: mine }\n", "r.yaml"));
        Assert.Contains("it must be one of: fashion-mnist, random", e.Message);
        Assert.Equal("variants[0].passes[0].calibration", e.Field);
    }

    [Theory]
    [InlineData("name: r\nvariants:\n  - name: v\n    passes:\n      - prune: { sparsity: 1.5 }\n", "variants[0].passes[0].sparsity")]
    [InlineData("name: r\nvariants:\n  - name: a\n    passes: [fold-constants]\n  - name: b\n    passes:\n      - fold-constants\n      - sharpen\n", "variants[1].passes[1]")]
    [InlineData("name: r\nvariants:\n  - name: v\n    passes:\n      - quantize: { colour: red }\n", "variants[0].passes[0].colour")]
    [InlineData("name: r\nevaluation: imagenet\nvariants:\n  - name: v\n    passes: [fold-constants]\n", "evaluation")]
    [InlineData("name: r\nlatency_runs: -1\nvariants:\n  - name: v\n    passes: [fold-constants]\n", "latency_runs")]
    [InlineData("name: r\nvariants:\n  - name: v\n    targets: [a b]\n    passes: [fold-constants]\n", "variants[0].targets")]
    [InlineData("name: r\nvariants:\n  - name: v\n    colour: red\n    passes: [fold-constants]\n", "variants[0].colour")]
    [InlineData("name: r\nvariants:\n  - name: v\n    passes: [fold-constants]\n  - name: v\n    passes: [fold-constants]\n", "variants[1].name")]
    [InlineData("variants:\n  - name: v\n    passes: [fold-constants]\n", "name")]
    [InlineData("name: r\nvariants: []\n", "variants")]
    [InlineData("name: [r\n", null)]
    public void ErrorsNameTheFieldAsAPath(string yaml, string? field) =>
        Assert.Equal(field, Assert.Throws<RecipeException>(() => RecipeParser.Parse(yaml, "bad.yaml")).Field);
}
