using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace TinyOps.Engine.Kernels.Quantized;

/// <summary>
/// Depthwise 3×3 QLinearConv (group = input channels = output channels, 2-D, stride 1 or 2, dilation 1, any padding),
/// NCHW, one channel at a time, by one of two routes:
/// <list type="bullet">
/// <item><b>vpdpbusd</b> (<see cref="IntDepthwiseVnni"/>, AVX-VNNI + AVX-512 BW/VBMI): raw activation bytes against
/// packed (w − zw) bytes, four taps per int32 lane, zero points folded into the bias, single-precision requantization.
/// Taken when no w − zw is 255 (every symmetric int8 weight is a single signed byte; larger ones take a second set)
/// and the multipliers are finite.</item>
/// <item><b>int16</b> (AVX2, or scalar), for everything else and for machines without those instruction sets:
/// <list type="number">
/// <item>the channel's input is widened to int16 minus the input zero point into a padded plane (padding is then 0,
/// exactly the zero point's contribution); for stride 2 each padded row is split into its even and odd columns, so
/// every tap of a row of outputs is a contiguous run;</item>
/// <item>a row of outputs accumulates in int32: taps are paired (two int16 vectors interleaved) and multiplied with the
/// pair of weights (minus the weight zero point) by vpmaddwd, 16 outputs per step, exact for any uint8/int8 mix;</item>
/// <item>the row is requantized with <see cref="IntRequantize"/> (round half to even, saturate).</item>
/// </list></item>
/// </list>
/// Results are bit-identical to the im2col route (<see cref="IntGemm"/> + <see cref="QuantMath.Requantize"/>);
/// <see cref="Reference"/> is the plain direct loop the tests compare against. <see cref="FastIntGemm.Forced"/> selects
/// the route in tests: <see cref="IntGemmPath.Avx2"/> forces the int16 AVX2 route, <see cref="IntGemmPath.Scalar"/>
/// the scalar one.
/// </summary>
internal static class IntDepthwise3x3
{
    private const int Block = 16;

    /// <summary>True when the last <see cref="Run"/> on this thread took the vpdpbusd route (tests check the route ran).</summary>
    [ThreadStatic] internal static bool LastRunVnni;

    /// <summary>True when the geometry is the one this kernel implements.</summary>
    public static bool Supports(ConvGeometry g) =>
        g.SpatialRank == 2 && g.Group > 1 && g.Group == g.InChannels && g.Group == g.OutChannels
        && g.KDims[0] == 3 && g.KDims[1] == 3 && g.Dilations[0] == 1 && g.Dilations[1] == 1
        && g.Strides[0] == g.Strides[1] && g.Strides[0] is 1 or 2;

    /// <summary>Padded row length (int16 elements) of one plane row for an output width.</summary>
    private static int RowLength(int outW) => (outW + Block - 1) / Block * Block + Block;

    /// <summary>int16 scratch elements of the int16 route for this geometry.</summary>
    private static int PlaneShorts(ConvGeometry g)
    {
        int s = g.Strides[0];
        int rows = (g.OutDims[0] - 1) * s + 3;
        int len = RowLength(g.OutDims[1]);
        return rows * len * (s == 2 ? 2 : 1);
    }

    /// <summary>int32 scratch elements of the int16 route (the channel's accumulators, vector slack, a raw padded row).</summary>
    private static int AccInts(ConvGeometry g) => g.OutDims[0] * g.OutDims[1] + Block + (RowLength(g.OutDims[1]) * 2 + 8) / 4 + 1;

    /// <summary>Scratch bytes <see cref="Run"/> needs for this geometry (whichever route runs).</summary>
    public static int WorkBytes(ConvGeometry g) =>
        Math.Max(IntDepthwiseVnni.WorkBytes(g), ((PlaneShorts(g) * 2 + 63) & ~63) + AccInts(g) * 4);

    /// <summary>ints of the packed weights <see cref="PackWeights"/> writes for this geometry.</summary>
    public static int PackedInts(ConvGeometry g) => IntDepthwiseVnni.PackedInts(g);

