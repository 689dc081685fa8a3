using System.Text.Json;
using TinyOps.Optimize.Evaluation;

namespace TinyOps.Optimize.Recipes;

/// <summary>Writes what a recipe run built as JSON (report.json beside the variants): the base model and each variant with its evaluation.</summary>
public static class RecipeReport
{
    public static byte[] ToJson(Recipe recipe, string baseModel, ModelEvaluation? baseline, IReadOnlyList<VariantResult> variants)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("recipe", recipe.Name);
            w.WriteString("source", recipe.Source);
            w.WriteString("base_model", baseModel);
            if (recipe.Evaluation is { } e) w.WriteString("evaluation", e);
            if (baseline is not null) { w.WritePropertyName("base"); WriteEvaluation(w, baseline); }
            w.WriteStartArray("variants");
            foreach (var v in variants)
            {
                w.WriteStartObject();
                w.WriteString("name", v.Variant.Name);
                w.WriteStartArray("targets");
                foreach (var t in v.Variant.Targets) w.WriteStringValue(t);
                w.WriteEndArray();
                w.WriteStartArray("passes");
                foreach (var p in v.Variant.Passes) w.WriteStringValue(p.ToString());
                w.WriteEndArray();
                w.WriteStartArray("pass_results");
                foreach (var p in v.Passes) w.WriteStringValue(p.Summary);
                w.WriteEndArray();
                w.WriteNumber("max_accuracy_drop", v.Variant.MaxAccuracyDrop);
                if (v.AccuracyDrop is { } d) w.WriteNumber("accuracy_drop", Math.Round(d, 4));
                if (v.WithinBudget is { } ok) w.WriteBoolean("within_budget", ok);
                if (v.Evaluation is not null) { w.WritePropertyName("evaluation"); WriteEvaluation(w, v.Evaluation); }
                else w.WriteNumber("file_bytes", v.Bytes.LongLength);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return ms.ToArray();
    }

    public static void WriteEvaluation(Utf8JsonWriter w, ModelEvaluation e)
    {
        w.WriteStartObject();
        w.WriteNumber("file_bytes", e.FileBytes);
        if (e.Accuracy is { } a) w.WriteNumber("accuracy", a);
        w.WriteNumber("evaluated_images", e.EvaluatedImages);
        if (e.LatencyMedianMicros is { } l) { w.WriteNumber("latency_p50_us", Math.Round(l, 2)); w.WriteNumber("latency_runs", e.LatencyRuns); }
        w.WriteNumber("planned_peak_bytes", e.PlannedPeakBytes);
        w.WriteNumber("parameters", e.Parameters);
        w.WriteNumber("macs", e.Macs);
        w.WriteNumber("weight_sparsity", Math.Round(e.WeightSparsity, 4));
        w.WriteStartObject("operators");
        foreach (var (op, n) in e.Operators) w.WriteNumber(op, n);
        w.WriteEndObject();
        w.WriteEndObject();
    }
}
