using TinyOps.Engine.Ir;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Kernels.ShapeOps;

/// <summary>
/// Resize (opsets 10, 11, 13, 18, 19): nearest (every nearest_mode), linear and cubic interpolation over any
/// rank, computed one axis at a time; every coordinate_transformation_mode; scales or sizes; axes,
/// keep_aspect_ratio_policy and antialias (18+); exclude_outside and extrapolation_value. Nearest works on
/// every type by moving elements; linear and cubic compute in float32 and cast back (truncating) for integers.
/// </summary>
internal sealed class ResizeKernel : Kernel
{
    private enum Mode { Nearest, Linear, Cubic }
    private enum Coord { HalfPixel, HalfPixelSymmetric, PytorchHalfPixel, AlignCorners, Asymmetric, TfHalfPixelForNn, TfCropAndResize }
    private enum Round { PreferFloor, PreferCeil, Floor, Ceil }
    private enum Policy { Stretch, NotLarger, NotSmaller }

    private readonly Mode _mode;
    private readonly Coord _coord;
    private readonly Round _round;
    private readonly Policy _policy;
    private readonly float _cubicA;
    private readonly bool _excludeOutside;
    private readonly bool _antialias;
    private readonly float _extrapolation;
    private readonly long[]? _axes;

    public ResizeKernel(Node node, int opset) : base(node, opset)
    {
        string mode = node.GetString("mode", "nearest");
        _mode = mode switch
        {
            "nearest" => Mode.Nearest,
            "linear" or "bilinear" or "trilinear" => Mode.Linear,
            "cubic" or "bicubic" when opset >= 11 => Mode.Cubic,
            _ => throw Error($"mode '{mode}' is not valid (nearest, linear{(opset >= 11 ? ", cubic" : "")})"),
        };
        if (opset < 11)
        {
            _coord = Coord.Asymmetric;
            _round = Round.Floor;
            _policy = Policy.Stretch;
            _cubicA = -0.75f;
            return;
        }
        string coord = node.GetString("coordinate_transformation_mode", "half_pixel");
        _coord = coord switch
        {
            "half_pixel" => Coord.HalfPixel,
            "half_pixel_symmetric" => Coord.HalfPixelSymmetric,
            "pytorch_half_pixel" => Coord.PytorchHalfPixel,
            "align_corners" => Coord.AlignCorners,
            "asymmetric" => Coord.Asymmetric,
            "tf_half_pixel_for_nn" => Coord.TfHalfPixelForNn,
            "tf_crop_and_resize" => Coord.TfCropAndResize,
            _ => throw Error($"coordinate_transformation_mode '{coord}' is not valid"),
        };
        string round = node.GetString("nearest_mode", "round_prefer_floor");
        _round = round switch
        {
            "round_prefer_floor" => Round.PreferFloor,
            "round_prefer_ceil" => Round.PreferCeil,
            "floor" => Round.Floor,
            "ceil" => Round.Ceil,
            _ => throw Error($"nearest_mode '{round}' is not valid (round_prefer_floor, round_prefer_ceil, floor, ceil)"),
        };
        _cubicA = node.GetFloat("cubic_coeff_a", -0.75f);
        _excludeOutside = node.GetInt("exclude_outside", 0) != 0;
        _extrapolation = node.GetFloat("extrapolation_value", 0f);
        if (opset >= 18)
        {
            _antialias = node.GetInt("antialias", 0) != 0;
            if (_antialias && _mode == Mode.Nearest) throw Error("antialias is not supported with mode 'nearest'");
            _axes = node.GetInts("axes");
            string policy = node.GetString("keep_aspect_ratio_policy", "stretch");
            _policy = policy switch
            {
                "stretch" => Policy.Stretch,
                "not_larger" => Policy.NotLarger,
                "not_smaller" => Policy.NotSmaller,
                _ => throw Error($"keep_aspect_ratio_policy '{policy}' is not valid (stretch, not_larger, not_smaller)"),
            };
        }
    }

    private int ScalesInput => Opset < 11 ? 1 : 2;

