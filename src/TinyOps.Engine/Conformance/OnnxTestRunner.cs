using TinyOps.Engine.Onnx;
using TinyOps.Engine.Runtime;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Conformance;

/// <summary>
/// Runs folders in ONNX's backend test layout (model.onnx plus test_data_set_N/input_i.pb and output_j.pb) and
/// compares each output element-wise: |actual - expected| &lt;= atol + rtol * |expected|, exact for integers.
/// </summary>
public static class OnnxTestRunner
{
    public const double DefaultRtol = 1e-3;
    public const double DefaultAtol = 1e-5;

    /// <summary>Every folder under the given roots (or the roots themselves) that holds a model.onnx.</summary>
    public static List<string> FindTests(IEnumerable<string> roots)
    {
        var found = new List<string>();
        foreach (var root in roots)
        {
            if (File.Exists(Path.Combine(root, "model.onnx"))) { found.Add(root); continue; }
            if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"{root}: no such folder");
            foreach (var dir in Directory.EnumerateDirectories(root, "*", SearchOption.AllDirectories))
                if (File.Exists(Path.Combine(dir, "model.onnx"))) found.Add(dir);
        }
        found.Sort(StringComparer.Ordinal);
        return found;
    }

    public static ConformanceResult Run(string dir, double rtol = DefaultRtol, double atol = DefaultAtol, SessionOptions? options = null)
    {
        string name = Path.GetFileName(Path.TrimEndingDirectorySeparator(dir));
        try
        {
            var session = InferenceSession.Load(Path.Combine(dir, "model.onnx"), options);
            var sets = Directory.GetDirectories(dir, "test_data_set_*").OrderBy(d => d, StringComparer.Ordinal).ToArray();
            if (sets.Length == 0) return new(name, ConformanceStatus.Skipped, "no test_data_set_* folder");
            foreach (var set in sets)
            {
                var inputs = ReadIndexed(set, "input_");
                var expected = ReadIndexed(set, "output_");
                if (inputs.Count != session.Inputs.Count)
                    return new(name, ConformanceStatus.Failed, $"{Path.GetFileName(set)} has {inputs.Count} inputs, the model takes {session.Inputs.Count}");
                var feed = new Dictionary<string, Tensor>(StringComparer.Ordinal);
                for (int i = 0; i < inputs.Count; i++) feed[session.Inputs[i].Name] = inputs[i];
                var outputs = session.Run(feed);
                for (int j = 0; j < expected.Count && j < session.Outputs.Count; j++)
                {
                    var actual = outputs[session.Outputs[j].Name];
                    string? diff = Compare(actual, expected[j], rtol, atol);
                    if (diff is not null)
                        return new(name, ConformanceStatus.Failed, $"{Path.GetFileName(set)} output {j} ('{session.Outputs[j].Name}'): {diff}");
                }
            }
            return new(name, ConformanceStatus.Passed, "");
        }
        catch (UnsupportedTypeException e) { return new(name, ConformanceStatus.Skipped, "type: " + e.Message); }
        catch (UnsupportedOperatorException e) { return new(name, ConformanceStatus.Skipped, "operator: " + e.Message); }
        catch (Exception e) { return new(name, ConformanceStatus.Failed, $"{e.GetType().Name}: {e.Message}"); }
    }

    private static List<Tensor> ReadIndexed(string dir, string prefix)
    {
        var list = new List<Tensor>();
        for (int i = 0; ; i++)
        {
            string path = Path.Combine(dir, $"{prefix}{i}.pb");
            if (!File.Exists(path)) break;
            list.Add(OnnxTensors.ReadPb(File.ReadAllBytes(path), path));
        }
        return list;
    }

    /// <summary>Null when the tensors agree; otherwise what differs and where.</summary>
    public static string? Compare(Tensor actual, Tensor expected, double rtol, double atol)
    {
        if (actual.Type != expected.Type) return $"type {actual.Type.OnnxName()}, expected {expected.Type.OnnxName()}";
        if (!actual.Shape.AsSpan().SequenceEqual(expected.Shape)) return $"shape {ShapeUtil.Format(actual.Shape)}, expected {ShapeUtil.Format(expected.Shape)}";
        if (actual.Type == DataType.Float32)
        {
            var a = actual.Span<float>();
            var b = expected.Span<float>();
            for (int i = 0; i < a.Length; i++)
            {
                float x = a[i], y = b[i];
                if (float.IsNaN(y)) { if (!float.IsNaN(x)) return $"element {i} is {x}, expected NaN"; continue; }
                if (float.IsInfinity(y)) { if (x != y) return $"element {i} is {x}, expected {y}"; continue; }
                if (!(Math.Abs((double)x - y) <= atol + rtol * Math.Abs((double)y)))
                    return $"element {i} is {x:R}, expected {y:R} (|diff| {Math.Abs((double)x - y):G3} > {atol + rtol * Math.Abs((double)y):G3})";
            }
            return null;
        }
        var ab = actual.Bytes;
        var bb = expected.Bytes;
        if (!ab.SequenceEqual(bb))
        {
            for (int i = 0; i < actual.Length; i++)
                if (actual.GetInt64(i) != expected.GetInt64(i)) return $"element {i} is {actual.GetInt64(i)}, expected {expected.GetInt64(i)}";
        }
        return null;
    }
}
