using System.Net;
using TinyOps.Protocol.Management;
using TinyOps.Server.Tests.Registry;
using Xunit;
using static TinyOps.Server.Tests.Optimization.OptimizationApi;

namespace TinyOps.Server.Tests.Optimization;

/// <summary>Recipes and evaluation sets at upload: validated completely, refused with a 400 naming the field, stored unchanged otherwise.</summary>
public sealed class RecipeUploadTests
{
    private const string Good = """
        name: fmnist-small
        evaluation: fashion-mnist
        latency_runs: 50
        variants:
          - name: int8
            targets: [cortex-m4, cortex-m0]
            passes:
              - fold-constants
              - quantize: { mode: static-int8, calibration: fashion-mnist, samples: 100 }
          - name: pruned
            targets: [gateway]
            max_accuracy_drop: 1.5
            passes:
              - prune: { sparsity: 0.5 }
        """;

    private static string OnePass(string pass, string evaluation = "fashion-mnist") =>
        $"name: r\nevaluation: {evaluation}\nvariants:\n  - name: v\n    passes:\n      - fold-constants\n      - {pass}\n";

    [Theory]
    [MemberData(nameof(TestServer.Backends), MemberType = typeof(TestServer))]
    public async Task ARecipeIsStoredAsSentAndABadOneIsRefusedNamingTheField(string backend)
    {
        await using var s = await TestServer.StartAsync(backend, o => o.RunJobs = false);
        Assert.Equal(HttpStatusCode.Created, (await RegistryTests.PushAsync(s.Admin, "fmnist", RegistryTests.FmnistCnn())).StatusCode);

        var missing = await s.Admin.GetAsync($"{Project}/models/fmnist/recipe");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Contains("model 'fmnist' has no recipe; set one with PUT", (await ProblemAsync(missing)).Detail);

        var put = await PutRecipeAsync(s.Admin, "fmnist", Good);
        var stored = await put.ReadAsync<RecipeDto>();
        Assert.Equal("fmnist-small", stored.Name);
        Assert.Equal(Good, stored.Text);
        Assert.Equal(TinyOps.Server.Optimization.RecipeStore.Sha256(Good), stored.Sha256);
        Assert.Equal("fashion-mnist", stored.Evaluation);
        Assert.Equal(["int8", "pruned"], stored.Variants.Select(v => v.Name));
        Assert.Equal(["fold-constants", "quantize(mode=static-int8, calibration=fashion-mnist, samples=100)"], stored.Variants[0].Passes);
        Assert.Equal(1.5, stored.Variants[1].MaxAccuracyDrop);

        (string Recipe, string Field, string Detail)[] bad =
        [
            (OnePass("sharpen"), "variants[0].passes[1]", "recipe of model 'fmnist': variant 'v', pass 2 'sharpen' (line 7): unknown pass 'sharpen'; the passes are: fold-constants"),
            (OnePass("prune: { sparsity: 1.5 }"), "variants[0].passes[1].sparsity", "parameter 'sparsity' is 1.5; it must be from 0 up to (not including) 1"),
            (OnePass("quantize: { calibration: imagenet }"), "variants[0].passes[1].calibration", "parameter 'calibration' is 'imagenet'; it must be one of: fashion-mnist, random"),
            (OnePass("fold-batchnorm", evaluation: "imagenet"), "evaluation", "field 'evaluation' is 'imagenet'; use fashion-mnist (labelled sets) or none"),
            ("name: r\nvariants:\n  - name: v\n    max_accuracy_drop: lots\n    passes: [fold-constants]\n", "variants[0].max_accuracy_drop", "field 'max_accuracy_drop' is 'lots'"),
            ("name: r\nvariant: []\n", "variant", "the recipe has an unknown field 'variant'"),
            ("name: [r\n", "recipe", "not valid YAML or JSON"),
        ];
        foreach (var (recipe, field, detail) in bad)
        {
            var r = await PutRecipeAsync(s.Admin, "fmnist", recipe);
            Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
            var problem = await ProblemAsync(r);
            Assert.Equal(field, problem.Field);
            Assert.Contains(detail, problem.Detail);
        }
        Assert.Equal(HttpStatusCode.BadRequest, (await PutRecipeAsync(s.Admin, "fmnist", "  \n")).StatusCode);

        // Nothing refused replaced what was stored.
        var after = await (await s.Admin.GetAsync($"{Project}/models/fmnist/recipe")).ReadAsync<RecipeDto>();
        Assert.Equal(stored.Sha256, after.Sha256);
        Assert.Equal(Good, after.Text);

        // JSON is a recipe too; an unknown model is a 404 that says what to do.
        var json = await PutRecipeAsync(s.Admin, "fmnist", """{"name": "j", "variants": [{"name": "f", "passes": ["fold-constants"]}]}""", "application/json");
        Assert.Equal("j", (await json.ReadAsync<RecipeDto>()).Name);
        var unknown = await PutRecipeAsync(s.Admin, "nosuch", Good);
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        Assert.Contains("push its first version", (await ProblemAsync(unknown)).Detail);

        Assert.Equal(HttpStatusCode.NoContent, (await s.Admin.DeleteAsync($"{Project}/models/fmnist/recipe")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await s.Admin.GetAsync($"{Project}/models/fmnist/recipe")).StatusCode);
    }