    /// <summary>True when input <paramref name="i"/> is present and not an empty tensor.</summary>
    private static bool Given(InferContext ctx, int i) => ctx.HasInput(i) && ShapeUtil.Size(ctx.InputShape(i)) > 0;

    private static bool Given(Tensor? t) => t is not null && t.Length > 0;

    public override void Infer(InferContext ctx)
    {
        var type = ctx.ExpectType(0, ShapeOpsUtil.AllTypes);
        if (type == DataType.Bool && _mode != Mode.Nearest) throw ctx.Error($"mode '{_mode.ToString().ToLowerInvariant()}' does not apply to bool tensors");
        var input = ctx.InputShape(0);
        int r = input.Length;
        Tensor? scales = null, sizes = null;
        if (Given(ctx, ScalesInput))
        {
            ctx.ExpectType(ScalesInput, DataType.Float32);
            scales = ctx.RequireValue(ScalesInput);
        }
        if (Opset >= 11 && Given(ctx, 3))
        {
            ctx.ExpectType(3, DataType.Int64);
            sizes = ctx.RequireValue(3);
        }
        if (Opset >= 11 && _coord == Coord.TfCropAndResize && Given(ctx, 1)) ctx.ExpectType(1, DataType.Float32);
        Span<double> scale = stackalloc double[r];
        var output = new int[r];
        string? error = Compute(input, scales, sizes, scale, output);
        if (error is not null) throw ctx.Error(error);
        ctx.SetOutput(0, type, output);
    }

    /// <summary>Per-axis scale factor and output size, as the spec derives them from scales or sizes.</summary>
    private string? Compute(ReadOnlySpan<int> input, Tensor? scalesT, Tensor? sizesT, Span<double> scale, Span<int> output)
    {
        int r = input.Length;
        for (int d = 0; d < r; d++) { scale[d] = 1; output[d] = input[d]; }
        bool hasScales = Given(scalesT), hasSizes = Given(sizesT);
        if (hasScales == hasSizes)
            return hasScales ? "only one of 'scales' and 'sizes' may be given" : "one of 'scales' and 'sizes' must be given";
        int n = hasScales ? scalesT!.Length : sizesT!.Length;
        int k = _axes?.Length ?? r;
        if (n != k) return $"{(hasScales ? "scales" : "sizes")} has {n} entries; expected {k} ({(_axes is null ? "the input rank" : "one per axis")})";
        Span<int> axes = stackalloc int[k];
        Span<bool> seen = stackalloc bool[r];
        seen.Clear();
        for (int i = 0; i < k; i++)
        {
            if (_axes is null) { axes[i] = i; continue; }
            long a = _axes[i];
            if (a < -r || a >= r) return $"axis {a} is out of range for rank {r}";
            axes[i] = (int)(a < 0 ? a + r : a);
            if (seen[axes[i]]) return $"axis {a} is repeated";
            seen[axes[i]] = true;
        }
        if (hasScales)
        {
            var s = scalesT!.ReadOnlySpan<float>();
            for (int i = 0; i < k; i++)
            {
                int d = axes[i];
                if (!(s[i] > 0) || float.IsInfinity(s[i])) return $"scale {s[i]} for axis {d} must be positive";
                scale[d] = s[i];
                double size = Math.Floor((double)s[i] * input[d]);
                if (size > int.MaxValue) return $"scale {s[i]} makes axis {d} too large";
                output[d] = (int)size;
            }
            return null;
        }
        for (int i = 0; i < k; i++)
        {
            long v = sizesT!.GetInt64(i);
            int d = axes[i];
            if (v < 0 || v > int.MaxValue) return $"size {v} for axis {d} is not valid";
            if (input[d] == 0 && v != 0) return $"cannot resize axis {d} of size 0 to {v}";
            output[d] = (int)v;
            scale[d] = input[d] == 0 ? 1 : (double)v / input[d];
        }
        if (_policy != Policy.Stretch)
        {
            double common = _policy == Policy.NotLarger ? double.MaxValue : 0;
            for (int i = 0; i < k; i++)
                common = _policy == Policy.NotLarger ? Math.Min(common, scale[axes[i]]) : Math.Max(common, scale[axes[i]]);
            for (int i = 0; i < k; i++)
            {
                int d = axes[i];
                scale[d] = common;
                output[d] = (int)(common * input[d] + 0.5);
            }
        }
        return null;
    }

