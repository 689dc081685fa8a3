namespace TinyOps.Optimize.Quantization;

/// <summary>The float range [Min, Max] an activation is calibrated to.</summary>
public readonly record struct TensorRange(float Min, float Max)
{
    public static readonly TensorRange Empty = new(float.PositiveInfinity, float.NegativeInfinity);

    public bool IsEmpty => Min > Max;

    public TensorRange Union(TensorRange other) => new(MathF.Min(Min, other.Min), MathF.Max(Max, other.Max));

    public override string ToString() => IsEmpty ? "[empty]" : FormattableString.Invariant($"[{Min:G6}, {Max:G6}]");
}
