using TinyOps.Engine.Kernels;
using TinyOps.Engine.Planning;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Runtime;

/// <summary>Plans and runs compiled graphs. One executor per session; not thread-safe.</summary>
internal sealed class Executor
{
    private readonly InferContext _infer = new();
    private readonly RunContext _run;
    private readonly ScratchPool _scratch = new();

    public Executor(SessionOptions options)
    {
        Options = options;
        _run = new RunContext(_scratch);
    }

    public SessionOptions Options { get; }

    public long ScratchBytes => _scratch.TotalBytes;

    /// <summary>With <see cref="SessionOptions.ProfileNodes"/>: Stopwatch ticks and runs per node of the main graph.</summary>
    internal long[]? NodeTicks;
    internal int[]? NodeRuns;

    /// <summary>Plans <paramref name="g"/> for inputs of the given types and shapes (values unknown).</summary>
    public ExecutionPlan Plan(CompiledGraph g, DataType[] inputTypes, int[][] inputShapes)
    {
        int nv = g.ValueCount;
        var types = new DataType[nv];
        var shapes = new int[]?[nv];
        var values = new Tensor?[nv];
        for (int v = 0; v < nv; v++)
        {
            var c = g.Constants[v];
            if (c is null) continue;
            types[v] = c.Type;
            shapes[v] = c.Shape;
            values[v] = c;
        }
        for (int i = 0; i < g.RuntimeInputs.Length; i++)
        {
            types[g.RuntimeInputs[i]] = inputTypes[i];
            shapes[g.RuntimeInputs[i]] = inputShapes[i];
        }

        int nn = g.Nodes.Length;
        var folded = new bool[nn];
        var dynamic = new bool[nn];
        var isInput = new bool[nv];
        foreach (int v in g.RuntimeInputs) isInput[v] = true;
        foreach (var (local, _) in g.OuterRefs) isInput[local] = true;

        for (int n = 0; n < nn; n++)
        {
            var node = g.Nodes[n];
            var kernel = node.Kernel;
            bool unknownInput = false, allConst = true;
            foreach (int v in node.Inputs)
            {
                if (v < 0) continue;
                if (shapes[v] is null) unknownInput = true;
                if (values[v] is null) allConst = false;
            }
            foreach (int v in node.ImplicitInputs) if (values[v] is null) allConst = false;
            if (kernel.ProducesOwnOutputs || unknownInput)
            {
                dynamic[n] = true;
                continue;
            }
            if (!InferNode(node, types, shapes, values))
            {
                dynamic[n] = true;
                continue;
            }
            if (ShapeOnlyValues(node, values))
            {
                folded[n] = true;
                continue;
            }
            if (allConst && kernel.Foldable && OutputElements(node, shapes) <= Options.MaxFoldElements)
            {
                foreach (int v in node.Outputs) values[v] = AllocateHeap(types[v], shapes[v]!, kernel, v, g);
                RunNode(node, values);
                folded[n] = true;
            }
        }

        // Place every planned, non-constant, non-input value in the arena by liveness.
        var lastUse = new int[nv];
        var firstDef = new int[nv];
        Array.Fill(lastUse, -1);
        Array.Fill(firstDef, -1);
        for (int n = 0; n < nn; n++)
        {
            var node = g.Nodes[n];
            foreach (int v in node.Outputs) firstDef[v] = n;
            foreach (int v in node.Inputs) if (v >= 0) lastUse[v] = n;
            foreach (int v in node.ImplicitInputs) lastUse[v] = n;
        }
        foreach (int v in g.Outputs) lastUse[v] = nn;

        bool Planned(int v) => values[v] is null && !isInput[v] && shapes[v] is not null && firstDef[v] >= 0
            && !folded[firstDef[v]] && !dynamic[firstDef[v]];

        // Views: a node that only copies its input's bytes (Flatten, Reshape, Squeeze, Unsqueeze, Identity) between
        // planned values is not run; its output is the input's arena bytes under the output's shape. The input's
        // buffer (the root of a chain of views) then lives until the last use of every view of it.
        var viewOf = new int[nv];
        Array.Fill(viewOf, -1);
        var view = new bool[nn];
        for (int n = 0; n < nn; n++)
        {
            var node = g.Nodes[n];
            if (folded[n] || dynamic[n] || !node.Kernel.OutputIsInputBytes || node.Outputs.Length != 1 || node.Inputs.Length < 1
                || node.ImplicitInputs.Length > 0) continue;
            int vin = node.Inputs[0], vout = node.Outputs[0];
            if (vin < 0 || !Planned(vin) || !Planned(vout) || types[vin] != types[vout]
                || ShapeUtil.Size(shapes[vin]!) != ShapeUtil.Size(shapes[vout]!)) continue;
            int root = viewOf[vin] >= 0 ? viewOf[vin] : vin;
            viewOf[vout] = root;
            lastUse[root] = Math.Max(lastUse[root], lastUse[vout]);
            view[n] = true;
        }
        // Concat inputs written in place: value → (concat output, byte offset inside it); see ConcatInPlace
        var inPlace = Options.ConcatInPlace ? ConcatInPlace(g, types, shapes, folded, dynamic, v => Planned(v) && viewOf[v] < 0) : null;

        var requests = new List<BufferRequest>();
        var requestValue = new List<int>();
        var requestOf = new int[nv];
        Array.Fill(requestOf, -1);
        for (int v = 0; v < nv; v++)
        {
            if (!Planned(v) || viewOf[v] >= 0 || (inPlace is not null && inPlace.ContainsKey(v))) continue;
            int producerIndex = firstDef[v];
            int first = producerIndex;
            // a concat output lives from its first input's producer on
            if (inPlace is not null)
                foreach (var (input, (output, _)) in inPlace)
                    if (output == v) first = Math.Min(first, firstDef[input]);
            long bytes = (long)ShapeUtil.Size(shapes[v]) * types[v].ElementSize();
            requestOf[v] = requests.Count;
            requests.Add(new BufferRequest(bytes, first, Math.Max(producerIndex, lastUse[v])));
            requestValue.Add(v);
        }
        var mem = MemoryPlanner.Plan(requests);
        if (mem.ArenaBytes > Options.MaxArenaBytes)
            throw new ResourceLimitException($"the planned activation arena needs {mem.ArenaBytes:N0} bytes, over the session limit of {Options.MaxArenaBytes:N0}; raise SessionOptions.MaxArenaBytes or use smaller inputs");
        // Pinned, with the planned offsets counted from a 64-byte boundary: large tensors start on a cache line.
        var arena = GC.AllocateArray<byte>((int)mem.ArenaBytes + 64, pinned: true);
        int arenaStart = ScratchPool.AlignedStart(arena);
        var initial = (Tensor?[])values.Clone();
        for (int r = 0; r < requests.Count; r++)
        {
            int v = requestValue[r];
            initial[v] = new Tensor(types[v], shapes[v]!, arena, arenaStart + (int)mem.Offsets[r]);
        }
        if (inPlace is not null)
            foreach (var (input, (output, offset)) in inPlace)
                initial[input] = new Tensor(types[input], shapes[input]!, arena, arenaStart + (int)mem.Offsets[requestOf[output]] + (int)offset);
        for (int v = 0; v < nv; v++)
            if (viewOf[v] >= 0) initial[v] = new Tensor(types[v], shapes[v]!, arena, arenaStart + (int)mem.Offsets[requestOf[viewOf[v]]]);
        var skipped = new bool[nn];
        for (int n = 0; n < nn; n++) skipped[n] = folded[n] || view[n];
        for (int n = 0; n < nn; n++)
        {
            if (!dynamic[n]) continue;
            foreach (int v in g.Nodes[n].Outputs) { shapes[v] = null; initial[v] = null; }
        }

        return new ExecutionPlan
        {
            InputTypes = inputTypes,
            InputShapes = inputShapes,
            Types = types,
            Shapes = shapes,
            NodeFolded = folded,
            NodeDynamic = dynamic,
            NodeSkipped = skipped,
            NodeView = view,
            Initial = initial,
            Values = new Tensor?[nv],
            Arena = arena,
            ArenaBytes = mem.ArenaBytes,
            LiveLowerBound = mem.LiveLowerBound,
        };
    }

