using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Runtime;

/// <summary>
/// Everything decided before running a graph for one set of input shapes: each value's type and shape,
/// which nodes were folded into constants, which must be shaped at run time, and the arena placement.
/// </summary>
internal sealed class ExecutionPlan
{
    public required DataType[] InputTypes { get; init; }
    public required int[][] InputShapes { get; init; }

    public required DataType[] Types { get; init; }

    /// <summary>Shape of every value whose shape is known before running; null for run-time-shaped values.</summary>
    public required int[]?[] Shapes { get; init; }

    public required bool[] NodeFolded { get; init; }
    public required bool[] NodeDynamic { get; init; }

    /// <summary>Nodes a run skips: folded ones, and copy-only ones whose output is a view of their input (<see cref="NodeView"/>).</summary>
    public required bool[] NodeSkipped { get; init; }

    /// <summary>Copy-only nodes (Flatten, Reshape, ...) whose output was planned as a view of their input's arena bytes.</summary>
    public required bool[] NodeView { get; init; }

    /// <summary>Initial value of each slot for a run: constants, folded values and arena views.</summary>
    public required Tensor?[] Initial { get; init; }

    /// <summary>Working slots reused by every run of this plan.</summary>
    public required Tensor?[] Values { get; init; }

    public required byte[] Arena { get; init; }
    public required long ArenaBytes { get; init; }
    public required long LiveLowerBound { get; init; }

    public bool Matches(ReadOnlySpan<Tensor> inputs)
    {
        if (inputs.Length != InputShapes.Length) return false;
        for (int i = 0; i < inputs.Length; i++)
        {
            if (inputs[i].Type != InputTypes[i]) return false;
            if (!inputs[i].Shape.AsSpan().SequenceEqual(InputShapes[i])) return false;
        }
        return true;
    }
}
