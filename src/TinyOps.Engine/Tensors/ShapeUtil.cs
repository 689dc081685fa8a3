namespace TinyOps.Engine.Tensors;

/// <summary>Shape arithmetic shared by the loader, planner and kernels.</summary>
public static class ShapeUtil
{
    /// <summary>Largest element count a single tensor may have (fits an int index and an array of 8-byte elements).</summary>
    public const long MaxElements = int.MaxValue / 8;

    public static int Size(ReadOnlySpan<int> shape)
    {
        int n = 1;
        for (int i = 0; i < shape.Length; i++) n *= shape[i];
        return n;
    }

    /// <summary>Element count with overflow and negativity checks; <paramref name="what"/> names the tensor in errors.</summary>
    public static int SizeChecked(ReadOnlySpan<int> shape, string what)
    {
        long n = 1;
        for (int i = 0; i < shape.Length; i++)
        {
            if (shape[i] < 0) throw new ModelValidationException($"{what}: dimension {i} is negative ({shape[i]}) in shape {Format(shape)}");
            n *= shape[i];
            if (n > MaxElements) throw new ResourceLimitException($"{what}: shape {Format(shape)} has more than {MaxElements} elements");
        }
        return (int)n;
    }

    public static int SizeFrom(ReadOnlySpan<int> shape, int axis)
    {
        int n = 1;
        for (int i = axis; i < shape.Length; i++) n *= shape[i];
        return n;
    }

    public static int SizeTo(ReadOnlySpan<int> shape, int axis)
    {
        int n = 1;
        for (int i = 0; i < axis; i++) n *= shape[i];
        return n;
    }

    public static int[] Strides(ReadOnlySpan<int> shape)
    {
        var s = new int[shape.Length];
        int acc = 1;
        for (int i = shape.Length - 1; i >= 0; i--) { s[i] = acc; acc *= shape[i]; }
        return s;
    }

    public static string Format(ReadOnlySpan<int> shape)
    {
        var parts = new string[shape.Length];
        for (int i = 0; i < shape.Length; i++) parts[i] = shape[i].ToString(System.Globalization.CultureInfo.InvariantCulture);
        return "[" + string.Join(",", parts) + "]";
    }

    public static bool SameShape(ReadOnlySpan<int> a, ReadOnlySpan<int> b) => a.SequenceEqual(b);

    /// <summary>Numpy-style multidirectional broadcast of two shapes; null if they do not broadcast.</summary>
    public static int[]? TryBroadcast(ReadOnlySpan<int> a, ReadOnlySpan<int> b)
    {
        int rank = Math.Max(a.Length, b.Length);
        var r = new int[rank];
        for (int i = 0; i < rank; i++)
        {
            int da = i - (rank - a.Length) >= 0 ? a[i - (rank - a.Length)] : 1;
            int db = i - (rank - b.Length) >= 0 ? b[i - (rank - b.Length)] : 1;
            if (da == db || db == 1) r[i] = da;
            else if (da == 1) r[i] = db;
            else return null;
        }
        return r;
    }

    /// <summary>Normalizes a possibly negative axis against a rank, throwing a clear error when out of range.</summary>
    public static int NormalizeAxis(long axis, int rank, string where)
    {
        if (axis < -rank || axis >= Math.Max(rank, 1) && !(rank == 0 && axis == 0))
            throw new ModelValidationException($"{where}: axis {axis} is out of range for rank {rank}");
        return (int)(axis < 0 ? axis + rank : axis);
    }

    /// <summary>Strides of <paramref name="shape"/> aligned to the right of an output of rank <paramref name="outRank"/>, 0 where broadcast.</summary>
    public static void BroadcastStrides(ReadOnlySpan<int> shape, ReadOnlySpan<int> outShape, Span<int> strides)
    {
        int offset = outShape.Length - shape.Length;
        int acc = 1;
        for (int i = outShape.Length - 1; i >= 0; i--)
        {
            int si = i - offset;
            if (si < 0) { strides[i] = 0; continue; }
            strides[i] = shape[si] == 1 && outShape[i] != 1 ? 0 : acc;
            acc *= shape[si];
        }
    }
}
