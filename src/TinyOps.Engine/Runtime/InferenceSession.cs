using TinyOps.Engine.Ir;
using TinyOps.Engine.Onnx;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Runtime;

/// <summary>
/// A model ready to run: validated, kernels bound, memory planned per input shape. Not thread-safe; use one
/// session per thread. Tensors returned by the span overload of <see cref="Run(ReadOnlySpan{Tensor}, Span{Tensor})"/>
/// are views of the session's arena and stay valid until the next run.
/// </summary>
public sealed class InferenceSession
{
    private const int MaxCachedPlans = 4;
    private readonly CompiledGraph _graph;
    private readonly Executor _executor;
    private readonly List<ExecutionPlan> _plans = [];

    public InferenceSession(Model model, SessionOptions? options = null)
    {
        Model = model;
        Options = options ?? new SessionOptions();
        _executor = new Executor(Options);
        var graph = Options.FuseActivations ? Fusion.ActivationFusion.Apply(model.Graph, model, Options.Registry) : model.Graph;
        if (Options.FuseDequantizeChains) graph = Fusion.DequantizeChainFusion.Apply(graph, model, Options.Registry, ratios: !Options.ExactQuantizedAdds);
        if (Options.FuseResiduals) graph = Fusion.ResidualFusion.Apply(graph, model, Options.Registry);
        if (Options.FuseQuantizedPools) graph = Fusion.QuantizedPoolFusion.Apply(graph, model, Options.Registry);
        _graph = CompiledGraph.Compile(graph, model, Options.Registry, null);
        Inputs = _graph.RuntimeInputInfos;
        Outputs = model.Graph.Outputs.ToArray();
        ValidateStatically();
    }

    public static InferenceSession Load(string path, SessionOptions? options = null) => new(OnnxLoader.LoadFile(path), options);

    public static InferenceSession Load(byte[] bytes, SessionOptions? options = null) => new(OnnxLoader.Load(bytes), options);

    public Model Model { get; }
    public SessionOptions Options { get; }
    public IReadOnlyList<ValueInfo> Inputs { get; }
    public IReadOnlyList<ValueInfo> Outputs { get; }

    /// <summary>Arena bytes of the most recently used plan (0 before the first run).</summary>
    public long PlannedArenaBytes => _plans.Count > 0 ? _plans[0].ArenaBytes : 0;

    /// <summary>Scratch bytes kernels have asked for so far.</summary>
    public long ScratchBytes => _executor.ScratchBytes;

    /// <summary>
    /// With <see cref="SessionOptions.ProfileNodes"/>: per node of the (fused) main graph, in execution order, the
    /// total time of its runs so far. Empty when profiling is off or nothing has run.
    /// </summary>
    public IReadOnlyList<NodeTime> NodeProfile()
    {
        var ticks = _executor.NodeTicks;
        var runs = _executor.NodeRuns;
        if (ticks is null || runs is null) return [];
        var list = new List<NodeTime>(ticks.Length);
        for (int n = 0; n < ticks.Length; n++)
        {
            var cn = _graph.Nodes[n];
            var node = cn.Kernel.Node;
            var shape = _plans.Count > 0 && cn.Outputs.Length > 0 ? _plans[0].Shapes[cn.Outputs[0]] : null;
            list.Add(new NodeTime(node.Name, node.OpType, shape is null ? "?" : ShapeUtil.Format(shape), runs[n], TimeSpan.FromSeconds((double)ticks[n] / System.Diagnostics.Stopwatch.Frequency)));
        }
        return list;
    }

    /// <summary>Clears the times <see cref="NodeProfile"/> reports (for example after a warm-up).</summary>
    public void ResetNodeProfile()
    {
        if (_executor.NodeTicks is { } t) Array.Clear(t);
        if (_executor.NodeRuns is { } r) Array.Clear(r);
    }

    /// <summary>Runs with named inputs; returns copies of the outputs keyed by name.</summary>
    public Dictionary<string, Tensor> Run(IReadOnlyDictionary<string, Tensor> inputs)
    {
        var ordered = new Tensor[Inputs.Count];
        for (int i = 0; i < ordered.Length; i++)
        {
            if (!inputs.TryGetValue(Inputs[i].Name, out var t))
                throw new InferenceInputException($"input '{Inputs[i].Name}' ({Inputs[i].Type.OnnxName()} {Inputs[i].ShapeText}) was not given; the model takes: {string.Join(", ", Inputs.Select(x => x.Name))}");
            ordered[i] = t;
        }
        foreach (var name in inputs.Keys)
            if (!Inputs.Any(i => i.Name == name))
                throw new InferenceInputException($"'{name}' is not an input of this model; it takes: {string.Join(", ", Inputs.Select(x => x.Name))}");
        var outs = new Tensor[Outputs.Count];
        Run(ordered, outs);
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        for (int i = 0; i < outs.Length; i++) result[Outputs[i].Name] = outs[i].Clone();
        return result;
    }

