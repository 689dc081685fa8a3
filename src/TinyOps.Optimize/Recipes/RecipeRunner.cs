using TinyOps.Engine.Ir;
using TinyOps.Engine.Onnx;
using TinyOps.Optimize.Evaluation;
using TinyOps.Optimize.Passes;

namespace TinyOps.Optimize.Recipes;

/// <summary>Progress of a variant build: pass <see cref="Step"/> of <see cref="Steps"/> (the last step is the evaluation).</summary>
public sealed record RecipeProgress(int VariantIndex, string Variant, int Step, int Steps, string Message);

/// <summary>One built variant: the model and its bytes, what each pass did, and its evaluation against the accuracy budget.</summary>
public sealed record VariantResult
{
    public required RecipeVariant Variant { get; init; }
    public required Model Model { get; init; }
    public required byte[] Bytes { get; init; }
    public required IReadOnlyList<PassOutcome> Passes { get; init; }
    public ModelEvaluation? Evaluation { get; init; }
    /// <summary>Base accuracy minus this variant's, in percentage points (null without an evaluation set).</summary>
    public double? AccuracyDrop { get; init; }
    /// <summary>Whether <see cref="AccuracyDrop"/> is within the variant's max_accuracy_drop (null without an evaluation set).</summary>
    public bool? WithinBudget { get; init; }
}

/// <summary>
/// Builds the variants of a <see cref="Recipe"/> from a base model: applies each variant's passes in order, writes the
/// ONNX bytes, and (when the recipe names an evaluation set) measures the variant and checks its accuracy drop against
/// the base model's. A library API: the CLI builds every variant into a folder, the server (later) runs one variant
/// per background job. Not thread-safe; use one runner per thread.
/// </summary>
public sealed class RecipeRunner
{
    private readonly Recipe _recipe;
    private readonly PassContext _context;
    private ModelEvaluation? _baseline;

    public RecipeRunner(Recipe recipe, PassContext? context = null)
    {
        _recipe = recipe;
        _context = context ?? PassContext.Default;
    }

    public Recipe Recipe => _recipe;

    /// <summary>Record the recipe, variant and targets in the model's metadata (tinyops.recipe, tinyops.variant, tinyops.targets); default on.</summary>
    public bool StampVariant { get; init; } = true;

    /// <summary>The base model's evaluation (computed once, on the first call), or null when the recipe names no evaluation set.</summary>
    public ModelEvaluation? Baseline(byte[] baseBytes, string name)
    {
        if (_recipe.Evaluation is null) return null;
        return _baseline ??= ModelEvaluator.Evaluate(baseBytes, name, Options(), _context.DataSets);
    }

    /// <summary>Builds variant <paramref name="index"/> (0-based) from the base model's file bytes.</summary>
    public VariantResult BuildVariant(byte[] baseBytes, string baseName, int index, Action<RecipeProgress>? progress = null)
    {
        if (index < 0 || index >= _recipe.Variants.Count)
            throw new ArgumentOutOfRangeException(nameof(index), index, $"the recipe {_recipe.Source} has {_recipe.Variants.Count} variants");
        var variant = _recipe.Variants[index];
        int steps = variant.Passes.Count + (_recipe.Evaluation is null ? 0 : 1);
        var model = OnnxLoader.Load(baseBytes, baseName);
        var outcomes = new List<PassOutcome>();
        for (int i = 0; i < variant.Passes.Count; i++)
        {
            _context.Cancellation.ThrowIfCancellationRequested();
            var spec = variant.Passes[i];
            string where = $"{_recipe.Source}: variant '{variant.Name}', pass {i + 1} '{spec.Pass}'";
            progress?.Invoke(new RecipeProgress(index, variant.Name, i, steps, $"{spec}"));
            var pass = PassCatalog.Create(spec, where, _context.DataSets);
            try
            {
                var outcome = pass.Run(model, _context);
                outcomes.Add(outcome);
                model = outcome.Model;
            }
            catch (Exception e) when (e is PassException or Quantization.QuantizationException or Engine.EngineException or ArgumentException)
            {
                throw new RecipeException($"{where} failed on {baseName}: {e.Message}", e);
            }
        }
        if (StampVariant)
        {
            model.Metadata["tinyops.variant"] = variant.Name;
            model.Metadata["tinyops.recipe"] = _recipe.Name;
            if (variant.Targets.Count > 0) model.Metadata["tinyops.targets"] = string.Join(",", variant.Targets);
        }
        var bytes = OnnxWriter.Write(model);
        ModelEvaluation? evaluation = null;
        double? drop = null;
        bool? within = null;
        if (_recipe.Evaluation is not null)
        {
            progress?.Invoke(new RecipeProgress(index, variant.Name, variant.Passes.Count, steps, "evaluating"));
            var baseline = Baseline(baseBytes, baseName)!;
            evaluation = ModelEvaluator.Evaluate(bytes, variant.Name, Options(), _context.DataSets);
            drop = (baseline.Accuracy!.Value - evaluation.Accuracy!.Value) * 100;
            within = drop <= variant.MaxAccuracyDrop + 1e-9;
        }
        progress?.Invoke(new RecipeProgress(index, variant.Name, steps, steps, "done"));
        return new VariantResult { Variant = variant, Model = model, Bytes = bytes, Passes = outcomes, Evaluation = evaluation, AccuracyDrop = drop, WithinBudget = within };
    }

    private EvaluationOptions Options() => new() { DataSet = _recipe.Evaluation, LatencyRuns = _recipe.LatencyRuns };
}
