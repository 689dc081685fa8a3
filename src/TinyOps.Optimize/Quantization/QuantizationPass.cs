using TinyOps.Engine.Ir;
using TinyOps.Optimize.Passes;

namespace TinyOps.Optimize.Quantization;

/// <summary>
/// The quantize pass of recipes and `tinyops optimize --quantize`: static int8 (calibrated on a named data set from
/// the <see cref="PassContext"/>, QOperator or QDQ form) or dynamic int8 (no calibration).
/// </summary>
public sealed class QuantizationPass : IModelPass
{
    /// <summary>Static int8 with <paramref name="options"/>, calibrated on <paramref name="calibrationSet"/> (<paramref name="count"/> samples, null: its default).</summary>
    public static QuantizationPass Static(QuantizationOptions options, string calibrationSet, int? count) => new(options, null, calibrationSet, count);

    public static QuantizationPass Dynamic(DynamicQuantizationOptions options) => new(null, options, null, null);

    private QuantizationPass(QuantizationOptions? staticOptions, DynamicQuantizationOptions? dynamicOptions, string? set, int? count)
    {
        StaticOptions = staticOptions;
        DynamicOptions = dynamicOptions;
        CalibrationSet = set;
        CalibrationCount = count;
    }

    public QuantizationOptions? StaticOptions { get; }
    public DynamicQuantizationOptions? DynamicOptions { get; }
    public string? CalibrationSet { get; }
    public int? CalibrationCount { get; }
    public string Name => "quantize";

    public PassOutcome Run(Model model, PassContext context)
    {
        if (DynamicOptions is not null)
        {
            var (m, report) = DynamicQuantizer.Quantize(model, DynamicOptions);
            return PassOutcome.Of(m, "dynamic int8: " + report, report.Warnings.Select(w => "warning: " + w));
        }
        var set = context.DataSets.Calibration(CalibrationSet!, model, CalibrationCount);
        context.Report($"calibrating on {set.Description}...");
        var result = StaticQuantizer.Quantize(model, set, StaticOptions);
        // no tinyops.passes entry: the quantizer's own tinyops.quantization metadata says what was done, and the file
        // stays byte for byte what StaticQuantizer writes (bench/run-int8.sh and the int8 kernels rely on that format)
        return PassOutcome.Of(result.Model, $"static int8 ({StaticOptions!.Format}, {result.Report.Calibration}): {result.Report}", result.Report.Warnings.Select(w => "warning: " + w));
    }
}