    /// <summary>
    /// Concat nodes whose inputs can be produced straight into their place in the output: the concatenation axis has
    /// only size-1 dimensions before it (so each input is one contiguous block of the output, as for channels at batch
    /// 1), every input is a planned value made by a planned node, read by this Concat alone, not a graph output, and
    /// appears once. Those inputs become views of the output's buffer at their block's offset, the output's lifetime
    /// starts at the first of their producers, and <see cref="Kernels.ShapeOps.ConcatKernel"/> finds nothing to copy.
    /// Returns null when no Concat qualifies.
    /// </summary>
    private static Dictionary<int, (int Output, long Offset)>? ConcatInPlace(CompiledGraph g, DataType[] types, int[]?[] shapes,
        bool[] folded, bool[] dynamic, Func<int, bool> planned)
    {
        Dictionary<int, (int, long)>? result = null;
        var outputs = new HashSet<int>(); // outputs of in-place concats keep their own buffer: never an in-place input
        var uses = new int[shapes.Length];
        foreach (var node in g.Nodes)
        {
            foreach (int v in node.Inputs) if (v >= 0) uses[v]++;
            foreach (int v in node.ImplicitInputs) uses[v] += 2;
        }
        foreach (int v in g.Outputs) uses[v] += 2;
        for (int n = 0; n < g.Nodes.Length; n++)
        {
            var node = g.Nodes[n];
            if (node.Kernel is not Kernels.ShapeOps.ConcatKernel concat || folded[n] || dynamic[n] || node.Outputs.Length != 1) continue;
            int y = node.Outputs[0];
            if (!planned(y)) continue;
            var ys = shapes[y]!;
            int axis = concat.Axis(ys.Length);
            bool ok = ShapeUtil.SizeTo(ys, axis) == 1 && node.Inputs.Length > 1;
            var seen = new HashSet<int>();
            foreach (int v in node.Inputs)
                ok &= v >= 0 && planned(v) && uses[v] == 1 && types[v] == types[y] && seen.Add(v) && !outputs.Contains(v);
            if (!ok) continue;
            result ??= [];
            outputs.Add(y);
            long offset = 0;
            foreach (int v in node.Inputs)
            {
                result[v] = (y, offset);
                offset += (long)ShapeUtil.Size(shapes[v]!) * types[v].ElementSize();
            }
        }
        return result;
    }