    /// <summary>The input coordinate of output index <paramref name="x"/> along one axis.</summary>
    private double SourceCoordinate(int x, int inSize, int outSize, double scale, double roiStart, double roiEnd)
    {
        double outWidth = scale * inSize;
        switch (_coord)
        {
            case Coord.AlignCorners:
                return outWidth == 1 ? 0 : x * (inSize - 1) / (outWidth - 1);
            case Coord.Asymmetric:
                return x / scale;
            case Coord.TfHalfPixelForNn:
                return (x + 0.5) / scale;
            case Coord.TfCropAndResize:
                double c = outWidth == 1
                    ? (roiEnd - roiStart) * (inSize - 1) / 2
                    : x * (roiEnd - roiStart) * (inSize - 1) / (outWidth - 1);
                return c + roiStart * (inSize - 1);
            case Coord.PytorchHalfPixel:
                return outWidth == 1 ? -0.5 : (x + 0.5) / scale - 0.5;
            case Coord.HalfPixelSymmetric:
                double adjustment = outSize / outWidth;
                double offset = inSize / 2.0 * (1 - adjustment);
                return offset + (x + 0.5) / scale - 0.5;
            default:
                return (x + 0.5) / scale - 0.5;
        }
    }

    private bool Extrapolates(double c, int inSize) => _coord == Coord.TfCropAndResize && (c < 0 || c > inSize - 1);

    public override void Run(RunContext ctx)
    {
        var x = ctx.Input(0);
        var y = ctx.Output(0);
        var inShape = x.Shape;
        var outShape = y.Shape;
        int r = inShape.Length;
        Span<double> scale = stackalloc double[r];
        Span<int> check = stackalloc int[r];
        var scalesT = ctx.OptionalInput(ScalesInput);
        var sizesT = Opset >= 11 ? ctx.OptionalInput(3) : null;
        string? error = Compute(inShape, scalesT, sizesT, scale, check);
        if (error is not null) throw Error(error);
        if (y.Length == 0) return;

        // roi, per axis start and end (only tf_crop_and_resize uses it)
        Span<double> roi = stackalloc double[2 * r];
        for (int d = 0; d < r; d++) { roi[d] = 0; roi[r + d] = 1; }
        var roiT = Opset >= 11 && _coord == Coord.TfCropAndResize ? ctx.OptionalInput(1) : null;
        if (Given(roiT))
        {
            int k = _axes?.Length ?? r;
            if (roiT!.Length != 2 * k) throw Error($"roi has {roiT.Length} entries; expected {2 * k}");
            for (int i = 0; i < k; i++)
            {
                int d = _axes is null ? i : (int)(_axes[i] < 0 ? _axes[i] + r : _axes[i]);
                roi[d] = roiT.GetFloat(i);
                roi[r + d] = roiT.GetFloat(k + i);
            }
        }

        if (_mode == Mode.Nearest) RunNearest(ctx, x, y, scale, roi);
        else RunInterpolate(ctx, x, y, scale, roi);
    }

