using TinyOps.Engine.Ir;

namespace TinyOps.Engine.Kernels;

/// <summary>
/// One operator instance bound to one node of one session. The constructor reads and validates attributes;
/// <see cref="Infer"/> computes output types and shapes from input shapes (and constant input values where the
/// operator needs them); <see cref="Run"/> computes outputs into tensors the session has already allocated.
/// Run must not allocate: use <see cref="RunContext.Scratch{T}"/> for workspace.
/// </summary>
public abstract class Kernel
{
    protected Kernel(Node node, int opset)
    {
        Node = node;
        Opset = opset;
    }

    public Node Node { get; }
    public int Opset { get; }

    /// <summary>
    /// True for operators whose outputs cannot be planned at all (control flow). Such kernels skip Infer, and
    /// in Run set each output with <see cref="RunContext.SetOutput"/>.
    /// </summary>
    public virtual bool ProducesOwnOutputs => false;

    /// <summary>False for operators whose result must not be precomputed even when every input is constant.</summary>
    public virtual bool Foldable => true;

    /// <summary>
    /// True for operators whose single output holds exactly the bytes of input 0 (a new shape at most: Flatten,
    /// Reshape, Squeeze, Unsqueeze, Identity). The planner may then make the output a view of the input and skip Run.
    /// </summary>
    internal virtual bool OutputIsInputBytes => false;

    public abstract void Infer(InferContext ctx);

    public abstract void Run(RunContext ctx);

    /// <summary>An error that names this node.</summary>
    protected ModelValidationException Error(string message) => new($"{Node.DisplayName}: {message}");
}
