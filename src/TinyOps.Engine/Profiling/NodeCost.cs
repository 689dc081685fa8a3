namespace TinyOps.Engine.Profiling;

/// <summary>Static cost of one node: multiply-accumulates, parameters it owns and bytes of activations it writes.</summary>
public sealed record NodeCost(string Node, string OpType, string OutputShapes, long Macs, long Parameters, long ActivationBytes, bool Folded, bool Dynamic);

/// <summary>A model's static profile at one batch size.</summary>
public sealed record ModelProfile(IReadOnlyList<NodeCost> Nodes, long TotalMacs, long TotalParameters, long WeightBytes, long PlannedArenaBytes, long LiveLowerBound, int Batch)
{
    public double PlannerOverhead => LiveLowerBound == 0 ? 0 : (double)PlannedArenaBytes / LiveLowerBound - 1;
}
