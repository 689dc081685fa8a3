using TinyOps.Engine.Ir;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Kernels.Nn;

/// <summary>
/// The attributes shared by Conv and ConvTranspose (auto_pad, kernel_shape, pads, strides, dilations, group,
/// and for ConvTranspose output_padding and output_shape), validated once, and the shape arithmetic of both.
/// </summary>
internal sealed class ConvAttributes
{
    public enum PadMode { NotSet, SameUpper, SameLower, Valid }

    private readonly Node _node;

    public PadMode AutoPad { get; }
    public int Group { get; }
    public long[]? KernelShape { get; }
    public long[]? Pads { get; }
    public long[]? Strides { get; }
    public long[]? Dilations { get; }
    public long[]? OutputPadding { get; }
    public long[]? OutputShapeAttr { get; }

    public ConvAttributes(Node node, bool transpose)
    {
        _node = node;
        string autoPad = node.GetString("auto_pad", "NOTSET");
        AutoPad = autoPad switch
        {
            "NOTSET" or "" => PadMode.NotSet,
            "SAME_UPPER" => PadMode.SameUpper,
            "SAME_LOWER" => PadMode.SameLower,
            "VALID" => PadMode.Valid,
            _ => throw Error($"auto_pad '{autoPad}' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID"),
        };
        long group = node.GetInt("group", 1);
        if (group < 1 || group > int.MaxValue) throw Error($"group must be positive, it is {group}");
        Group = (int)group;
        KernelShape = node.GetInts("kernel_shape");
        Pads = node.GetInts("pads");
        Strides = node.GetInts("strides");
        Dilations = node.GetInts("dilations");
        if (transpose)
        {
            OutputPadding = node.GetInts("output_padding");
            OutputShapeAttr = node.GetInts("output_shape");
        }
        CheckPositive(KernelShape, "kernel_shape");
        CheckPositive(Strides, "strides");
        CheckPositive(Dilations, "dilations");
        if (Pads is not null)
            foreach (long p in Pads)
                if (p < 0 || p > int.MaxValue) throw Error($"pads must be non-negative, got [{string.Join(",", Pads)}]");
        if (OutputPadding is not null)
            foreach (long p in OutputPadding)
                if (p < 0 || p > int.MaxValue) throw Error($"output_padding must be non-negative, got [{string.Join(",", OutputPadding)}]");
    }

    private void CheckPositive(long[]? values, string name)
    {
        if (values is null) return;
        foreach (long v in values)
            if (v < 1 || v > int.MaxValue) throw Error($"{name} values must be positive, got [{string.Join(",", values)}]");
    }

    private ModelValidationException Error(string message) => new($"{_node.DisplayName}: {message}");

    private void CheckLength(long[]? values, int expected, string name, int spatialRank)
    {
        if (values is not null && values.Length != expected)
            throw Error($"{name} has {values.Length} values but the input has {spatialRank} spatial dimensions (expected {expected})");
    }

    private static int At(long[]? values, int i, int fallback) => values is null ? fallback : (int)values[i];

    /// <summary>Common checks of X [N, C, D...] and W; returns the spatial rank.</summary>
    private int CheckRanks(ReadOnlySpan<int> x, ReadOnlySpan<int> w)
    {
        if (x.Length < 3)
            throw Error($"input X must have shape [N, C, spatial...] with at least one spatial dimension, it has shape {ShapeUtil.Format(x)}");
        int nsp = x.Length - 2;
        if (nsp > 3) throw Error($"{nsp} spatial dimensions are not supported (at most 3)");
        if (w.Length != x.Length)
            throw Error($"weight W has shape {ShapeUtil.Format(w)}, whose rank differs from input X {ShapeUtil.Format(x)}");
        CheckLength(KernelShape, nsp, "kernel_shape", nsp);
        CheckLength(Strides, nsp, "strides", nsp);
        CheckLength(Dilations, nsp, "dilations", nsp);
        CheckLength(Pads, 2 * nsp, "pads", nsp);
        if (KernelShape is not null)
            for (int i = 0; i < nsp; i++)
                if (KernelShape[i] != w[2 + i])
                    throw Error($"kernel_shape [{string.Join(",", KernelShape)}] does not match weight W of shape {ShapeUtil.Format(w)}");
        return nsp;
    }

    private static ConvShape Lifted(int nsp)
    {
        var s = new ConvShape { SpatialRank = nsp };
        for (int i = 0; i < 3; i++)
        {
            s.In[i] = 1; s.Kernel[i] = 1; s.Out[i] = 1; s.Stride[i] = 1; s.Dilation[i] = 1; s.PadBegin[i] = 0;
        }
        return s;
    }

