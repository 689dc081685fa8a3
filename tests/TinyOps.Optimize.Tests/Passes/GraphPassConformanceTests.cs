using TinyOps.Engine.Conformance;
using TinyOps.Engine.Onnx;
using TinyOps.Optimize.Passes;
using Xunit;
using Xunit.Abstractions;

namespace TinyOps.Optimize.Tests.Passes;

/// <summary>
/// Every graph pass over every ONNX conformance test the engine runs (about a thousand models): the pass's output
/// is written as ONNX, read back and run on the test's inputs. Constant folding, dead-node removal and activation
/// fusion must give bit-identical outputs; BatchNormalization folding must stay within ONNX's own tolerance of the
/// expected outputs (rtol 1e-3, atol 1e-5), and is bit-identical where it folds nothing.
/// </summary>
public sealed class GraphPassConformanceTests(ITestOutputHelper output)
{
    public static TheoryData<string> Passes() => ["fold-constants", "remove-dead-nodes", "fuse-activations", "fold-batchnorm"];

    [Theory]
    [MemberData(nameof(Passes))]
    public void PassKeepsEveryConformanceOutput(string passName)
    {
        var pass = TinyOps.Optimize.Recipes.PassCatalog.Create(new TinyOps.Optimize.Recipes.PassSpec(passName, new Dictionary<string, string>()), "test");
        var cases = ConformanceSuites.Cases.Value;
        Assert.True(cases.Count > 500, $"only {cases.Count} conformance tests run in the engine; is ../shared/onnx complete?");
        var failures = new List<string>();
        int changed = 0;
        foreach (var c in cases)
        {
            var outcome = pass.Run(c.Model, PassContext.Default);
            var bytes = OnnxWriter.Write(outcome.Model);
            if (!bytes.AsSpan().SequenceEqual(OnnxWriter.Write(c.Model))) changed++;
            var after = ConformanceSuites.Run(OnnxLoader.Load(bytes, c.Id), c.Inputs);
            if (after is null) { failures.Add($"{c.Id}: the rewritten model no longer runs"); continue; }
            for (int i = 0; i < after.Length; i++)
            {
                bool exact = ConformanceSuites.BitIdentical(after[i], c.Actual[i]);
                if (exact) continue;
                if (passName == "fold-batchnorm" && outcome.Details.Count > 0 && i < c.Expected.Length
                    && OnnxTestRunner.Compare(after[i], c.Expected[i], OnnxTestRunner.DefaultRtol, OnnxTestRunner.DefaultAtol) is null) continue;
                failures.Add($"{c.Id} output {i}: {OnnxTestRunner.Compare(after[i], c.Actual[i], 0, 0) ?? "differs"}");
            }
        }
        output.WriteLine($"{passName}: {cases.Count} conformance models, {changed} rewritten, {failures.Count} failures");
        Assert.True(failures.Count == 0, $"{passName}: {failures.Count} of {cases.Count} conformance models changed their outputs:\n" + string.Join("\n", failures.Take(20)));
    }
}
