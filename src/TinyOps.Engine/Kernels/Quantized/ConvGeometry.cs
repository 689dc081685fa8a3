using TinyOps.Engine.Ir;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Kernels.Quantized;

/// <summary>
/// Conv attributes (auto_pad, pads, strides, dilations, group, kernel_shape) and the derived geometry for one
/// pair of input/weight shapes, plus an allocation-free im2col for any number of spatial dimensions.
/// </summary>
internal sealed class ConvGeometry
{
    public const int MaxSpatial = 8;

    private readonly string _autoPad;
    private readonly long[]? _kernelShape, _pads, _strides, _dilations;
    public int Group { get; }

    // Geometry for the last computed shapes.
    public int Batch, InChannels, OutChannels, SpatialRank, InSize, OutSize, KernelSize;
    public readonly int[] InDims = new int[MaxSpatial], OutDims = new int[MaxSpatial], KDims = new int[MaxSpatial];
    public readonly int[] Strides = new int[MaxSpatial], Dilations = new int[MaxSpatial], PadBegin = new int[MaxSpatial];
    private readonly int[] _lastX = new int[MaxSpatial + 2], _lastW = new int[MaxSpatial + 2];
    private int _lastXRank = -1, _lastWRank = -1;

    /// <summary>Input channels per group times kernel size: the depth of the integer GEMM.</summary>
    public int ColRows => InChannels / Group * KernelSize;

    /// <summary>True when im2col is the identity (1x1 kernel, stride 1, no padding).</summary>
    public bool IsPointwise { get; private set; }

    public ConvGeometry(Node node)
    {
        _autoPad = node.GetString("auto_pad", "NOTSET");
        if (_autoPad is not ("NOTSET" or "SAME_UPPER" or "SAME_LOWER" or "VALID"))
            throw new ModelValidationException($"{node.DisplayName}: auto_pad '{_autoPad}' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID");
        long group = node.GetInt("group", 1);
        if (group < 1 || group > int.MaxValue) throw new ModelValidationException($"{node.DisplayName}: group must be positive, it is {group}");
        Group = (int)group;
        _kernelShape = node.GetInts("kernel_shape");
        _pads = node.GetInts("pads");
        _strides = node.GetInts("strides");
        _dilations = node.GetInts("dilations");
        if (_strides is not null && _strides.Any(s => s < 1)) throw new ModelValidationException($"{node.DisplayName}: strides must be positive");
        if (_dilations is not null && _dilations.Any(s => s < 1)) throw new ModelValidationException($"{node.DisplayName}: dilations must be positive");
        if (_pads is not null && _pads.Any(s => s < 0)) throw new ModelValidationException($"{node.DisplayName}: pads must not be negative");
    }

    /// <summary>Computes the geometry for x [N, C, D...] and w [M, C/group, k...]; returns an error message or null.</summary>
    public string? Compute(ReadOnlySpan<int> x, ReadOnlySpan<int> w)
    {
        if (_lastXRank == x.Length && _lastWRank == w.Length && x.SequenceEqual(_lastX.AsSpan(0, x.Length)) && w.SequenceEqual(_lastW.AsSpan(0, w.Length)))
            return null;
        _lastXRank = -1;
        if (x.Length < 3) return $"input X must have rank 3 or more ([N, C, D1, ...]), it has shape {ShapeUtil.Format(x)}";
        if (w.Length != x.Length) return $"weight W has shape {ShapeUtil.Format(w)}, which does not match the rank of X {ShapeUtil.Format(x)}";
        int sr = x.Length - 2;
        if (sr > MaxSpatial) return $"{sr} spatial dimensions are more than the supported {MaxSpatial}";
        Batch = x[0]; InChannels = x[1]; OutChannels = w[0]; SpatialRank = sr;
        if (InChannels % Group != 0 || OutChannels % Group != 0)
            return $"channels ({InChannels} in, {OutChannels} out) are not divisible by group {Group}";
        if (w[1] * Group != InChannels)
            return $"weight W has {w[1]} input channels per group but X has {InChannels} channels with group {Group}";
        if (_kernelShape is not null && _kernelShape.Length != sr) return $"kernel_shape has {_kernelShape.Length} entries for {sr} spatial dimensions";
        if (_strides is not null && _strides.Length != sr) return $"strides has {_strides.Length} entries for {sr} spatial dimensions";
        if (_dilations is not null && _dilations.Length != sr) return $"dilations has {_dilations.Length} entries for {sr} spatial dimensions";
        if (_pads is not null && _pads.Length != 2 * sr) return $"pads has {_pads.Length} entries for {sr} spatial dimensions (needs {2 * sr})";
        InSize = 1; OutSize = 1; KernelSize = 1;
        bool pointwise = true;
        for (int d = 0; d < sr; d++)
        {
            int inD = x[d + 2];
            int k = w[d + 2];
            if (_kernelShape is not null && _kernelShape[d] != k) return $"kernel_shape {string.Join(",", _kernelShape)} does not match weight shape {ShapeUtil.Format(w)}";
            int s = _strides is null ? 1 : (int)_strides[d];
            int dil = _dilations is null ? 1 : (int)_dilations[d];
            int ek = (k - 1) * dil + 1;
            int pb, pe, outD;
            if (_autoPad is "SAME_UPPER" or "SAME_LOWER")
            {
                outD = (inD + s - 1) / s;
                int total = Math.Max(0, (outD - 1) * s + ek - inD);
                pb = _autoPad == "SAME_UPPER" ? total / 2 : total - total / 2;
                pe = total - pb;
            }
            else
            {
                pb = _autoPad == "VALID" || _pads is null ? 0 : (int)_pads[d];
                pe = _autoPad == "VALID" || _pads is null ? 0 : (int)_pads[d + sr];
                long span = (long)inD + pb + pe - ek;
                if (span < 0) return $"the dilated kernel ({ek}) is larger than padded input dimension {d} ({inD + pb + pe})";
                outD = (int)(span / s + 1);
            }
            InDims[d] = inD; OutDims[d] = outD; KDims[d] = k; Strides[d] = s; Dilations[d] = dil; PadBegin[d] = pb;
            InSize *= inD; OutSize *= outD; KernelSize *= k;
            if (k != 1 || s != 1 || pb != 0 || pe != 0) pointwise = false;
        }
        IsPointwise = pointwise;
        x.CopyTo(_lastX); w.CopyTo(_lastW);
        _lastXRank = x.Length; _lastWRank = w.Length;
        return null;
    }