    /// <summary>True when the kernel gave every output's value from shapes alone; the values are stored as constants.</summary>
    private bool ShapeOnlyValues(CompiledNode node, Tensor?[] values)
    {
        for (int o = 0; o < node.Outputs.Length; o++)
            if (_infer.GetOutputValue(o) is null) return false;
        for (int o = 0; o < node.Outputs.Length; o++) values[node.Outputs[o]] = _infer.GetOutputValue(o);
        return true;
    }

    private static long OutputElements(CompiledNode node, int[]?[] shapes)
    {
        long n = 0;
        foreach (int v in node.Outputs) n += ShapeUtil.Size(shapes[v]!);
        return n;
    }

    /// <summary>Infers one node's outputs into the tables; false when its shapes depend on run-time values.</summary>
    private bool InferNode(CompiledNode node, DataType[] types, int[]?[] shapes, Tensor?[] values)
    {
        int ni = node.Inputs.Length;
        var inTypes = new DataType[ni];
        var inShapes = new int[ni][];
        var inValues = new Tensor?[ni];
        for (int i = 0; i < ni; i++)
        {
            int v = node.Inputs[i];
            if (v < 0) { inShapes[i] = []; continue; }
            inTypes[i] = types[v];
            inShapes[i] = shapes[v]!;
            inValues[i] = values[v];
        }
        _infer.Reset(node.Kernel.Node, inTypes, inShapes, inValues);
        try
        {
            node.Kernel.Infer(_infer);
        }
        catch (ValueNotKnownException)
        {
            return false;
        }
        catch (Exception e) when (e is not EngineException)
        {
            throw new ModelValidationException($"{node.Kernel.Node.DisplayName}: inferring its outputs failed ({e.GetType().Name}: {e.Message}); the node's attributes or input shapes are inconsistent", e);
        }
        for (int o = 0; o < node.Outputs.Length; o++)
        {
            var r = _infer.GetOutput(o) ?? throw new ModelValidationException($"{node.Kernel.Node.DisplayName}: the kernel did not infer output {o}");
            ShapeUtil.SizeChecked(r.Shape, $"{node.Kernel.Node.DisplayName} output '{node.Kernel.Node.Outputs[o]}'");
            if (!r.Type.IsSupported())
                throw new UnsupportedTypeException($"{node.Kernel.Node.DisplayName}: output {o} would have type {r.Type.OnnxName()}, which this engine does not support");
            types[node.Outputs[o]] = r.Type;
            shapes[node.Outputs[o]] = r.Shape;
        }
        return true;
    }

    private static Tensor AllocateHeap(DataType type, int[] shape, Kernel kernel, int v, CompiledGraph g)
    {
        long bytes = (long)ShapeUtil.SizeChecked(shape, $"{kernel.Node.DisplayName} output '{g.ValueNames[v]}'") * type.ElementSize();
        if (bytes > Array.MaxLength)
            throw new ResourceLimitException($"{kernel.Node.DisplayName}: output '{g.ValueNames[v]}' of shape {ShapeUtil.Format(shape)} needs {bytes:N0} bytes");
        return Tensor.Zeros(type, shape);
    }

    private void RunNode(CompiledNode node, Tensor?[] values)
    {
        _run.Reset(node, values, this);
        try
        {
            node.Kernel.Run(_run);
        }
        catch (Exception e) when (e is not EngineException)
        {
            throw new KernelException($"{node.Kernel.Node.DisplayName}: the kernel failed ({e.GetType().Name}: {e.Message}); its inputs or attributes are inconsistent", e);
        }
    }

