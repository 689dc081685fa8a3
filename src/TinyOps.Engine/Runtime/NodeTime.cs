namespace TinyOps.Engine.Runtime;

/// <summary>One node (its first output has shape <paramref name="OutputShape"/>)'s measured time: <paramref name="Runs"/> runs took <paramref name="Total"/> in all.</summary>
public sealed record NodeTime(string Name, string OpType, string OutputShape, int Runs, TimeSpan Total)
{
    /// <summary>Mean time of one run in microseconds (0 when it never ran).</summary>
    public double MeanMicroseconds => Runs == 0 ? 0 : Total.TotalMilliseconds * 1000 / Runs;
}
