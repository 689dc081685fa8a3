using System.Security.Cryptography;
using TinyOps.Engine;
using TinyOps.Optimize.Evaluation;
using TinyOps.Optimize.Passes;
using TinyOps.Optimize.Recipes;
using TinyOps.Protocol.Devices;
using TinyOps.Protocol.Management;
using TinyOps.Server.Hosting;
using TinyOps.Server.Jobs;
using TinyOps.Server.Registry;
using TinyOps.Server.Storage;

namespace TinyOps.Server.Optimization;

/// <summary>
/// The "recipe" job: builds every variant of a model's recipe from a version's base model, evaluates the base and
/// each variant (accuracy on the recipe's evaluation set, size, operators, planned peak memory, latency here and
/// estimated per device class), gates each on its accuracy budget and registers it (signed, content-addressed) with
/// its lineage. A variant that fails to build is reported and the others still go on; variants already registered
/// for the version (a resumed job) are skipped.
/// </summary>
public sealed class RecipeJob(RegistryService registry, VariantQueries variants, EvaluationSetStore sets, BlobStore blobs) : IJobHandler
{
    public const string JobKind = "recipe";

    public string Kind => JobKind;

    public async Task<string> RunAsync(JobContext ctx)
    {
        var job = ctx.Job;
        var ct = ctx.Cancellation;
        var (recipeName, recipeSha, text) = RecipeStore.ReadPayload(job.PayloadJson);
        var dataSets = await sets.DataSetsAsync(job.Project, ct);
        Recipe recipe;
        try { recipe = RecipeParser.Parse(text, RecipeStore.Source(job.Model), dataSets); }
        catch (RecipeException e) { throw new JobException($"the recipe queued with this job no longer validates: {e.Message}"); }

        var existing = await variants.VariantsOfVersionAsync(job.Project, job.Model, job.Version, ct: ct);
        var baseVariant = existing.FirstOrDefault(v => v.ParentId is null && v.Name == RegistryService.BaseVariant)
            ?? throw new JobException($"version '{job.Version}' of model '{job.Model}' has no base variant to optimize");
        byte[] baseBytes = await ReadArtifactAsync(baseVariant, ct);
        string baseName = $"{job.Model}:{job.Version}";
        string actor = "job:" + job.Id;
        var runner = new RecipeRunner(recipe, new PassContext { DataSets = dataSets, Cancellation = ct });
        int units = recipe.Variants.Count + 1;

        // The base model first: its accuracy is what the gate compares with, its latency calibrates the per-class estimates.
        ctx.Report(0, $"evaluating the base model{(recipe.Evaluation is null ? "" : " on " + recipe.Evaluation)}");
        ModelEvaluation baseline;
        try { baseline = await Task.Run(() => runner.Baseline(baseBytes, baseName) ?? Measure(baseBytes, baseName, recipe, dataSets), ct); }
        catch (Exception e) when (e is ArgumentException or EngineException or InvalidDataException or IOException)
        {
            throw new JobException($"evaluating the base model {baseName}{(recipe.Evaluation is null ? "" : " on " + recipe.Evaluation)} failed, so no variant was built: {e.Message}");
        }
        double? hostRate = baseline.LatencyMedianMicros is { } l && baseline.Macs > 0 ? DeviceProfile.HostMacsPerSecond(baseline.Macs, l) : null;
        var baseEvaluation = VariantEvaluations.From(baseline, hostRate, null, null);
        await registry.RecordEvaluationAsync(actor, job.Project, baseVariant.Id, baseEvaluation, VariantEvaluations.Metrics(baseEvaluation), ct);

        int accepted = 0, rejected = 0;
        var skipped = new List<string>();
        var failures = new List<string>();
        for (int i = 0; i < recipe.Variants.Count; i++)
        {
            ct.ThrowIfCancellationRequested();
            var rv = recipe.Variants[i];
            int unit = i + 1;
            if (existing.Any(v => v.Name == rv.Name))
            {
                skipped.Add(rv.Name);
                continue;
            }
            ctx.Report(100 * unit / units, $"variant {i + 1}/{recipe.Variants.Count} '{rv.Name}'");
            VariantResult built;
            ModelEvaluation measured;
            try
            {
                int index = i;
                (built, measured) = await Task.Run(() =>
                {
                    var r = runner.BuildVariant(baseBytes, baseName, index,
                        p => ctx.Report(100 * (unit * p.Steps + p.Step) / (units * Math.Max(1, p.Steps)), $"variant {index + 1}/{recipe.Variants.Count} '{p.Variant}': {p.Message}"));
                    return (r, r.Evaluation ?? Measure(r.Bytes, rv.Name, recipe, dataSets));
                }, ct);
            }
            catch (Exception e) when (e is RecipeException or ArgumentException or EngineException or InvalidDataException)
            {
                failures.Add($"variant '{rv.Name}': {e.Message}");
                continue;
            }
            var evaluation = VariantEvaluations.From(measured, hostRate, baseline.Accuracy, built.AccuracyDrop);
            var (status, reason) = QualityGate.Decide(rv.Name, rv.MaxAccuracyDrop, built.AccuracyDrop, baseline.Accuracy, measured.Accuracy, recipe.Evaluation);
            var lineage = new VariantLineageDto
            {
                BaseVariantId = baseVariant.Id,
                BaseVersion = job.Version,
                Recipe = recipe.Name,
                RecipeSha256 = recipeSha,
                Variant = rv.Name,
                Passes = rv.Passes.Select(p => new PassDto(p.Pass, new Dictionary<string, string>(p.Parameters, StringComparer.Ordinal))).ToList(),
                Targets = rv.Targets,
                MaxAccuracyDrop = rv.MaxAccuracyDrop,
                EngineVersion = EngineInfo.Version,
                JobId = job.Id,
            };
            var parameters = new Dictionary<string, string>(StringComparer.Ordinal)
            {
                ["passes"] = string.Join(" -> ", rv.Passes.Select(p => p.ToString())),
                ["recipe_sha256"] = recipeSha,
                ["engine"] = EngineInfo.Version,
            };
            if (rv.Targets.Count > 0) parameters["targets"] = string.Join(",", rv.Targets);
            var upload = new VariantUpload(rv.Name, baseVariant.Id, recipe.Name, parameters, VariantEvaluations.Metrics(evaluation), status, reason)
            {
                Lineage = lineage,
                Evaluation = evaluation,
            };
            try
            {
                await registry.AddVariantAsync(actor, job.Project, job.Model, job.Version, upload, built.Bytes, ct);
            }
            catch (ApiException e)
            {
                failures.Add($"variant '{rv.Name}': registering it failed: {e.Message}");
                continue;
            }
            if (status == QualityGate.Accepted) accepted++;
            else rejected++;
        }

        string summary = $"recipe '{recipeName}' on {baseName}: {accepted + rejected} variants registered ({accepted} accepted, {rejected} rejected by the accuracy gate)"
            + (skipped.Count == 0 ? "" : $"; already registered, skipped: {string.Join(", ", skipped)}");
        if (failures.Count > 0)
            throw new JobException($"{failures.Count} of {recipe.Variants.Count} variants failed: {string.Join("; ", failures)} ({summary})");
        return summary;
    }

    /// <summary>Size, operators, peak memory and latency of a model when the recipe names no evaluation set.</summary>
    private static ModelEvaluation Measure(byte[] bytes, string name, Recipe recipe, DataSets dataSets) =>
        ModelEvaluator.Evaluate(bytes, name, new EvaluationOptions { DataSet = null, LatencyRuns = recipe.LatencyRuns }, dataSets);

    private async Task<byte[]> ReadArtifactAsync(VariantDto v, CancellationToken ct)
    {
        if (!blobs.Exists(v.ArtifactSha256))
            throw new JobException($"the artifact {v.ArtifactSha256} of variant {v.Id} is missing from the blob store");
        var bytes = await File.ReadAllBytesAsync(blobs.PathOf(v.ArtifactSha256), ct);
        if (Convert.ToHexStringLower(SHA256.HashData(bytes)) != v.ArtifactSha256)
            throw new JobException($"the artifact of variant {v.Id} does not match its digest {v.ArtifactSha256} (corrupted on disk); push the version again");
        return bytes;
    }
}
