using TinyOps.Engine.Conformance;
using Xunit;

namespace TinyOps.Engine.Tests.Conformance;

/// <summary>
/// Runs every ONNX conformance test whose operators are all in the engine's supported list. A test in scope must
/// pass unless onnx-exceptions.txt names it with a reason; a listed test that now passes is reported too.
/// </summary>
public sealed class OnnxConformanceTests
{
    /// <summary>The operators issue 2 commits to (ai.onnx domain).</summary>
    public static readonly HashSet<string> SupportedOperators = new(StringComparer.Ordinal)
    {
        "Conv", "ConvTranspose", "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Relu", "LeakyRelu", "Sigmoid", "Tanh",
        "HardSigmoid", "HardSwish", "Clip", "Softmax", "LogSoftmax", "MaxPool", "AveragePool", "GlobalAveragePool",
        "GlobalMaxPool", "BatchNormalization", "Reshape", "Flatten", "Transpose", "Concat", "Split", "Squeeze",
        "Unsqueeze", "Pad", "Gather", "Slice", "Shape", "Identity", "Dropout", "Cast", "Constant", "ConstantOfShape",
        "ReduceMean", "ReduceSum", "ReduceMax", "Sqrt", "Pow", "Exp", "Log", "Neg", "Abs", "Reciprocal", "Erf", "Equal",
        "Where", "Sum", "Mean", "Max", "Min", "LRN", "Expand", "Tile", "Resize", "LSTM", "GRU", "If",
        "QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "MatMulInteger", "ConvInteger",
        "DynamicQuantizeLinear",
    };

    private static readonly Lazy<Dictionary<string, string>> Exceptions = new(() => LoadExceptions(Path.Combine(TestPaths.RepoRoot, "tests", "TinyOps.Engine.Tests", "onnx-exceptions.txt")));

    public static Dictionary<string, string> LoadExceptions(string path)
    {
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var raw in File.ReadAllLines(path))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            int colon = line.IndexOf(':');
            if (colon <= 0) throw new FormatException($"{path}: line '{line}' is not 'suite/test: reason'");
            map[line[..colon].Trim()] = line[(colon + 1)..].Trim();
        }
        return map;
    }

    /// <summary>suite/test ids (e.g. node/test_conv_with_strides_padding) of every in-scope test.</summary>
    public static IEnumerable<object[]> InScope(string suite)
    {
        string root = Path.Combine(TestPaths.OnnxTests, suite);
        if (!Directory.Exists(root)) yield break;
        foreach (var dir in OnnxTestRunner.FindTests([root]))
        {
            SortedSet<string> ops;
            try { ops = ModelOperators.Read(Path.Combine(dir, "model.onnx")); }
            catch (Google.Protobuf.InvalidProtocolBufferException) { continue; }
            if (ops.Count > 0 && ops.All(SupportedOperators.Contains))
                yield return [suite + "/" + Path.GetRelativePath(root, dir)];
        }
    }

    public static IEnumerable<object[]> NodeTests() => InScope("node");
    public static IEnumerable<object[]> PytorchConvertedTests() => InScope("pytorch-converted");
    public static IEnumerable<object[]> PytorchOperatorTests() => InScope("pytorch-operator");
    public static IEnumerable<object[]> SimpleTests() => InScope("simple");

    [Theory]
    [MemberData(nameof(NodeTests))]
    public void Node(string id) => Check(id);

    [Theory]
    [MemberData(nameof(PytorchConvertedTests))]
    public void PytorchConverted(string id) => Check(id);

    [Theory]
    [MemberData(nameof(PytorchOperatorTests))]
    public void PytorchOperator(string id) => Check(id);

    [Theory]
    [MemberData(nameof(SimpleTests))]
    public void Simple(string id) => Check(id);

    [Fact]
    public void SuitesArePresent()
    {
        Assert.True(Directory.Exists(Path.Combine(TestPaths.OnnxTests, "node")), $"ONNX conformance data missing at {TestPaths.OnnxTests}");
        Assert.True(NodeTests().Count() > 500, "fewer in-scope node tests than expected: is ../shared/onnx complete?");
    }

    [Fact]
    public void EveryExceptionNamesAnInScopeTest()
    {
        var all = new HashSet<string>(new[] { "node", "pytorch-converted", "pytorch-operator", "simple" }.SelectMany(InScope).Select(o => (string)o[0]));
        var stale = Exceptions.Value.Keys.Where(k => !all.Contains(k)).ToList();
        Assert.True(stale.Count == 0, "onnx-exceptions.txt lists tests that are not in scope: " + string.Join(", ", stale));
    }

    private static void Check(string id)
    {
        string dir = Path.Combine(TestPaths.OnnxTests, id);
        var result = OnnxTestRunner.Run(dir);
        if (Exceptions.Value.TryGetValue(id, out var reason))
        {
            Assert.True(result.Status != ConformanceStatus.Passed,
                $"{id} passes now; remove it from onnx-exceptions.txt (it was listed because: {reason})");
            return;
        }
        Assert.True(result.Status == ConformanceStatus.Passed, $"{id}: {result.Status}: {result.Detail}");
    }
}