    /// <summary>
    /// Packs w [C, 3, 3] with its zero points for <see cref="Run"/> (done once at planning for constant weights), with
    /// a table that depends on the output shape (rebuilt at run time when the shape has changed).
    /// </summary>
    public static void PackWeights(ConvGeometry g, ReadOnlySpan<byte> w, bool wSigned, ReadOnlySpan<int> wZero, Span<int> packed) =>
        IntDepthwiseVnni.Pack(g, w, wSigned, wZero, packed);

    /// <summary>
    /// One image: x [C, H, W] (raw bytes, signed when <paramref name="xSigned"/>), w [C, 3, 3], per-channel (or shared)
    /// weight zero points, bias (or empty), multipliers x_scale·w_scale/y_scale per channel, y [C, OH, OW].
    /// <paramref name="packed"/> is <see cref="PackWeights"/> of these weights and zero points, or empty (then they are
    /// packed into <paramref name="work"/> when needed); <paramref name="work"/> has <see cref="WorkBytes"/> bytes.
    /// <paramref name="multFinite"/>: the caller knows every multiplier is finite (checked once when planned).
    /// </summary>
    public static void Run(ConvGeometry g, ReadOnlySpan<byte> x, bool xSigned, int xZero,
        ReadOnlySpan<byte> w, bool wSigned, ReadOnlySpan<int> wZero,
        ReadOnlySpan<int> bias, ReadOnlySpan<float> mult, int yZero, Span<byte> y, bool ySigned,
        ReadOnlySpan<int> packed, Span<byte> work, bool multFinite = false)
    {
        if (IntDepthwiseVnni.IsSupported && FastIntGemm.Forced is (IntGemmPath.Auto or IntGemmPath.AvxVnni) && (multFinite || AllFinite(mult.Slice(0, g.InChannels))))
        {
            if (packed.IsEmpty)
            {
                var pk = MemoryMarshal.Cast<byte, int>(work.Slice(0, PackedInts(g) * 4));
                PackWeights(g, w, wSigned, wZero, pk);
                packed = pk;
            }
            if (packed[IntDepthwiseVnni.FlagIndex(g.InChannels)] == 1)
            {
                IntDepthwiseVnni.Run(g, x, xSigned, xZero, packed, bias, mult, yZero, y, ySigned, work);
                LastRunVnni = true;
                return;
            }
        }
        LastRunVnni = false;
        var plane = MemoryMarshal.Cast<byte, short>(work.Slice(0, PlaneShorts(g) * 2));
        var acc = MemoryMarshal.Cast<byte, int>(work.Slice((PlaneShorts(g) * 2 + 63) & ~63, AccInts(g) * 4));
        RunInt16(g, x, xSigned, xZero, w, wSigned, wZero, bias, mult, yZero, y, ySigned, plane, acc);
    }

    private static bool AllFinite(ReadOnlySpan<float> v)
    {
        foreach (float f in v) if (!float.IsFinite(f)) return false;
        return true;
    }