    /// <summary>Runs a plan. Inputs must match the plan's shapes; outputs are views valid until the next run.</summary>
    public void Execute(CompiledGraph g, ExecutionPlan plan, ReadOnlySpan<Tensor> inputs, Tensor?[]? outerValues, bool profile = false)
    {
        var values = plan.Values;
        Array.Copy(plan.Initial, values, values.Length);
        for (int i = 0; i < inputs.Length; i++) values[g.RuntimeInputs[i]] = inputs[i];
        if (outerValues is not null)
            foreach (var (local, outer) in g.OuterRefs) values[local] = outerValues[outer];
        var nodes = g.Nodes;
        for (int n = 0; n < nodes.Length; n++)
        {
            if (plan.NodeSkipped[n]) continue;
            var node = nodes[n];
            long start = profile ? System.Diagnostics.Stopwatch.GetTimestamp() : 0;
            if (plan.NodeDynamic[n]) RunDynamicNode(g, node, values);
            else RunNode(node, values);
            if (profile)
            {
                if (NodeTicks is null || NodeTicks.Length != nodes.Length) { NodeTicks = new long[nodes.Length]; NodeRuns = new int[nodes.Length]; }
                NodeTicks[n] += System.Diagnostics.Stopwatch.GetTimestamp() - start;
                NodeRuns![n]++;
            }
        }
    }

    private void RunDynamicNode(CompiledGraph g, CompiledNode node, Tensor?[] values)
    {
        if (node.Kernel.ProducesOwnOutputs)
        {
            foreach (int v in node.Outputs) values[v] = null;
            RunNode(node, values);
            for (int o = 0; o < node.Outputs.Length; o++)
                if (values[node.Outputs[o]] is null)
                    throw new InvalidOperationException($"{node.Kernel.Node.DisplayName}: output {o} was not produced");
            return;
        }
        int nv = values.Length;
        var types = new DataType[nv];
        var shapes = new int[]?[nv];
        foreach (int v in node.Inputs)
        {
            if (v < 0) continue;
            var t = values[v] ?? throw new InvalidOperationException($"{node.Kernel.Node.DisplayName}: input '{g.ValueNames[v]}' has no value");
            types[v] = t.Type;
            shapes[v] = t.Shape;
        }
        if (!InferNode(node, types, shapes, values))
            throw new InvalidOperationException($"{node.Kernel.Node.DisplayName}: shape inference needs a value that is not known even at run time");
        foreach (int v in node.Outputs) values[v] = AllocateHeap(types[v], shapes[v]!, node.Kernel, v, g);
        RunNode(node, values);
    }

    /// <summary>Runs a subgraph on fresh memory and returns copies of its outputs.</summary>
    public Tensor[] RunSubgraph(CompiledGraph sub, ReadOnlySpan<Tensor> inputs, Tensor?[] outerValues)
    {
        if (inputs.Length != sub.RuntimeInputs.Length)
            throw new ModelValidationException($"subgraph '{sub.Graph.Name}' takes {sub.RuntimeInputs.Length} inputs, got {inputs.Length}");
        var types = new DataType[inputs.Length];
        var shapes = new int[inputs.Length][];
        for (int i = 0; i < inputs.Length; i++) { types[i] = inputs[i].Type; shapes[i] = inputs[i].Shape; }
        // Outer values are known at this point: plan with them as constants of this run.
        var plan = PlanWithOuter(sub, types, shapes, outerValues);
        Execute(sub, plan, inputs, outerValues);
        var result = new Tensor[sub.Outputs.Length];
        for (int i = 0; i < result.Length; i++)
            result[i] = (plan.Values[sub.Outputs[i]] ?? throw new InvalidOperationException($"subgraph '{sub.Graph.Name}' did not produce output {i}")).Clone();
        return result;
    }

    private ExecutionPlan PlanWithOuter(CompiledGraph sub, DataType[] types, int[][] shapes, Tensor?[] outerValues)
    {
        // Treat outer values as extra inputs with known shapes by temporarily exposing them as constants.
        var consts = sub.Constants;
        var backup = new Tensor?[sub.OuterRefs.Length];
        for (int i = 0; i < sub.OuterRefs.Length; i++)
        {
            var (local, outer) = sub.OuterRefs[i];
            backup[i] = consts[local];
            consts[local] = outerValues[outer];
        }
        try
        {
            return Plan(sub, types, shapes);
        }
        finally
        {
            for (int i = 0; i < sub.OuterRefs.Length; i++) consts[sub.OuterRefs[i].Local] = backup[i];
        }
    }
}
