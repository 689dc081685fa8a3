using TinyOps.Engine.Ir;

namespace TinyOps.Engine.Kernels.Pooling;

/// <summary>
/// Attributes and window geometry shared by MaxPool and AveragePool. Spatial dimensions are normalized to three
/// (leading dimensions of size 1 with a 1-wide kernel) so the pooling loops are fixed triple loops.
/// </summary>
internal sealed class PoolGeometry
{
    public const int MaxSpatial = 3;

    private readonly string _name;
    private readonly int[] _kernel, _strides, _dilations, _pads;

    public PoolGeometry(Node node, bool allowCeil, bool allowDilations)
    {
        _name = node.DisplayName;
        var k = node.GetInts("kernel_shape") ?? throw Error("required attribute 'kernel_shape' is missing");
        Spatial = k.Length;
        if (Spatial == 0) throw Error("'kernel_shape' is empty");
        if (Spatial > MaxSpatial) throw Error($"pooling over {Spatial} spatial dimensions is not supported (at most {MaxSpatial})");
        _kernel = ToInts(k, "kernel_shape", 1);
        _strides = Read(node, "strides", Spatial, 1, 1);
        _dilations = allowDilations ? Read(node, "dilations", Spatial, 1, 1) : Filled(Spatial, 1);
        if (!allowDilations && node.HasAttribute("dilations"))
        {
            var d = node.GetInts("dilations");
            if (d is not null && d.Any(v => v != 1)) throw Error("'dilations' is not supported by this operator version");
        }
        _pads = Read(node, "pads", 2 * Spatial, 0, 0);
        AutoPad = node.GetString("auto_pad", "NOTSET");
        if (AutoPad is not ("NOTSET" or "SAME_UPPER" or "SAME_LOWER" or "VALID"))
            throw Error($"'auto_pad' must be NOTSET, SAME_UPPER, SAME_LOWER or VALID, not '{AutoPad}'");
        if (AutoPad != "NOTSET" && node.HasAttribute("pads") && _pads.Any(p => p != 0))
            throw Error($"'pads' must not be set together with auto_pad {AutoPad}");
        long ceil = node.GetInt("ceil_mode", 0);
        if (ceil is not (0 or 1)) throw Error($"'ceil_mode' must be 0 or 1, not {ceil}");
        if (ceil == 1 && !allowCeil) throw Error("'ceil_mode' is not supported by this operator version");
        CeilMode = ceil == 1;
    }

    public int Spatial { get; }
    public string AutoPad { get; }
    public bool CeilMode { get; }

    // Normalized 3-D geometry for the last computed input shape.
    public readonly int[] In = new int[MaxSpatial];
    public readonly int[] Out = new int[MaxSpatial];
    public readonly int[] K = new int[MaxSpatial];
    public readonly int[] S = new int[MaxSpatial];
    public readonly int[] D = new int[MaxSpatial];
    public readonly int[] PadBegin = new int[MaxSpatial];
    public readonly int[] PadEnd = new int[MaxSpatial];

    public int InSize => In[0] * In[1] * In[2];
    public int OutSize => Out[0] * Out[1] * Out[2];

    /// <summary>Computes the geometry for input shape <paramref name="x"/> (N, C, spatial...); returns an error message or null.</summary>
    public string? Compute(ReadOnlySpan<int> x)
    {
        if (x.Length != Spatial + 2)
            return $"input has rank {x.Length}, but kernel_shape has {Spatial} dimensions (expected rank {Spatial + 2})";
        int lead = MaxSpatial - Spatial;
        for (int i = 0; i < lead; i++)
        {
            In[i] = Out[i] = K[i] = S[i] = D[i] = 1;
            PadBegin[i] = PadEnd[i] = 0;
        }
        for (int i = 0; i < Spatial; i++)
        {
            int j = i + lead;
            int inDim = x[i + 2], k = _kernel[i], s = _strides[i], d = _dilations[i];
            int ek = (k - 1) * d + 1;
            int pb = _pads[i], pe = _pads[i + Spatial], o;
            switch (AutoPad)
            {
                case "VALID":
                    pb = pe = 0;
                    o = inDim >= ek ? (inDim - ek) / s + 1 : 0;
                    break;
                case "SAME_UPPER":
                case "SAME_LOWER":
                {
                    o = (inDim + s - 1) / s;
                    int total = Math.Max(0, (o - 1) * s + ek - inDim);
                    int small = total / 2;
                    pb = AutoPad == "SAME_UPPER" ? small : total - small;
                    pe = total - pb;
                    break;
                }
                default:
                {
                    int num = inDim + pb + pe - ek;
                    if (num < 0) { o = 0; break; }
                    if (CeilMode)
                    {
                        o = (num + s - 1) / s + 1;
                        // the last window must start inside the input or its leading padding
                        if ((o - 1) * s >= inDim + pb) o--;
                    }
                    else o = num / s + 1;
                    break;
                }
            }
            if (o <= 0 && inDim > 0)
                return $"spatial dimension {i} of size {inDim} (pads {pb}+{pe}) is smaller than the {ek}-wide (dilated) kernel";
            In[j] = inDim;
            Out[j] = Math.Max(o, 0);
            K[j] = k;
            S[j] = s;
            D[j] = d;
            PadBegin[j] = pb;
            PadEnd[j] = pe;
        }
        return null;
    }

    /// <summary>The output shape (N, C, out...) for the last computed geometry.</summary>
    public int[] OutputShape(ReadOnlySpan<int> x)
    {
        var r = new int[x.Length];
        r[0] = x[0];
        r[1] = x[1];
        for (int i = 0; i < Spatial; i++) r[i + 2] = Out[i + MaxSpatial - Spatial];
        return r;
    }

    /// <summary>The first and one-past-last kernel tap whose input coordinate lies inside [0, size).</summary>
    public static void TapRange(int start, int k, int d, int size, out int lo, out int hi)
    {
        lo = start < 0 ? (-start + d - 1) / d : 0;
        int room = size - start;
        hi = room <= 0 ? 0 : Math.Min(k, (room + d - 1) / d);
        if (hi < lo) hi = lo;
    }

    /// <summary>Kernel taps whose coordinate lies inside the padded extent [-padBegin, size + padEnd).</summary>
    public static int PaddedTapCount(int start, int k, int d, int size, int padBegin, int padEnd)
    {
        TapRange(start + padBegin, k, d, size + padBegin + padEnd, out int lo, out int hi);
        return hi - lo;
    }

    private ModelValidationException Error(string msg) => new($"{_name}: {msg}");

    private int[] Read(Node node, string name, int count, int min, int fallback)
    {
        var v = node.GetInts(name);
        if (v is null) return Filled(count, fallback);
        if (v.Length != count) throw Error($"'{name}' has {v.Length} values, expected {count}");
        return ToInts(v, name, min);
    }

    private int[] ToInts(long[] v, string name, int min)
    {
        var r = new int[v.Length];
        for (int i = 0; i < v.Length; i++)
        {
            if (v[i] < min || v[i] > int.MaxValue / 4) throw Error($"'{name}' value {v[i]} is out of range");
            r[i] = (int)v[i];
        }
        return r;
    }

    private static int[] Filled(int n, int v)
    {
        var r = new int[n];
        Array.Fill(r, v);
        return r;
    }
}