    private void RunNearest(RunContext ctx, Tensor x, Tensor y, ReadOnlySpan<double> scale, ReadOnlySpan<double> roi)
    {
        var inShape = x.Shape;
        var outShape = y.Shape;
        int r = inShape.Length;
        int total = 0;
        for (int d = 0; d < r; d++) total += outShape[d];
        var maps = ctx.Scratch<int>(Math.Max(1, total), 0);
        Span<int> strides = stackalloc int[r];
        int stride = 1;
        for (int d = r - 1; d >= 0; d--) { strides[d] = stride; stride *= inShape[d]; }
        int k = 0;
        for (int d = 0; d < r; d++)
        {
            int inSize = inShape[d], outSize = outShape[d];
            for (int o = 0; o < outSize; o++)
            {
                double c = SourceCoordinate(o, inSize, outSize, scale[d], roi[d], roi[r + d]);
                if (Extrapolates(c, inSize)) { maps[k++] = -1; continue; }
                double f = Math.Floor(c);
                long idx;
                if (c == f) idx = (long)f;
                else
                {
                    double frac = c - f;
                    bool up = _round switch
                    {
                        Round.PreferFloor => frac > 0.5,
                        Round.PreferCeil => frac >= 0.5,
                        Round.Floor => false,
                        _ => true,
                    };
                    idx = (long)f + (up ? 1 : 0);
                }
                idx = Math.Clamp(idx, 0, inSize - 1);
                maps[k++] = (int)idx * strides[d];
            }
        }
        Span<byte> fill = stackalloc byte[8];
        fill.Clear();
        float e = _extrapolation;
        switch (x.Type)
        {
            case DataType.Float32: System.Runtime.InteropServices.MemoryMarshal.Write(fill, in e); break;
            case DataType.Int32: System.Runtime.InteropServices.MemoryMarshal.Write(fill, (int)e); break;
            case DataType.Int64: System.Runtime.InteropServices.MemoryMarshal.Write(fill, (long)e); break;
            case DataType.Int8: fill[0] = (byte)(sbyte)e; break;
            case DataType.Bool: fill[0] = e != 0 ? (byte)1 : (byte)0; break;
            default: fill[0] = (byte)e; break;
        }
        ShapeOpsUtil.MapGather(x, y, outShape, maps, fill.Slice(0, x.Type.ElementSize()));
    }

    /// <summary>Number of taps per output element along an axis.</summary>
    private int TapCount(double scale)
    {
        int support = _mode == Mode.Linear ? 1 : 2;
        if (!_antialias || scale >= 1) return 2 * support;
        int start = (int)(Math.Floor(-support / scale) + 1);
        return 2 - 2 * start;
    }

