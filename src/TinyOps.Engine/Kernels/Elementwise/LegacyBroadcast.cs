using TinyOps.Engine.Ir;
using TinyOps.Engine.Kernels.Common;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Kernels.Elementwise;

/// <summary>
/// The binary-operator broadcasting of opsets before 7: with attribute broadcast=1, B is broadcast to A's shape,
/// its dimensions matching A's from <c>axis</c> (or A's trailing dimensions when axis is absent). Without it the
/// shapes must agree; this engine also accepts numpy broadcasting there, which is a superset.
/// </summary>
internal readonly struct LegacyBroadcast
{
    private readonly bool _enabled;
    private readonly long? _axis;

    public LegacyBroadcast(Node node, int opset, int lastLegacyOpset)
    {
        _enabled = opset <= lastLegacyOpset && node.GetInt("broadcast", 0) != 0;
        _axis = _enabled && node.HasAttribute("axis") ? node.GetInt("axis", 0) : null;
    }

    public bool Enabled => _enabled;

    /// <summary>The output shape for inputs 0 and 1 (validating them).</summary>
    public int[] OutputShape(InferContext ctx)
    {
        if (!_enabled) return Broadcast.Shape(ctx, 0, 1);
        var a = ctx.InputShape(0);
        var b = ctx.InputShape(1);
        Span<int> eb = stackalloc int[Broadcast.MaxRank];
        if (a.Length > Broadcast.MaxRank) throw ctx.Error($"rank {a.Length} is above the supported {Broadcast.MaxRank}");
        if (!TryShapeB(a, b, eb, out string? error)) throw ctx.Error(error!);
        return (int[])a.Clone();
    }

    /// <summary>B's shape aligned to A's rank as the legacy rules place it; writes a.Length dims into <paramref name="dest"/>.</summary>
    public ReadOnlySpan<int> ShapeB(ReadOnlySpan<int> a, ReadOnlySpan<int> b, Span<int> dest)
    {
        if (!_enabled) return b;
        if (!TryShapeB(a, b, dest, out string? error)) throw new ModelValidationException(error!);
        return dest[..a.Length];
    }

    private bool TryShapeB(ReadOnlySpan<int> a, ReadOnlySpan<int> b, Span<int> dest, out string? error)
    {
        error = null;
        int ra = a.Length, rb = b.Length;
        dest[..ra].Fill(1);
        if (ShapeUtil.Size(b) == 1) return true; // a scalar broadcasts anywhere
        if (rb > ra)
        {
            error = $"legacy broadcast: B has rank {rb}, above A's rank {ra}";
            return false;
        }
        int axis = ra - rb;
        if (_axis is long ax)
        {
            if (ax < -ra || ax >= ra)
            {
                error = $"legacy broadcast: axis {ax} is out of range for rank {ra}";
                return false;
            }
            axis = (int)(ax < 0 ? ax + ra : ax);
            if (axis + rb > ra)
            {
                error = $"legacy broadcast: B of rank {rb} does not fit A of rank {ra} from axis {axis}";
                return false;
            }
        }
        for (int i = 0; i < rb; i++)
        {
            if (b[i] != a[axis + i] && b[i] != 1)
            {
                error = $"legacy broadcast: B's shape {ShapeUtil.Format(b)} does not match A's shape {ShapeUtil.Format(a)} from axis {axis}";
                return false;
            }
            dest[axis + i] = b[i];
        }
        return true;
    }
}