    /// <summary>The int16 route (AVX2 or scalar), see the class summary.</summary>
    private static void RunInt16(ConvGeometry g, ReadOnlySpan<byte> x, bool xSigned, int xZero,
        ReadOnlySpan<byte> w, bool wSigned, ReadOnlySpan<int> wZero,
        ReadOnlySpan<int> bias, ReadOnlySpan<float> mult, int yZero, Span<byte> y, bool ySigned,
        Span<short> plane, Span<int> acc)
    {
        int c = g.InChannels, h = g.InDims[0], wd = g.InDims[1], oh = g.OutDims[0], ow = g.OutDims[1];
        int s = g.Strides[0], padT = g.PadBegin[0], padL = g.PadBegin[1];
        int rows = (oh - 1) * s + 3, len = RowLength(ow);
        bool vec = Avx2.IsSupported && FastIntGemm.Active != IntGemmPath.Scalar;
        int planeOut = oh * ow;
        var accPlane = acc.Slice(0, planeOut + Block);
        var raw = MemoryMarshal.AsBytes(acc.Slice(planeOut + Block));
        int rawLen = s == 2 ? 2 * len + 4 : len + 4;
        Span<short> wv = stackalloc short[9];
        for (int ch = 0; ch < c; ch++)
        {
            int zw = wZero.Length == 1 ? wZero[0] : wZero[ch];
            for (int k = 0; k < 9; k++) wv[k] = (short)((wSigned ? (sbyte)w[ch * 9 + k] : w[ch * 9 + k]) - zw);
            var xc = x.Slice(ch * h * wd, h * wd);
            BuildPlane(xc, h, wd, rows, len, s, padT, padL, xSigned, xZero, plane, raw.Slice(0, rawLen), vec);
            int b = bias.IsEmpty ? 0 : bias[ch];
            float m = mult[ch];
            var yc = y.Slice(ch * oh * ow, oh * ow);
            // rows in order: the vector path rounds each row up to 16 outputs, spilling into the next row's start,
            // which that row then overwrites (the last row spills into the slack)
            for (int r = 0; r < oh; r++)
            {
                if (vec) RowAvx2(plane, len, s, r, ow, wv, accPlane.Slice(r * ow));
                else RowScalar(plane, len, s, r, ow, wv, accPlane.Slice(r * ow));
            }
            if (ySigned) IntRequantize.Row(accPlane.Slice(0, planeOut), b, m, yZero, MemoryMarshal.Cast<byte, sbyte>(yc));
            else IntRequantize.Row(accPlane.Slice(0, planeOut), b, m, yZero, yc);
        }
    }

    /// <summary>
    /// Padded plane of (x − zero point) as int16: row i holds input row i − padT, column j input column j − padL.
    /// Stride 1: rows of <paramref name="len"/>. Stride 2: each row is [even columns (len) | odd columns (len)].
    /// </summary>
    private static void BuildPlane(ReadOnlySpan<byte> xc, int h, int wd, int rows, int len, int s, int padT, int padL,
        bool xSigned, int xZero, Span<short> plane, Span<byte> raw, bool vec)
    {
        int rowShorts = s == 2 ? 2 * len : len;
        byte pad = (byte)xZero;
        for (int i = 0; i < rows; i++)
        {
            var dst = plane.Slice(i * rowShorts, rowShorts);
            int src = i - padT;
            if ((uint)src >= (uint)h) { dst.Clear(); continue; }
            // the padded byte row: zero points around the input row (positions beyond the padded width are never used for kept outputs)
            raw.Fill(pad);
            int copy = Math.Min(wd, raw.Length - padL);
            if (copy > 0) xc.Slice(src * wd, copy).CopyTo(raw.Slice(padL));
            if (s == 1) Widen(raw, dst, xSigned, xZero, vec);
            else Deinterleave(raw, dst.Slice(0, len), dst.Slice(len, len), xSigned, xZero, vec);
        }
    }

    private static void Widen(ReadOnlySpan<byte> raw, Span<short> dst, bool signed, int zero, bool vec)
    {
        int n = dst.Length, j = 0;
        if (vec)
        {
            var z = Vector256.Create((short)zero);
            ref byte r0 = ref MemoryMarshal.GetReference(raw);
            ref short d0 = ref MemoryMarshal.GetReference(dst);
            for (; j + 16 <= n && j + 16 <= raw.Length; j += 16)
            {
                var b = Vector128.LoadUnsafe(ref r0, (nuint)j);
                var wv = signed ? Avx2.ConvertToVector256Int16(b.AsSByte()) : Avx2.ConvertToVector256Int16(b);
                (wv - z).StoreUnsafe(ref d0, (nuint)j);
            }
        }
        for (; j < n; j++) dst[j] = j < raw.Length ? (short)((signed ? (sbyte)raw[j] : raw[j]) - zero) : (short)0;
    }

    private static readonly Vector128<byte> EvenBytes = Vector128.Create((byte)0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);

