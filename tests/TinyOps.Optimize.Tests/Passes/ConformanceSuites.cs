using TinyOps.Engine;
using TinyOps.Engine.Ir;
using TinyOps.Engine.Onnx;
using TinyOps.Engine.Runtime;
using TinyOps.Engine.Tensors;

namespace TinyOps.Optimize.Tests.Passes;

/// <summary>One ONNX conformance test the engine passes: its model, inputs, expected outputs and the engine's outputs.</summary>
internal sealed record ConformanceCase(string Id, Model Model, Tensor[] Inputs, Tensor[] Expected, Tensor[] Actual);

/// <summary>
/// Loads every test of the ONNX conformance suites (../shared/onnx: node, pytorch-converted, pytorch-operator, simple)
/// whose first data set the engine runs, with the engine's outputs, for checking that a pass keeps them.
/// </summary>
internal static class ConformanceSuites
{
    public static readonly Lazy<List<ConformanceCase>> Cases = new(Load);

    private static List<ConformanceCase> Load()
    {
        var list = new List<ConformanceCase>();
        foreach (var suite in new[] { "node", "pytorch-converted", "pytorch-operator", "simple" })
        {
            string root = Path.Combine(TestPaths.Shared, "onnx", suite);
            if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"ONNX conformance data missing at {root}");
            foreach (var dir in Directory.GetDirectories(root).Order(StringComparer.Ordinal))
            {
                string set = Path.Combine(dir, "test_data_set_0");
                if (!File.Exists(Path.Combine(dir, "model.onnx")) || !Directory.Exists(set)) continue;
                try
                {
                    var model = OnnxLoader.LoadFile(Path.Combine(dir, "model.onnx"));
                    var inputs = Read(set, "input_");
                    var expected = Read(set, "output_");
                    var actual = Run(model, inputs);
                    if (actual is null) continue;
                    list.Add(new ConformanceCase(suite + "/" + Path.GetFileName(dir), model, inputs, expected, actual));
                }
                catch (EngineException) { }
                catch (Google.Protobuf.InvalidProtocolBufferException) { }
            }
        }
        return list;
    }

    /// <summary>The model's outputs on the inputs, or null when the engine cannot run it.</summary>
    public static Tensor[]? Run(Model model, Tensor[] inputs)
    {
        try
        {
            var session = new InferenceSession(model);
            if (session.Inputs.Count != inputs.Length) return null;
            var feed = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            for (int i = 0; i < inputs.Length; i++) feed[session.Inputs[i].Name] = inputs[i];
            var outs = session.Run(feed);
            return session.Outputs.Select(o => outs[o.Name]).ToArray();
        }
        catch (EngineException) { return null; }
    }

    private static Tensor[] Read(string dir, string prefix)
    {
        var list = new List<Tensor>();
        for (int i = 0; File.Exists(Path.Combine(dir, $"{prefix}{i}.pb")); i++)
            list.Add(OnnxTensors.ReadPb(File.ReadAllBytes(Path.Combine(dir, $"{prefix}{i}.pb")), dir));
        return [.. list];
    }

    /// <summary>True when the tensors have the same type, shape and bytes (NaN payloads included).</summary>
    public static bool BitIdentical(Tensor a, Tensor b) =>
        a.Type == b.Type && a.Shape.AsSpan().SequenceEqual(b.Shape) && a.Bytes.SequenceEqual(b.Bytes);
}