    /// <summary>2-D, dilation 1: each (channel, kh, kw) row is, per output row, a copy (stride 1) or a strided gather between padded edges.</summary>
    private void Im2Col2D<T>(ReadOnlySpan<T> x, int channels, Span<T> col, T pad) where T : unmanaged
    {
        int h = InDims[0], w = InDims[1], oh = OutDims[0], ow = OutDims[1], kh = KDims[0], kw = KDims[1];
        int sh = Strides[0], sw = Strides[1], pt = PadBegin[0], pl = PadBegin[1];
        int row = 0;
        for (int c = 0; c < channels; c++)
        {
            var xc = x.Slice(c * InSize, InSize);
            for (int i = 0; i < kh; i++)
                for (int j = 0; j < kw; j++, row++)
                {
                    var dst = col.Slice(row * OutSize, OutSize);
                    int iw0 = j - pl;
                    // valid output columns: 0 <= o*sw + iw0 < w
                    int oLo = iw0 >= 0 ? 0 : (-iw0 + sw - 1) / sw;
                    int oHi = w - iw0 <= 0 ? 0 : Math.Min(ow, (w - iw0 + sw - 1) / sw);
                    if (oHi < oLo) oHi = oLo;
                    for (int o = 0; o < oh; o++)
                    {
                        var seg = dst.Slice(o * ow, ow);
                        int ih = o * sh + i - pt;
                        if ((uint)ih >= (uint)h) { seg.Fill(pad); continue; }
                        var xr = xc.Slice(ih * w, w);
                        if (oLo > 0) seg.Slice(0, oLo).Fill(pad);
                        if (oHi < ow) seg.Slice(oHi).Fill(pad);
                        if (sw == 1) xr.Slice(oLo + iw0, oHi - oLo).CopyTo(seg.Slice(oLo, oHi - oLo));
                        else for (int q = oLo, iw = oLo * sw + iw0; q < oHi; q++, iw += sw) seg[q] = xr[iw];
                    }
                }
        }
    }

    /// <summary>True when <paramref name="shape"/> is <see cref="OutputShape"/> (without allocating one).</summary>
    public bool IsOutputShape(ReadOnlySpan<int> shape)
    {
        if (shape.Length != SpatialRank + 2 || shape[0] != Batch || shape[1] != OutChannels) return false;
        for (int d = 0; d < SpatialRank; d++)
            if (shape[d + 2] != OutDims[d]) return false;
        return true;
    }

    public int[] OutputShape()
    {
        var r = new int[SpatialRank + 2];
        r[0] = Batch; r[1] = OutChannels;
        for (int d = 0; d < SpatialRank; d++) r[d + 2] = OutDims[d];
        return r;
    }

    /// <summary>
    /// Unfolds <paramref name="channels"/> channels of one image (x, [channels, D...]) into col [channels·KernelSize, OutSize];
    /// positions in the padding read <paramref name="pad"/>.
    /// </summary>
    public void Im2Col<T>(ReadOnlySpan<T> x, int channels, Span<T> col, T pad) where T : unmanaged
    {
        if (SpatialRank == 2 && Dilations[0] == 1 && Dilations[1] == 1)
        {
            Im2Col2D(x, channels, col, pad);
            return;
        }
        int sr = SpatialRank, last = sr - 1;
        Span<int> kIdx = stackalloc int[sr];
        Span<int> oIdx = stackalloc int[sr];
        int outLast = OutDims[last], inLast = InDims[last], sLast = Strides[last];
        int row = 0;
        for (int c = 0; c < channels; c++)
        {
            var xc = x.Slice(c * InSize, InSize);
            kIdx.Clear();
            for (int kk = 0; kk < KernelSize; kk++, row++)
            {
                var dst = col.Slice(row * OutSize, OutSize);
                oIdx.Clear();
                int startLast = kIdx[last] * Dilations[last] - PadBegin[last];
                for (int o = 0; o < OutSize; o += outLast)
                {
                    bool valid = true;
                    int off = 0;
                    for (int d = 0; d < last; d++)
                    {
                        int i = oIdx[d] * Strides[d] - PadBegin[d] + kIdx[d] * Dilations[d];
                        if ((uint)i >= (uint)InDims[d]) { valid = false; break; }
                        off = off * InDims[d] + i;
                    }
                    var seg = dst.Slice(o, outLast);
                    if (!valid) seg.Fill(pad);
                    else
                    {
                        var xr = xc.Slice(off * inLast, inLast);
                        int iw = startLast;
                        for (int ow = 0; ow < outLast; ow++, iw += sLast)
                            seg[ow] = (uint)iw < (uint)inLast ? xr[iw] : pad;
                    }
                    for (int d = last - 1; d >= 0; d--)
                    {
                        if (++oIdx[d] < OutDims[d]) break;
                        oIdx[d] = 0;
                    }
                }
                for (int d = last; d >= 0; d--)
                {
                    if (++kIdx[d] < KDims[d]) break;
                    kIdx[d] = 0;
                }
            }
        }
    }
}
