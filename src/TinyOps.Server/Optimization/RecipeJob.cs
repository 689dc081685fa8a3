using System.Security.Cryptography;
using TinyOps.Engine;
using TinyOps.Engine.Onnx;
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
/// its lineage. Latency is measured once everything is built, all models side by side in interleaved rounds (each
/// model's fastest round median), so the ratios that scale it to device classes hold on a busy machine. A variant that
/// fails to build is reported and the others still go on; variants already registered for the version (a resumed
/// job) are skipped.
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
        // Accuracy while building; latency afterwards, every model side by side (see MeasureLatencies).
        var runner = new RecipeRunner(recipe with { LatencyRuns = 0 }, new PassContext { DataSets = dataSets, Cancellation = ct });
        int n = recipe.Variants.Count, units = n + 2;

        // The base model first: its accuracy is what the gate compares with, its latency calibrates the per-class estimates.
        ctx.Report(0, $"evaluating the base model{(recipe.Evaluation is null ? "" : " on " + recipe.Evaluation)}");
        ModelEvaluation baseline;
        try { baseline = await Task.Run(() => runner.Baseline(baseBytes, baseName) ?? Measure(baseBytes, baseName, dataSets), ct); }
        catch (Exception e) when (e is ArgumentException or EngineException or InvalidDataException or IOException)
        {
            throw new JobException($"evaluating the base model {baseName}{(recipe.Evaluation is null ? "" : " on " + recipe.Evaluation)} failed, so no variant was built: {e.Message}");
        }

        var built = new List<(RecipeVariant Variant, VariantResult Result, ModelEvaluation Evaluation)>();
        var skipped = new List<string>();
        var failures = new List<string>();
        for (int i = 0; i < n; i++)
        {
            ct.ThrowIfCancellationRequested();
            var rv = recipe.Variants[i];
            int unit = i + 1;
            if (existing.Any(v => v.Name == rv.Name))
            {
                skipped.Add(rv.Name);
                continue;
            }
            ctx.Report(100 * unit / units, $"variant {i + 1}/{n} '{rv.Name}'");
            try
            {
                int index = i;
                built.Add(await Task.Run(() =>
                {
                    var r = runner.BuildVariant(baseBytes, baseName, index,
                        p => ctx.Report(100 * (unit * p.Steps + p.Step) / (units * Math.Max(1, p.Steps)), $"variant {index + 1}/{n} '{p.Variant}': {p.Message}"));
                    return (rv, r, r.Evaluation ?? Measure(r.Bytes, rv.Name, dataSets));
                }, ct));
            }
            catch (Exception e) when (e is RecipeException or ArgumentException or EngineException or InvalidDataException)
            {
                failures.Add($"variant '{rv.Name}': {e.Message}");
            }
        }

        double?[] latencies = new double?[built.Count + 1];
        if (recipe.LatencyRuns > 0)
        {
            ctx.Report(100 * (n + 1) / units, $"measuring the latency of {built.Count + 1} models side by side ({LatencyRounds} rounds of {recipe.LatencyRuns} runs)");
            latencies = await Task.Run(() => ModelEvaluator.InterleavedMedianLatencies(
                [OnnxLoader.Load(baseBytes, baseName), .. built.Select(b => OnnxLoader.Load(b.Result.Bytes, b.Variant.Name))], recipe.LatencyRuns, LatencyRounds, cancellation: ct), ct);
        }
        baseline = WithLatency(baseline, latencies[0], recipe.LatencyRuns);
        double? hostRate = baseline.LatencyMedianMicros is { } l && baseline.Macs > 0 ? DeviceProfile.HostMacsPerSecond(baseline.Macs, l) : null;
        var baseEvaluation = VariantEvaluations.From(baseline, hostRate, null, null);
        await registry.RecordEvaluationAsync(actor, job.Project, baseVariant.Id, baseEvaluation, VariantEvaluations.Metrics(baseEvaluation), ct);

        ctx.Report(100 * (n + 1) / units + 1, $"registering {built.Count} variants");
        int accepted = 0, rejected = 0;
        for (int k = 0; k < built.Count; k++)
        {
            var (rv, result, measured) = built[k];
            measured = WithLatency(measured, latencies[k + 1], recipe.LatencyRuns);
            var evaluation = VariantEvaluations.From(measured, hostRate, baseline.Accuracy, result.AccuracyDrop);
            var (status, reason) = QualityGate.Decide(rv.Name, rv.MaxAccuracyDrop, result.AccuracyDrop, baseline.Accuracy, measured.Accuracy, recipe.Evaluation);
            var upload = new VariantUpload(rv.Name, baseVariant.Id, recipe.Name, Parameters(rv, recipeSha), VariantEvaluations.Metrics(evaluation), status, reason)
            {
                Lineage = Lineage(rv, baseVariant, job, recipe.Name, recipeSha),
                Evaluation = evaluation,
            };
            try
            {
                await registry.AddVariantAsync(actor, job.Project, job.Model, job.Version, upload, result.Bytes, ct);
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
            throw new JobException($"{failures.Count} of {n} variants failed: {string.Join("; ", failures)} ({summary})");
        return summary;
    }

    /// <summary>Rounds of the side-by-side latency measurement; each model's fastest round counts.</summary>
    public const int LatencyRounds = 5;

    private static ModelEvaluation WithLatency(ModelEvaluation e, double? latency, int runs) =>
        latency is null ? e : e with { LatencyMedianMicros = latency, LatencyRuns = runs };

    private static VariantLineageDto Lineage(RecipeVariant rv, VariantDto baseVariant, ClaimedJob job, string recipe, string recipeSha) => new()
    {
        BaseVariantId = baseVariant.Id,
        BaseVersion = job.Version,
        Recipe = recipe,
        RecipeSha256 = recipeSha,
        Variant = rv.Name,
        Passes = rv.Passes.Select(p => new PassDto(p.Pass, new Dictionary<string, string>(p.Parameters, StringComparer.Ordinal))).ToList(),
        Targets = rv.Targets,
        MaxAccuracyDrop = rv.MaxAccuracyDrop,
        EngineVersion = EngineInfo.Version,
        JobId = job.Id,
    };

    /// <summary>The flat parameters older clients show (the registry's "param" pairs).</summary>
    private static Dictionary<string, string> Parameters(RecipeVariant rv, string recipeSha)
    {
        var parameters = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["passes"] = string.Join(" -> ", rv.Passes.Select(p => p.ToString())),
            ["recipe_sha256"] = recipeSha,
            ["engine"] = EngineInfo.Version,
        };
        if (rv.Targets.Count > 0) parameters["targets"] = string.Join(",", rv.Targets);
        return parameters;
    }

    /// <summary>Size, operators and peak memory of a model when the recipe names no evaluation set (latency comes later).</summary>
    private static ModelEvaluation Measure(byte[] bytes, string name, DataSets dataSets) =>
        ModelEvaluator.Evaluate(bytes, name, new EvaluationOptions { DataSet = null, LatencyRuns = 0 }, dataSets);

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
