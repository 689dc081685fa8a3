using TinyOps.Engine.Ir;

namespace TinyOps.Engine.Kernels;

/// <summary>Creates a kernel for a node; throws a <see cref="ModelValidationException"/> on bad attributes.</summary>
public delegate Kernel KernelFactory(Node node, int opset);

/// <summary>
/// The op resolver: lists exactly which operators (per domain, from which opset) a build supports, and creates
/// kernels for nodes. <see cref="Default"/> holds every built-in kernel.
/// </summary>
public sealed class KernelRegistry
{
    private readonly Dictionary<(string Domain, string Op), List<(int Since, KernelFactory Factory)>> _entries = [];

    private static readonly Lazy<KernelRegistry> DefaultInstance = new(() =>
    {
        var r = new KernelRegistry();
        BuiltinKernels.RegisterAll(r);
        return r;
    });

    public static KernelRegistry Default => DefaultInstance.Value;

    /// <summary>Registers <paramref name="factory"/> for opsets from <paramref name="sinceVersion"/> on (until a later registration).</summary>
    public void Register(string opType, KernelFactory factory, int sinceVersion = 1, string domain = "")
    {
        var key = (domain, opType);
        if (!_entries.TryGetValue(key, out var list)) _entries[key] = list = [];
        list.Add((sinceVersion, factory));
        list.Sort((a, b) => a.Since.CompareTo(b.Since));
    }

    public bool Supports(string opType, string domain = "") => _entries.ContainsKey((Normalize(domain), opType));

    public IEnumerable<(string Domain, string OpType)> Operators => _entries.Keys.OrderBy(k => k.Domain).ThenBy(k => k.Op);

    public Kernel Create(Node node, Model model)
    {
        string domain = Normalize(node.Domain);
        int opset = model.OpsetFor(domain);
        if (!model.Opsets.ContainsKey(domain) && !(domain == "" && model.Opsets.ContainsKey("ai.onnx")))
            throw new UnsupportedOperatorException($"{node.DisplayName}: domain '{node.Domain}' is not imported by the model (opset_import lists: {string.Join(", ", model.Opsets.Keys.Select(k => k.Length == 0 ? "ai.onnx" : k))})");
        if (!_entries.TryGetValue((domain, node.OpType), out var list))
        {
            bool knownDomain = _entries.Keys.Any(k => k.Domain == domain);
            if (!knownDomain)
                throw new UnsupportedOperatorException($"{node.DisplayName}: operator domain '{node.Domain}' is not supported by this build (supported: {string.Join(", ", _entries.Keys.Select(k => k.Domain.Length == 0 ? "ai.onnx" : k.Domain).Distinct())})");
            throw new UnsupportedOperatorException($"{node.DisplayName}: operator '{node.OpType}' is not supported by this build; run 'tinyops model inspect' to list the supported operators");
        }
        if (domain == "" && (opset < EngineInfo.MinOpset || opset > EngineInfo.MaxOpset))
            throw new UnsupportedOperatorException($"{node.DisplayName}: the model imports ai.onnx opset {opset}; this build supports opsets {EngineInfo.MinOpset} to {EngineInfo.MaxOpset}");
        KernelFactory? chosen = null;
        foreach (var (since, f) in list) if (since <= opset) chosen = f;
        if (chosen is null)
            throw new UnsupportedOperatorException($"{node.DisplayName}: operator '{node.OpType}' at opset {opset} is older than this build supports (from opset {list[0].Since})");
        return chosen(node, opset);
    }

    private static string Normalize(string domain) => domain == "ai.onnx" ? "" : domain;
}
