using TinyOps.Engine.Onnx;
using TinyOps.Optimize.Passes;
using TinyOps.Optimize.Recipes;
using Xunit;

namespace TinyOps.Optimize.Tests.Recipes;

/// <summary>Recipe parsing (the sample file, and every kind of bad input with the message naming where) and building.</summary>
public sealed class RecipeTests
{
    private static string Sample => Path.Combine(TestPaths.RepoRoot, "samples", "recipes", "fmnist-cnn.yaml");

    [Fact]
    public void TheSampleRecipeParses()
    {
        var r = RecipeParser.ParseFile(Sample);
        Assert.Equal("fmnist-cnn", r.Name);
        Assert.Equal("fashion-mnist", r.Evaluation);
        Assert.True(r.Variants.Count >= 8);
        var int8 = r.Variants.Single(v => v.Name == "int8-static");
        Assert.Equal(["cortex-m4", "phone"], int8.Targets);
        Assert.Equal(1.0, int8.MaxAccuracyDrop);
        Assert.Equal(["fold-constants", "quantize"], int8.Passes.Select(p => p.Pass));
        Assert.Equal("static-int8", int8.Passes[1].Parameters["mode"]);
        Assert.Equal(1.5, r.Variants.Single(v => v.Name == "pruned-50-int8").MaxAccuracyDrop);
    }

    [Fact]
    public void JsonRecipesParseToo()
    {
        var r = RecipeParser.Parse("""{"name": "j", "variants": [{"name": "p", "passes": ["fold-constants", {"prune": {"sparsity": 0.25}}]}]}""", "r.json");
        Assert.Null(r.Evaluation);
        Assert.Equal("0.25", r.Variants[0].Passes[1].Parameters["sparsity"]);
        Assert.Equal(1.0, r.Variants[0].MaxAccuracyDrop);
    }

    private static string Error(string yaml) => Assert.Throws<RecipeException>(() => RecipeParser.Parse(yaml, "bad.yaml")).Message;

    [Theory]
    [InlineData("name: r\nvariants:\n  - name: v\n    passes:\n      - prune: { sparsity: 1.5 }\n", "bad.yaml: variant 'v', pass 1 'prune' (line 5): parameter 'sparsity' is 1.5")]
    [InlineData("name: r\nvariants:\n  - name: v\n    passes:\n      - prune\n", "parameter 'sparsity' is missing")]
    [InlineData("name: r\nvariants:\n  - name: v\n    passes:\n      - sharpen\n", "bad.yaml: variant 'v', pass 1 'sharpen' (line 5): unknown pass 'sharpen'; the passes are: fold-constants")]
    [InlineData("name: r\nvariants:\n  - name: v\n    passes:\n      - quantize: { calibration: imagenet }\n", "parameter 'calibration' is 'imagenet'; it must be one of: fashion-mnist, random")]
    [InlineData("name: r\nvariants:\n  - name: v\n    passes:\n      - quantize: { mode: int4 }\n", "parameter 'mode' is 'int4'")]
    [InlineData("name: r\nvariants:\n  - name: v\n    passes:\n      - quantize: { per_channel: maybe }\n", "parameter 'per_channel' is 'maybe'; it must be true or false")]
    [InlineData("name: r\nvariants:\n  - name: v\n    passes:\n      - quantize: { colour: red }\n", "unknown parameter 'colour'")]
    [InlineData("name: r\nvariants:\n  - name: v\n    passes:\n      - prune: { sparsity: lots }\n", "parameter 'sparsity' is 'lots', which is not a number")]
    [InlineData("name: r\nvariants:\n  - name: v\n    max_accuracy_drop: -1\n    passes: [fold-constants]\n", "variant 'v' (line 4): field 'max_accuracy_drop' is '-1'")]
    [InlineData("name: r\nvariants:\n  - name: v\n    passes: []\n", "field 'passes' is missing or empty")]
    [InlineData("name: r\nvariants: []\n", "field 'variants' is missing or empty")]
    [InlineData("variants:\n  - name: v\n    passes: [fold-constants]\n", "the recipe needs a 'name'")]
    [InlineData("name: r\nvariant:\n  - name: v\n", "line 2: the recipe has an unknown field 'variant'")]
    [InlineData("name: r\nvariants:\n  - name: v\n    targets: [cortex m4]\n    passes: [fold-constants]\n", "field 'targets' holds 'cortex m4'")]
    [InlineData("name: r\nvariants:\n  - name: v\n    passes: [fold-constants]\n  - name: v\n    passes: [fold-constants]\n", "variant name 'v' is used twice")]
    [InlineData("name: r\nvariants:\n  - name: a/b\n    passes: [fold-constants]\n", "variant name 'a/b' may only hold")]
    [InlineData("name: r\nevaluation: imagenet\nvariants:\n  - name: v\n    passes: [fold-constants]\n", "field 'evaluation' is 'imagenet'")]
    [InlineData("name: r\nvariants:\n  - name: v\n    passes:\n      - prune: { sparsity: [1, 2] }\n", "parameters are name: value pairs")]
    [InlineData("name: [r\n", "bad.yaml: line")]
    [InlineData("- just\n- a list\n", "a recipe is a mapping")]
    public void BadRecipesSayWhereAndWhat(string yaml, string expected) => Assert.Contains(expected, Error(yaml));