    private static void Deinterleave(ReadOnlySpan<byte> raw, Span<short> even, Span<short> odd, bool signed, int zero, bool vec)
    {
        int n = even.Length, j = 0;
        if (vec)
        {
            var z = Vector128.Create((short)zero);
            ref byte r0 = ref MemoryMarshal.GetReference(raw);
            ref short e0 = ref MemoryMarshal.GetReference(even);
            ref short o0 = ref MemoryMarshal.GetReference(odd);
            for (; j + 8 <= n && 2 * j + 16 <= raw.Length; j += 8)
            {
                var b = Ssse3.Shuffle(Vector128.LoadUnsafe(ref r0, (nuint)(2 * j)), EvenBytes); // [8 even | 8 odd]
                Vector128<short> ev, od;
                if (signed)
                {
                    ev = Sse41.ConvertToVector128Int16(b.AsSByte());
                    od = Sse41.ConvertToVector128Int16(Sse2.ShiftRightLogical128BitLane(b, 8).AsSByte());
                }
                else
                {
                    ev = Sse41.ConvertToVector128Int16(b);
                    od = Sse41.ConvertToVector128Int16(Sse2.ShiftRightLogical128BitLane(b, 8));
                }
                (ev - z).StoreUnsafe(ref e0, (nuint)j);
                (od - z).StoreUnsafe(ref o0, (nuint)j);
            }
        }
        for (; j < n; j++)
        {
            int a = 2 * j, b = 2 * j + 1;
            even[j] = a < raw.Length ? (short)((signed ? (sbyte)raw[a] : raw[a]) - zero) : (short)0;
            odd[j] = b < raw.Length ? (short)((signed ? (sbyte)raw[b] : raw[b]) - zero) : (short)0;
        }
    }

    /// <summary>Start of tap (row kh, column kw) for output row r, as an offset into the plane (output column 0).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Tap(int len, int s, int r, int kh, int kw)
    {
        int row = r * s + kh;
        if (s == 1) return row * len + kw;
        // stride 2: column 2·o + kw = even[o] (kw 0), odd[o] (kw 1), even[o + 1] (kw 2)
        return row * 2 * len + (kw == 1 ? len : kw == 2 ? 1 : 0);
    }