    /// <summary>Runs with inputs in declaration order. After the first run with these shapes it allocates nothing.</summary>
    public void Run(ReadOnlySpan<Tensor> inputs, Span<Tensor> outputs)
    {
        if (inputs.Length != Inputs.Count)
            throw new InferenceInputException($"the model takes {Inputs.Count} inputs ({string.Join(", ", Inputs.Select(x => x.Name))}), got {inputs.Length}");
        if (outputs.Length < Outputs.Count)
            throw new ArgumentException($"the model has {Outputs.Count} outputs; the output span holds {outputs.Length}");
        var plan = FindPlan(inputs);
        if (plan is null)
        {
            for (int i = 0; i < inputs.Length; i++) CheckInput(i, inputs[i]);
            var types = new DataType[inputs.Length];
            var shapes = new int[inputs.Length][];
            for (int i = 0; i < inputs.Length; i++) { types[i] = inputs[i].Type; shapes[i] = (int[])inputs[i].Shape.Clone(); }
            plan = _executor.Plan(_graph, types, shapes);
            _plans.Insert(0, plan);
            if (_plans.Count > MaxCachedPlans) _plans.RemoveAt(_plans.Count - 1);
        }
        _executor.Execute(_graph, plan, inputs, null, Options.ProfileNodes);
        for (int i = 0; i < Outputs.Count; i++)
            outputs[i] = plan.Values[_graph.Outputs[i]] ?? throw new InvalidOperationException($"output '{Outputs[i].Name}' was not produced");
    }

    private ExecutionPlan? FindPlan(ReadOnlySpan<Tensor> inputs)
    {
        for (int i = 0; i < _plans.Count; i++)
            if (_plans[i].Matches(inputs)) return _plans[i];
        return null;
    }

    private void CheckInput(int i, Tensor t)
    {
        var info = Inputs[i];
        string expected = $"{info.Type.OnnxName()} {info.ShapeText}";
        if (info.Type != DataType.Undefined && t.Type != info.Type)
            throw new InferenceInputException($"input '{info.Name}': expected {expected}, got {t.Type.OnnxName()} {ShapeUtil.Format(t.Shape)}");
        if (info.Shape is null) return;
        if (info.Shape.Length != t.Rank)
            throw new InferenceInputException($"input '{info.Name}': expected rank {info.Shape.Length} ({expected}), got {ShapeUtil.Format(t.Shape)}");
        for (int d = 0; d < t.Rank; d++)
            if (info.Shape[d].IsKnown && info.Shape[d].Value != t.Shape[d])
                throw new InferenceInputException($"input '{info.Name}': dimension {d} must be {info.Shape[d].Value} ({expected}), got {ShapeUtil.Format(t.Shape)}");
    }

    /// <summary>Concrete input shapes with every symbolic or unknown dimension bound to <paramref name="bind"/>.</summary>
    internal (DataType[] Types, int[][] Shapes)? BindInputs(int bind)
    {
        var types = new DataType[Inputs.Count];
        var shapes = new int[Inputs.Count][];
        for (int i = 0; i < Inputs.Count; i++)
        {
            var info = Inputs[i];
            if (info.Type == DataType.Undefined || info.Shape is null || !info.Type.IsSupported()) return null;
            types[i] = info.Type;
            shapes[i] = info.Shape.Select(d => d.IsKnown ? checked((int)d.Value) : bind).ToArray();
        }
        return (types, shapes);
    }

    private bool HasSymbolicInputs => Inputs.Any(i => i.Shape is null || i.Shape.Any(d => !d.IsKnown));

    // Infers every shape once at load with symbolic dimensions bound to 1, so most errors surface here. When
    // inputs carry symbolic dimensions a failure may only reflect the binding, so it is left for the first run.
    private void ValidateStatically()
    {
        var bound = BindInputs(1);
        if (bound is null) return;
        try
        {
            var plan = _executor.Plan(_graph, bound.Value.Types, bound.Value.Shapes);
            if (!HasSymbolicInputs) _plans.Add(plan);
        }
        catch (EngineException) when (HasSymbolicInputs)
        {
        }
    }

    /// <summary>Plans with inputs bound (symbolic dimensions set to <paramref name="bind"/>) for reports.</summary>
    internal (CompiledGraph Graph, ExecutionPlan Plan)? PlanForReport(int bind)
    {
        var bound = BindInputs(bind);
        if (bound is null) return null;
        return (_graph, _executor.Plan(_graph, bound.Value.Types, bound.Value.Shapes));
    }
}