    /// <summary>Geometry of Conv for X [N, C, D...] and W [M, C/group, k...].</summary>
    public ConvShape ForConv(ReadOnlySpan<int> x, ReadOnlySpan<int> w)
    {
        int nsp = CheckRanks(x, w);
        var s = Lifted(nsp);
        s.Batch = x[0];
        s.InChannels = x[1];
        s.OutChannels = w[0];
        s.Group = Group;
        if (x[1] != w[1] * Group)
            throw Error($"input X has {x[1]} channels but weight W {ShapeUtil.Format(w)} with group={Group} expects {(long)w[1] * Group}");
        if (w[0] % Group != 0)
            throw Error($"weight W has {w[0]} output channels, not a multiple of group={Group}");
        for (int i = 0; i < nsp; i++)
        {
            int d = 3 - nsp + i;
            int inSize = x[2 + i], k = w[2 + i], stride = At(Strides, i, 1), dil = At(Dilations, i, 1);
            long extent = (long)(k - 1) * dil + 1;
            long outSize, padBegin;
            switch (AutoPad)
            {
                case PadMode.SameUpper:
                case PadMode.SameLower:
                {
                    outSize = (inSize + (long)stride - 1) / stride;
                    long total = Math.Max(0, (outSize - 1) * stride + extent - inSize);
                    padBegin = AutoPad == PadMode.SameUpper ? total / 2 : total - total / 2;
                    break;
                }
                case PadMode.Valid:
                    padBegin = 0;
                    outSize = inSize >= extent ? (inSize - extent) / stride + 1 : 0;
                    break;
                default:
                {
                    padBegin = At(Pads, i, 0);
                    long padded = inSize + padBegin + At(Pads, i + nsp, 0);
                    outSize = padded >= extent ? (padded - extent) / stride + 1 : 0;
                    break;
                }
            }
            if (outSize < 1 && inSize > 0)
                throw Error($"spatial axis {i}: input size {inSize} with padding is smaller than the dilated kernel extent {extent}");
            s.In[d] = inSize;
            s.Kernel[d] = k;
            s.Stride[d] = stride;
            s.Dilation[d] = dil;
            s.PadBegin[d] = (int)padBegin;
            s.Out[d] = (int)outSize;
        }
        return s;
    }

    /// <summary>Geometry of ConvTranspose for X [N, C, D...] and W [C, M/group, k...].</summary>
    public ConvShape ForTranspose(ReadOnlySpan<int> x, ReadOnlySpan<int> w)
    {
        int nsp = CheckRanks(x, w);
        CheckLength(OutputPadding, nsp, "output_padding", nsp);
        if (OutputShapeAttr is not null && OutputShapeAttr.Length != nsp && OutputShapeAttr.Length != nsp + 2)
            throw Error($"output_shape has {OutputShapeAttr.Length} values but the input has {nsp} spatial dimensions");
        var s = Lifted(nsp);
        s.Batch = x[0];
        s.InChannels = x[1];
        s.OutChannels = w[1] * Group;
        s.Group = Group;
        if (x[1] != w[0])
            throw Error($"input X has {x[1]} channels but weight W has shape {ShapeUtil.Format(w)} (its first dimension must equal the input channels)");
        if (x[1] % Group != 0)
            throw Error($"input X has {x[1]} channels, not a multiple of group={Group}");
        int osOffset = OutputShapeAttr is not null && OutputShapeAttr.Length == nsp + 2 ? 2 : 0;
        for (int i = 0; i < nsp; i++)
        {
            int d = 3 - nsp + i;
            int inSize = x[2 + i], k = w[2 + i], stride = At(Strides, i, 1), dil = At(Dilations, i, 1);
            int outPad = At(OutputPadding, i, 0);
            long extent = (long)(k - 1) * dil + 1;
            long natural = (long)stride * (inSize - 1) + outPad + extent;
            long outSize, padBegin;
            if (OutputShapeAttr is not null || AutoPad is PadMode.SameUpper or PadMode.SameLower)
            {
                outSize = OutputShapeAttr is not null ? OutputShapeAttr[osOffset + i] : (long)inSize * stride;
                long total = natural - outSize;
                long half = total >= 0 ? total / 2 : -((-total + 1) / 2);
                padBegin = AutoPad == PadMode.SameUpper ? half : total - half;
            }
            else if (AutoPad == PadMode.Valid)
            {
                padBegin = 0;
                outSize = natural;
            }
            else
            {
                padBegin = At(Pads, i, 0);
                outSize = natural - padBegin - At(Pads, i + nsp, 0);
            }
            if (outSize < 0 || outSize > int.MaxValue)
                throw Error($"spatial axis {i}: the output size {outSize} is invalid (check pads, strides and output_shape)");
            s.In[d] = inSize;
            s.Kernel[d] = k;
            s.Stride[d] = stride;
            s.Dilation[d] = dil;
            s.PadBegin[d] = (int)padBegin;
            s.Out[d] = (int)outSize;
        }
        return s;
    }

    /// <summary>Lowest o in [0, count) with o * stride + offset >= 0, and one past the highest with it below limit.</summary>
    public static void ValidRange(int count, int stride, int offset, int limit, out int lo, out int hi)
    {
        lo = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
        hi = limit - 1 - offset >= 0 ? Math.Min(count, (limit - 1 - offset) / stride + 1) : 0;
        if (lo > count) lo = count;
        if (hi < lo) hi = lo;
    }
}