    private static void RowScalar(ReadOnlySpan<short> plane, int len, int s, int r, int ow, ReadOnlySpan<short> wv, Span<int> acc)
    {
        acc.Slice(0, ow).Clear();
        for (int kh = 0; kh < 3; kh++)
            for (int kw = 0; kw < 3; kw++)
            {
                int wk = wv[kh * 3 + kw];
                var src = plane.Slice(Tap(len, s, r, kh, kw), ow);
                for (int o = 0; o < ow; o++) acc[o] += src[o] * wk;
            }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<short> Pair(short a, short b) => Vector256.Create((int)(ushort)a | (b << 16)).AsInt16();

    private static void RowAvx2(ReadOnlySpan<short> plane, int len, int s, int r, int ow, ReadOnlySpan<short> wv, Span<int> acc)
    {
        ref short p0 = ref MemoryMarshal.GetReference(plane);
        ref int a0 = ref MemoryMarshal.GetReference(acc);
        int t00 = Tap(len, s, r, 0, 0), t01 = Tap(len, s, r, 0, 1), t02 = Tap(len, s, r, 0, 2);
        int t10 = Tap(len, s, r, 1, 0), t11 = Tap(len, s, r, 1, 1), t12 = Tap(len, s, r, 1, 2);
        int t20 = Tap(len, s, r, 2, 0), t21 = Tap(len, s, r, 2, 1), t22 = Tap(len, s, r, 2, 2);
        var w01 = Pair(wv[0], wv[1]);
        var w34 = Pair(wv[3], wv[4]);
        var w67 = Pair(wv[6], wv[7]);
        var w25 = Pair(wv[2], wv[5]);
        var w8 = Pair(wv[8], 0);
        for (int o = 0; o < ow; o += Block)
        {
            nuint u = (nuint)o;
            var x00 = Vector256.LoadUnsafe(ref p0, (nuint)t00 + u);
            var x01 = Vector256.LoadUnsafe(ref p0, (nuint)t01 + u);
            var lo = Avx2.MultiplyAddAdjacent(Avx2.UnpackLow(x00, x01), w01);
            var hi = Avx2.MultiplyAddAdjacent(Avx2.UnpackHigh(x00, x01), w01);
            var x10 = Vector256.LoadUnsafe(ref p0, (nuint)t10 + u);
            var x11 = Vector256.LoadUnsafe(ref p0, (nuint)t11 + u);
            lo += Avx2.MultiplyAddAdjacent(Avx2.UnpackLow(x10, x11), w34);
            hi += Avx2.MultiplyAddAdjacent(Avx2.UnpackHigh(x10, x11), w34);
            var x20 = Vector256.LoadUnsafe(ref p0, (nuint)t20 + u);
            var x21 = Vector256.LoadUnsafe(ref p0, (nuint)t21 + u);
            lo += Avx2.MultiplyAddAdjacent(Avx2.UnpackLow(x20, x21), w67);
            hi += Avx2.MultiplyAddAdjacent(Avx2.UnpackHigh(x20, x21), w67);
            var x02 = Vector256.LoadUnsafe(ref p0, (nuint)t02 + u);
            var x12 = Vector256.LoadUnsafe(ref p0, (nuint)t12 + u);
            lo += Avx2.MultiplyAddAdjacent(Avx2.UnpackLow(x02, x12), w25);
            hi += Avx2.MultiplyAddAdjacent(Avx2.UnpackHigh(x02, x12), w25);
            var x22 = Vector256.LoadUnsafe(ref p0, (nuint)t22 + u);
            lo += Avx2.MultiplyAddAdjacent(Avx2.UnpackLow(x22, x22), w8);
            hi += Avx2.MultiplyAddAdjacent(Avx2.UnpackHigh(x22, x22), w8);
            // lo holds outputs 0-3 | 8-11, hi 4-7 | 12-15
            Avx2.Permute2x128(lo, hi, 0x20).StoreUnsafe(ref a0, u);
            Avx2.Permute2x128(lo, hi, 0x31).StoreUnsafe(ref a0, u + 8);
        }
    }

    /// <summary>
    /// The plain direct convolution: y[c, i, j] = requantize(Σ (x − zx)(w − zw) + bias), with input positions outside
    /// the image contributing nothing. Any uint8/int8 mix; tests compare the fast route against it.
    /// </summary>
    public static void Reference(ConvGeometry g, ReadOnlySpan<byte> x, bool xSigned, int xZero,
        ReadOnlySpan<byte> w, bool wSigned, ReadOnlySpan<int> wZero,
        ReadOnlySpan<int> bias, ReadOnlySpan<float> mult, int yZero, Span<byte> y, bool ySigned)
    {
        int c = g.InChannels, h = g.InDims[0], wd = g.InDims[1], oh = g.OutDims[0], ow = g.OutDims[1];
        int s = g.Strides[0], padT = g.PadBegin[0], padL = g.PadBegin[1];
        var (min, max) = ySigned ? (-128, 127) : (0, 255);
        for (int ch = 0; ch < c; ch++)
        {
            int zw = wZero.Length == 1 ? wZero[0] : wZero[ch];
            for (int i = 0; i < oh; i++)
                for (int j = 0; j < ow; j++)
                {
                    int sum = 0;
                    for (int kh = 0; kh < 3; kh++)
                        for (int kw = 0; kw < 3; kw++)
                        {
                            int ih = i * s + kh - padT, iw = j * s + kw - padL;
                            if ((uint)ih >= (uint)h || (uint)iw >= (uint)wd) continue;
                            byte xb = x[(ch * h + ih) * wd + iw], wb = w[ch * 9 + kh * 3 + kw];
                            sum += ((xSigned ? (sbyte)xb : xb) - xZero) * ((wSigned ? (sbyte)wb : wb) - zw);
                        }
                    if (!bias.IsEmpty) sum += bias[ch];
                    int q = QuantMath.Requantize(sum, mult[ch], yZero, min, max);
                    y[(ch * oh + i) * ow + j] = (byte)q;
                }
        }
    }
}
