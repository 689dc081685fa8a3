namespace TinyOps.Engine.Ir;

/// <summary>A dimension of a declared or inferred shape: a number, a named symbol such as "N", or unknown.</summary>
public readonly record struct Dim(long Value, string? Symbol)
{
    public static Dim Of(long value) => new(value, null);
    public static Dim Sym(string symbol) => new(-1, symbol);
    public static readonly Dim Unknown = new(-1, null);

    public bool IsKnown => Symbol is null && Value >= 0;

    public override string ToString() => Symbol ?? (Value >= 0 ? Value.ToString(System.Globalization.CultureInfo.InvariantCulture) : "?");
}