    [Theory]
    [MemberData(nameof(TestServer.Backends), MemberType = typeof(TestServer))]
    public async Task RegisteredEvaluationSetsBecomeNamesRecipesMayUse(string backend)
    {
        await using var s = await TestServer.StartAsync(backend, o => o.RunJobs = false);
        await RegistryTests.PushAsync(s.Admin, "fmnist", RegistryTests.FmnistCnn());
        string recipe = OnePass("quantize: { calibration: mine, samples: 20 }", evaluation: "mine");
        var before = await PutRecipeAsync(s.Admin, "fmnist", recipe);
        Assert.Equal("evaluation", (await ProblemAsync(before)).Field);
        Assert.Equal("variants[0].passes[1].calibration", (await ProblemAsync(await PutRecipeAsync(s.Admin, "fmnist", OnePass("quantize: { calibration: mine }")))).Field);

        var created = await (await CreateSetAsync(s.Admin, FashionMnistTensors("mine", 50))).ReadAsync<EvaluationSetDto>();
        Assert.Equal(50, created.Count);
        Assert.Equal([1, 28, 28], created.SampleShape);
        Assert.Equal(10, created.Classes);
        Assert.Equal(64, created.InputsSha256?.Length);
        var reference = await (await CreateSetAsync(s.Admin, new CreateEvaluationSetRequest { Name = "fmnist-500", Kind = EvaluationSetKinds.FashionMnist, Count = 500 })).ReadAsync<EvaluationSetDto>();
        Assert.Equal(500, reference.Count);
        Assert.Null(reference.InputsSha256);

        var ok = await (await PutRecipeAsync(s.Admin, "fmnist", recipe)).ReadAsync<RecipeDto>();
        Assert.Equal("mine", ok.Evaluation);
        var listed = await (await s.Admin.GetAsync($"{Project}/evaluation-sets")).ReadAsync<List<EvaluationSetDto>>();
        Assert.Equal(["fmnist-500", "mine"], listed.Select(x => x.Name));
    }

    [Theory]
    [MemberData(nameof(TestServer.Backends), MemberType = typeof(TestServer))]
    public async Task BadEvaluationSetsAreRefusedNamingTheField(string backend)
    {
        await using var s = await TestServer.StartAsync(backend, o => o.RunJobs = false);
        var good = FashionMnistTensors("good", 10);
        var shortLabels = FashionMnistTensors("x", 9) with { Inputs = good.Inputs, Name = "short" };
        (CreateEvaluationSetRequest Request, string Field, string Detail)[] bad =
        [
            (good with { Name = "fashion-mnist" }, "name", "built-in data set name"),
            (good with { Name = "a b" }, "name", "may contain only"),
            (good with { Inputs = "not base64!" }, "inputs", "not valid base64"),
            (good with { Inputs = Convert.ToBase64String([1, 2, 3, 250, 251]) }, "inputs", "not an ONNX TensorProto"),
            (good with { Labels = good.Inputs }, "labels", "it must be integer class indexes of shape [10]"),
            (shortLabels, "labels", "it must be integer class indexes of shape [10]"),
            (good with { Labels = null }, "labels", "labels is required for kind tensors"),
            (good with { Count = 11 }, "count", "count 11 is outside 1-10"),
            (good with { Kind = "images" }, "kind", "kind 'images' is not known; use fashion-mnist or tensors"),
            (new CreateEvaluationSetRequest { Name = "ref", Kind = EvaluationSetKinds.FashionMnist, Count = 0 }, "count", "count 0 is outside 1-10000"),
        ];
        foreach (var (request, field, detail) in bad)
        {
            var r = await CreateSetAsync(s.Admin, request);
            Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
            var problem = await ProblemAsync(r);
            Assert.Equal(field, problem.Field);
            Assert.Contains(detail, problem.Detail);
        }
        Assert.Empty(await (await s.Admin.GetAsync($"{Project}/evaluation-sets")).ReadAsync<List<EvaluationSetDto>>());

        Assert.Equal(HttpStatusCode.Created, (await CreateSetAsync(s.Admin, good)).StatusCode);
        var twice = await CreateSetAsync(s.Admin, good);
        Assert.Equal(HttpStatusCode.Conflict, twice.StatusCode);
        Assert.Contains("sets are immutable", (await ProblemAsync(twice)).Detail);
    }
}