    [Fact]
    public void MissingFileIsNamed()
    {
        var e = Assert.Throws<RecipeException>(() => RecipeParser.ParseFile("/nonexistent/recipe.yaml"));
        Assert.Contains("/nonexistent/recipe.yaml", e.Message);
    }

    [Fact]
    public void RunnerBuildsAVariantWithProgressAndGatesItsAccuracy()
    {
        var recipe = RecipeParser.Parse("""
            name: test
            evaluation: fashion-mnist
            latency_runs: 5
            variants:
              - name: int8
                targets: [cortex-m4]
                passes:
                  - fold-constants
                  - quantize: { mode: static-int8, calibration: fashion-mnist, samples: 100 }
              - name: hard-pruned
                max_accuracy_drop: 0.5
                passes:
                  - prune: { sparsity: 0.95, scope: layer }
            """, "test.yaml");
        var runner = new RecipeRunner(recipe);
        var bytes = File.ReadAllBytes(TestPaths.FmnistCnn);
        var progress = new List<RecipeProgress>();
        var v = runner.BuildVariant(bytes, "fmnist_cnn", 0, progress.Add);
        Assert.Equal([0, 1, 2, 3], progress.Select(p => p.Step));
        Assert.All(progress, p => Assert.Equal(3, p.Steps));
        Assert.Equal(2, v.Passes.Count);
        Assert.Contains(v.Model.Graph.Nodes, n => n.OpType == "QLinearConv");
        Assert.Equal("int8", v.Model.Metadata["tinyops.variant"]);
        Assert.Equal("cortex-m4", v.Model.Metadata["tinyops.targets"]);
        Assert.StartsWith("static-int8, QOperator", v.Model.Metadata["tinyops.quantization"]);
        Assert.True(v.WithinBudget);
        Assert.NotNull(v.Evaluation!.LatencyMedianMicros);
        Assert.Equal(v.Bytes.LongLength, v.Evaluation.FileBytes);
        OnnxLoader.Load(v.Bytes, "variant"); // valid ONNX

        var pruned = runner.BuildVariant(bytes, "fmnist_cnn", 1);
        Assert.False(pruned.WithinBudget);
        Assert.True(pruned.AccuracyDrop > 0.5);
        var json = System.Text.Encoding.UTF8.GetString(RecipeReport.ToJson(recipe, "fmnist_cnn", runner.Baseline(bytes, "fmnist_cnn"), [v, pruned]));
        Assert.Contains("\"within_budget\": false", json);
        Assert.Contains("\"latency_p50_us\"", json);
    }

    [Fact]
    public void RunnerSaysWhichVariantAndPassFailed()
    {
        var recipe = RecipeParser.Parse("name: t\nvariants:\n  - name: dyn\n    passes:\n      - quantize: { mode: dynamic-int8 }\n", "t.yaml");
        var relu = Pruning.PruningTests.ConformanceModel("node/test_relu");
        var e = Assert.Throws<RecipeException>(() => new RecipeRunner(recipe).BuildVariant(OnnxWriter.Write(relu), "relu.onnx", 0));
        Assert.Contains("t.yaml: variant 'dyn', pass 1 'quantize' failed on relu.onnx", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new RecipeRunner(recipe).BuildVariant(OnnxWriter.Write(relu), "relu.onnx", 3));
    }

    [Fact]
    public void CancellationStopsBetweenPasses()
    {
        var recipe = RecipeParser.Parse("name: t\nvariants:\n  - name: v\n    passes: [fold-constants, remove-dead-nodes]\n", "t.yaml");
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        var runner = new RecipeRunner(recipe, new PassContext { Cancellation = cts.Token });
        Assert.Throws<OperationCanceledException>(() => runner.BuildVariant(File.ReadAllBytes(TestPaths.FmnistCnn), "m", 0));
    }
}