    private double CubicWeight(double t)
    {
        double a = _cubicA;
        t = Math.Abs(t);
        if (t <= 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
        if (t < 2) return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a;
        return 0;
    }

    /// <summary>
    /// Fills taps for one axis: for output o, taps idx[o*n + j] (clamped) and weights w[o*n + j];
    /// a NaN first weight marks an extrapolated output. Returns true when the axis is the identity.
    /// </summary>
    private bool BuildTaps(int inSize, int outSize, double scale, double roiStart, double roiEnd, int n, Span<int> idx, Span<float> w)
    {
        bool identity = inSize == outSize;
        Span<double> cw = stackalloc double[n];
        double s = _antialias ? Math.Min(scale, 1) : 1;
        int start = 1 - n / 2;
        for (int o = 0; o < outSize; o++)
        {
            double c = SourceCoordinate(o, inSize, outSize, scale, roiStart, roiEnd);
            if (Extrapolates(c, inSize))
            {
                identity = false;
                for (int j = 0; j < n; j++) { idx[o * n + j] = 0; w[o * n + j] = 0; }
                w[o * n] = float.NaN;
                continue;
            }
            double f = Math.Floor(c);
            double ratio = c == f ? 1 : c - f;
            long b = c == f ? (long)f - 1 : (long)f;
            double sum = 0;
            for (int j = 0; j < n; j++)
            {
                double t = (start + j - ratio) * s;
                double v = _mode == Mode.Linear ? Math.Max(0, 1 - Math.Abs(t)) : CubicWeight(t);
                long p = b + start + j;
                if (_excludeOutside && (p < 0 || p >= inSize)) v = 0;
                cw[j] = v;
                sum += v;
            }
            bool normalize = _antialias || _excludeOutside;
            for (int j = 0; j < n; j++)
            {
                long p = b + start + j;
                idx[o * n + j] = (int)Math.Clamp(p, 0, inSize - 1);
                double v = normalize && sum != 0 ? cw[j] / sum : cw[j];
                w[o * n + j] = (float)v;
                if (v != 0 && (p != o || v != 1)) identity = false;
            }
        }
        return identity;
    }

    private void RunInterpolate(RunContext ctx, Tensor x, Tensor y, ReadOnlySpan<double> scale, ReadOnlySpan<double> roi)
    {
        var inShape = x.Shape;
        var outShape = y.Shape;
        int r = inShape.Length;
        bool isFloat = x.Type == DataType.Float32;

        // Which axes change, and the largest intermediate buffer.
        Span<bool> active = stackalloc bool[r];
        Span<int> cur = stackalloc int[r];
        inShape.CopyTo(cur);
        int maxTaps = 1, activeCount = 0, lastActive = -1;
        long maxElems = x.Length;
        for (int d = 0; d < r; d++)
        {
            int n = TapCount(scale[d]);
            var idx = ctx.Scratch<int>(Math.Max(1, outShape[d] * n), 0);
            var w = ctx.Scratch<float>(Math.Max(1, outShape[d] * n), 3);
            active[d] = !BuildTaps(inShape[d], outShape[d], scale[d], roi[d], roi[r + d], n, idx, w);
            if (!active[d]) continue;
            activeCount++;
            lastActive = d;
            maxTaps = Math.Max(maxTaps, n);
            cur[d] = outShape[d];
            maxElems = Math.Max(maxElems, ShapeUtil.Size(cur));
        }

        if (activeCount == 0)
        {
            x.Bytes.CopyTo(y.Bytes);
            return;
        }

        var bufA = ctx.Scratch<float>((int)maxElems, 1);
        var bufB = ctx.Scratch<float>((int)maxElems, 2);
        ReadOnlySpan<float> src;
        if (isFloat) src = x.ReadOnlySpan<float>();
        else
        {
            var conv = bufB.Slice(0, x.Length);
            for (int i = 0; i < conv.Length; i++) conv[i] = x.GetFloat(i);
            src = conv;
        }
        inShape.CopyTo(cur);
        bool writeA = true;
        for (int d = 0; d < r; d++)
        {
            if (!active[d]) continue;
            int n = TapCount(scale[d]);
            var idx = ctx.Scratch<int>(Math.Max(1, outShape[d] * n), 0);
            var w = ctx.Scratch<float>(Math.Max(1, outShape[d] * n), 3);
            BuildTaps(inShape[d], outShape[d], scale[d], roi[d], roi[r + d], n, idx, w);
            int outer = ShapeUtil.SizeTo(cur, d);
            int inner = ShapeUtil.SizeFrom(cur, d + 1);
            int inSize = cur[d], outSize = outShape[d];
            Span<float> dst = d == lastActive && isFloat ? y.Span<float>() : (writeA ? bufA : bufB).Slice(0, outer * outSize * inner);
            float extrapolation = _extrapolation;
            for (int o = 0; o < outer; o++)
            {
                var srcBlock = src.Slice(o * inSize * inner, inSize * inner);
                for (int j = 0; j < outSize; j++)
                {
                    var row = dst.Slice((o * outSize + j) * inner, inner);
                    if (float.IsNaN(w[j * n]))
                    {
                        row.Fill(extrapolation);
                        continue;
                    }
                    row.Clear();
                    for (int t = 0; t < n; t++)
                    {
                        float wt = w[j * n + t];
                        if (wt == 0) continue;
                        var line = srcBlock.Slice(idx[j * n + t] * inner, inner);
                        System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(line, wt, row, row);
                    }
                }
            }
            cur[d] = outSize;
            src = dst;
            writeA = !writeA;
        }

        if (!isFloat)
        {
            var result = src;
            switch (y.Type)
            {
                case DataType.Int32: { var o = y.Span<int>(); for (int i = 0; i < o.Length; i++) o[i] = (int)result[i]; break; }
                case DataType.Int64: { var o = y.Span<long>(); for (int i = 0; i < o.Length; i++) o[i] = (long)result[i]; break; }
                case DataType.Int8: { var o = y.Span<sbyte>(); for (int i = 0; i < o.Length; i++) o[i] = (sbyte)result[i]; break; }
                default: { var o = y.Span<byte>(); for (int i = 0; i < o.Length; i++) o[i] = (byte)result[i]; break; }
            }
        }
    }
}
