using TinyOps.Engine.Runtime;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Kernels;

/// <summary>What a kernel sees while running: input and output tensors, scratch memory and subgraphs.</summary>
public sealed class RunContext
{
    private readonly ScratchPool _scratch;
    private Tensor?[] _values = [];
    private int[] _inputs = [];
    private int[] _outputs = [];
    private CompiledNode? _node;
    private Executor? _executor;

    internal RunContext(ScratchPool scratch) { _scratch = scratch; }

    internal void Reset(CompiledNode node, Tensor?[] values, Executor executor)
    {
        _node = node;
        _values = values;
        _inputs = node.Inputs;
        _outputs = node.Outputs;
        _executor = executor;
    }

    /// <summary>Threads the session allows a kernel to use (1 unless configured).</summary>
    public int Threads => _executor?.Options.Threads ?? 1;

    public int InputCount => _inputs.Length;
    public int OutputCount => _outputs.Length;
    public bool HasInput(int i) => i < _inputs.Length && _inputs[i] >= 0;

    public Tensor Input(int i) => HasInput(i)
        ? _values[_inputs[i]] ?? throw new InvalidOperationException($"{_node!.Kernel.Node.DisplayName}: input {i} has no value")
        : throw new ModelValidationException($"{_node!.Kernel.Node.DisplayName}: required input {i} is missing");

    public Tensor? OptionalInput(int i) => HasInput(i) ? _values[_inputs[i]] : null;

    public Tensor Output(int i) => _values[_outputs[i]] ?? throw new InvalidOperationException($"{_node!.Kernel.Node.DisplayName}: output {i} was not allocated");

    /// <summary>For kernels that produce their own outputs (control flow): hands the session an output tensor.</summary>
    public void SetOutput(int i, Tensor t) => _values[_outputs[i]] = t;

    /// <summary>Session-owned workspace, reused across runs. Slots let a kernel hold several buffers at once.</summary>
    public Span<T> Scratch<T>(int count, int slot = 0) where T : unmanaged => _scratch.Get<T>(count, slot);

    /// <summary>Runs the named graph attribute of this node with the given inputs; outputs are copies owned by the caller.</summary>
    public Tensor[] RunSubgraph(string attribute, ReadOnlySpan<Tensor> inputs)
    {
        var node = _node!;
        if (node.Subgraphs is null || !node.Subgraphs.TryGetValue(attribute, out var sub))
            throw new ModelValidationException($"{node.Kernel.Node.DisplayName}: has no subgraph '{attribute}'");
        // The subgraph's nodes reuse this context: restore it for the caller afterwards.
        var (values, ins, outs, executor) = (_values, _inputs, _outputs, _executor!);
        try
        {
            return executor.RunSubgraph(sub, inputs, values);
        }
        finally
        {
            (_node, _values, _inputs, _outputs, _executor) = (node, values, ins, outs, executor);
        }
    }
}
