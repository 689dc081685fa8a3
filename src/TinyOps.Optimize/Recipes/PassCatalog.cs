using TinyOps.Optimize.Evaluation;
using TinyOps.Optimize.Passes;
using TinyOps.Optimize.Pruning;
using TinyOps.Optimize.Quantization;

namespace TinyOps.Optimize.Recipes;

/// <summary>
/// Every pass a recipe (or `tinyops optimize`) can name, with its parameters:
/// <list type="table">
/// <item><term>fold-constants</term><description>constant folding (no parameters)</description></item>
/// <item><term>remove-dead-nodes</term><description>dead-node removal</description></item>
/// <item><term>fold-batchnorm</term><description>BatchNormalization folding into Conv/Gemm</description></item>
/// <item><term>fuse-activations</term><description>Conv/Gemm + activation → com.microsoft FusedConv/FusedGemm</description></item>
/// <item><term>quantize</term><description>mode static-int8|dynamic-int8; format qoperator|qdq; calibration fashion-mnist|random;
/// samples N; method minmax|percentile|entropy; percentile P; per_channel; reduce_range</description></item>
/// <item><term>prune</term><description>sparsity in [0, 1); scope layer|global</description></item>
/// <item><term>prune-channels</term><description>ratio in [0, 1)</description></item>
/// <item><term>float16-weights</term><description>min_elements (default 16): float32 weights stored as float16 + Cast</description></item>
/// </list>
/// </summary>
public static class PassCatalog
{
    public static readonly IReadOnlyList<string> Names = ["fold-constants", "remove-dead-nodes", "fold-batchnorm", "fuse-activations", "quantize", "prune", "prune-channels", "float16-weights"];

    /// <summary>
    /// Builds the pass a spec names, checking every parameter; errors start with <paramref name="where"/> and carry
    /// <paramref name="field"/> (the pass's path in its recipe, e.g. variants[0].passes[1]). Calibration sets are checked
    /// against <paramref name="sets"/> (default: the built-ins).
    /// </summary>
    public static IModelPass Create(PassSpec spec, string where, DataSets? sets = null, string? field = null)
    {
        var p = new PassParameters(spec, where, field);
        IModelPass pass = spec.Pass switch
        {
            "fold-constants" => new ConstantFolding(),
            "remove-dead-nodes" => new DeadNodeRemoval(),
            "fold-batchnorm" => new BatchNormFolding(),
            "fuse-activations" => new ActivationFusion(),
            "quantize" => Quantize(p, sets),
            "prune" => Prune(p),
            "prune-channels" => new ChannelPruning(p.Number("ratio", 0.25, 0, 1, maxExclusive: true)),
            "float16-weights" => new Float16Weights { MinElements = p.Integer("min_elements", 16, 1, int.MaxValue) },
            _ => throw new RecipeException($"{where}: unknown pass '{spec.Pass}'; the passes are: {string.Join(", ", Names)}") { Field = field },
        };
        p.CheckAllUsed();
        return pass;
    }

    private static MagnitudePruning Prune(PassParameters p)
    {
        double sparsity = p.Number("sparsity", double.NaN, 0, 1, maxExclusive: true);
        if (double.IsNaN(sparsity)) throw p.Error("sparsity", "is missing; give the fraction of weights to set to zero, e.g. sparsity: 0.5");
        var scope = p.Choice("scope", "global", ["global", "layer"]) == "layer" ? PruningScope.Layer : PruningScope.Global;
        return new MagnitudePruning(sparsity, scope);
    }

    private static QuantizationPass Quantize(PassParameters p, DataSets? sets)
    {
        string mode = p.Choice("mode", "static-int8", ["static-int8", "dynamic-int8"]);
        bool perChannel = p.Bool("per_channel", true);
        bool reduceRange = p.Bool("reduce_range", true);
        if (mode == "dynamic-int8")
            return QuantizationPass.Dynamic(new DynamicQuantizationOptions { PerChannel = perChannel, ReduceRange = reduceRange });
        string format = p.Choice("format", "qoperator", ["qoperator", "qdq"]);
        string set = p.Choice("calibration", "fashion-mnist", sets?.CalibrationNames ?? DataSets.Names);
        int? samples = p.OptionalInteger("samples", 1, 60_000);
        string method = p.Choice("method", "minmax", ["minmax", "percentile", "entropy"]);
        double percentile = p.Number("percentile", 99.99, 50, 100);
        var options = new QuantizationOptions
        {
            Format = format == "qdq" ? QuantizationFormat.Qdq : QuantizationFormat.QOperator,
            Calibration = method switch { "percentile" => CalibrationMethod.Percentile, "entropy" => CalibrationMethod.Entropy, _ => CalibrationMethod.MinMax },
            Percentile = percentile,
            PerChannel = perChannel,
            ReduceRange = reduceRange,
        };
        return QuantizationPass.Static(options, set, samples);
    }
}
