using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace TinyOps.Engine.Kernels.Quantized;

/// <summary>
/// The AVX-512 route of <see cref="IntDepthwise3x3"/>: depthwise 3×3 QLinearConv with vpdpbusd (AVX-VNNI, four
/// unsigned-byte × signed-byte products summed into each int32 lane) straight on the activation bytes, then an
/// AVX-512 double requantization. One channel at a time:
/// <list type="number">
/// <item><b>Weights</b> (packed once, at planning when constant, see <see cref="Pack"/>): each kernel row becomes one
/// dword of signed bytes (w0 − zw, w1 − zw, w2 − zw, 0). This needs every w − zw in [−128, 127]; otherwise (or
/// without the instruction sets) <see cref="IntDepthwise3x3"/> keeps its int16 route.</item>
/// <item><b>Zero points</b>: int8 activations are flipped to uint8 (x ^ 0x80, zero point + 128). With the padding
/// filled with the input zero point, Σ(x − zx)(w − zw) = Σ x·(w − zw) − zx·Σ(w − zw) over all nine taps, so the
/// second term is folded into the channel's bias and the products use raw bytes.</item>
/// <item><b>Padded planes</b>: the channel is copied into a plane of bytes padded with the zero point (borders are
/// written once per call; each channel only overwrites the interior). Stride 1: rows of Wq = OW + 2 bytes. Stride 2:
/// even and odd padded rows go to two planes with rows of 2·Wq bytes, Wq = OW + 1 (columns stay together).</item>
/// <item><b>Flat filter</b>: output (oh, ow) is flat index f = oh·Wq + ow (the Wq − OW spare outputs per row are
/// computed and dropped), and kernel row kh of it is the dword at one fixed byte offset: stride 1 f + kh·Wq, stride 2
/// 2f in the even plane (kh 0), the odd plane (kh 1) or 2f + 2·Wq in the even plane (kh 2). A 32-byte load at byte
/// offset q is therefore eight outputs (f = q, q + 4, ... for stride 1; q/2, q/2 + 2, ... for stride 2): four loads
/// (offsets f0 .. f0 + 3) give 32 consecutive outputs for stride 1, two (2f0, 2f0 + 2) give 16 for stride 2, with
/// three vpdpbusd per eight outputs and no byte shuffles. Small planes (7×7, 14×14) stay on full vectors.</item>
/// <item><b>Requantization</b>: (sum + bias) to double (8 lanes per Vector512), ·multiplier, + y zero point (two
/// separate IEEE operations, as <see cref="QuantMath.Requantize"/>), clamped, rounded half to even by the conversion,
/// narrowed to bytes; one byte permute puts the interleaved outputs back in order. Rows of the flat result are then
/// copied to y without their spare columns.</item>
/// </list>
/// All integer sums are exact (|Σ x·w| ≤ 9·255·128) and the bias is added with int32 wrapping like the reference, so
/// the results are bit-identical to <see cref="IntDepthwise3x3.Reference"/>.
/// </summary>
internal static unsafe class IntDepthwiseVnni
{
    /// <summary>True when this machine has the instruction sets of this route.</summary>
    public static bool IsSupported =>
        AvxVnni.IsSupported && Avx512F.IsSupported && Avx512BW.IsSupported && Avx512Vbmi.VL.IsSupported;

    /// <summary>ints of <see cref="Pack"/> output for c channels: four per channel and a trailing "fits" flag.</summary>
    public static int PackedInts(int c) => 4 * c + 1;

    /// <summary>
    /// Packs the weights: per channel three row dwords of (w − zw) bytes and Σ(w − zw); the last int is 1 when every
    /// w − zw fits a signed byte (the route is usable), else 0.
    /// </summary>
    public static void Pack(ReadOnlySpan<byte> w, bool wSigned, ReadOnlySpan<int> wZero, int c, Span<int> packed)
    {
        bool fits = true;
        for (int ch = 0; ch < c; ch++)
        {
            int zw = wZero.Length == 1 ? wZero[0] : wZero[ch];
            int sum = 0;
            for (int kh = 0; kh < 3; kh++)
            {
                int dword = 0;
                for (int kw = 0; kw < 3; kw++)
                {
                    byte b = w[ch * 9 + kh * 3 + kw];
                    int v = (wSigned ? (sbyte)b : b) - zw;
                    if (v is < -128 or > 127) fits = false;
                    sum += v;
                    dword |= (v & 0xFF) << (8 * kw);
                }
                packed[4 * ch + kh] = dword;
            }
            packed[4 * ch + 3] = sum;
        }
        packed[4 * c] = fits ? 1 : 0;
    }

    private static int Wq(ConvGeometry g) => g.Strides[0] == 1 ? g.OutDims[1] + 2 : g.OutDims[1] + 1;

    /// <summary>Flat outputs computed per channel (OH·Wq rounded up to the step).</summary>
    private static int FlatOutputs(ConvGeometry g)
    {
        int step = g.Strides[0] == 1 ? 32 : 16;
        return (g.OutDims[0] * Wq(g) + step - 1) / step * step;
    }

    private const int Slack = 128;

    /// <summary>Bytes of the padded plane(s), vector slack included, rounded to 64.</summary>
    private static int PlaneBytes(ConvGeometry g)
    {
        int oh = g.OutDims[0], wq = Wq(g);
        int bytes = g.Strides[0] == 1 ? (oh + 2) * wq + Slack : (oh + 1) * 2 * wq + Slack + oh * 2 * wq + Slack;
        return (bytes + 63) & ~63;
    }

    /// <summary>Scratch bytes <see cref="Run"/> needs: packed weights (when not given), biases, planes, flat output.</summary>
    public static int WorkBytes(ConvGeometry g)
    {
        int c = g.InChannels;
        return ((PackedInts(c) * 4 + 63) & ~63) + ((c * 4 + 63) & ~63) + PlaneBytes(g) + ((FlatOutputs(g) + 63) & ~63) + 64;
    }

    /// <summary>
    /// One image (see <see cref="IntDepthwise3x3.Run"/> for the arguments). <paramref name="packed"/> is from
    /// <see cref="Pack"/> with its fits flag set; <paramref name="mult"/> must be finite.
    /// </summary>
    public static void Run(ConvGeometry g, ReadOnlySpan<byte> x, bool xSigned, int xZero, ReadOnlySpan<int> packed,
        ReadOnlySpan<int> bias, ReadOnlySpan<float> mult, int yZero, Span<byte> y, bool ySigned, Span<byte> work)
    {
        int c = g.InChannels, h = g.InDims[0], wd = g.InDims[1], oh = g.OutDims[0], ow = g.OutDims[1];
        int s = g.Strides[0], padT = g.PadBegin[0], padL = g.PadBegin[1];
        int wq = Wq(g), n = FlatOutputs(g), planeBytes = PlaneBytes(g);
        int zxu = xSigned ? xZero + 128 : xZero;
        byte flip = xSigned ? (byte)0x80 : (byte)0;
        int packedBytes = (PackedInts(c) * 4 + 63) & ~63, biasBytes = (c * 4 + 63) & ~63;
        var biasAdj = MemoryMarshal.Cast<byte, int>(work.Slice(packedBytes, c * 4));
        for (int ch = 0; ch < c; ch++)
            biasAdj[ch] = unchecked((bias.IsEmpty ? 0 : bias[ch]) - zxu * packed[4 * ch + 3]);
        var planeSpan = work.Slice(packedBytes + biasBytes, planeBytes);
        planeSpan.Fill((byte)zxu);
        var wideSpan = work.Slice(packedBytes + biasBytes + planeBytes, n + 64);
        double lo = ySigned ? -128 : 0, hi = ySigned ? 127 : 255;
        fixed (byte* px = x, plane = planeSpan, wide = wideSpan, py = y)
        fixed (int* pk = packed, pb = biasAdj)
        fixed (float* pm = mult)
        {
            // stride 2: even padded rows from plane, odd ones from plane2
            byte* plane2 = plane + (oh + 1) * 2 * wq + Slack;
            int rowBytes = s == 1 ? wq : 2 * wq;
            int padRows = (oh - 1) * s + 3;
            int r0 = Math.Max(0, padT), r1 = Math.Min(padRows, padT + h);
            int cnt = Math.Min(wd, rowBytes - padL);
            int planeOut = oh * ow;
            for (int ch = 0; ch < c; ch++)
            {
                byte* xc = px + (long)ch * h * wd;
                if (cnt > 0)
                    for (int r = r0; r < r1; r++)
                    {
                        byte* dst = s == 1 ? plane + r * wq : ((r & 1) == 0 ? plane : plane2) + (r >> 1) * rowBytes;
                        CopyRow(xc + (long)(r - padT) * wd, dst + padL, cnt, flip);
                    }
                var w0 = Vector256.Create(pk[4 * ch]).AsSByte();
                var w1 = Vector256.Create(pk[4 * ch + 1]).AsSByte();
                var w2 = Vector256.Create(pk[4 * ch + 2]).AsSByte();
                var bv = Vector256.Create(pb[ch]);
                var rq = new Requant(pm[ch], yZero, lo, hi);
                if (s == 1) Filter1(plane, wq, n, w0, w1, w2, bv, in rq, wide);
                else Filter2(plane, plane2, wq, n, w0, w1, w2, bv, in rq, wide);
                Compact(wide, wq, py + (long)ch * planeOut, oh, ow, (long)(c - ch) * planeOut);
            }
        }
    }

    /// <summary>Copies cnt bytes (flipped to unsigned with <paramref name="flip"/> = 0x80) in 64-byte steps, the last one masked.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void CopyRow(byte* src, byte* dst, int cnt, byte flip)
    {
        var f = Vector512.Create(flip);
        int i = 0;
        for (; i + 64 <= cnt; i += 64) Vector512.Store(Vector512.Load(src + i) ^ f, dst + i);
        if (i < cnt)
        {
            var mask = Vector512.LessThan(Iota, Vector512.Create((byte)(cnt - i)));
            var v = Avx512BW.MaskLoad(src + i, mask, Vector512<byte>.Zero) ^ f;
            Avx512BW.MaskStore(dst + i, mask, v);
        }
    }

    private static readonly Vector512<byte> Iota = Vector512.Create(
        (byte)0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
        32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63);

    /// <summary>Requantization constants of one channel.</summary>
    private readonly struct Requant(float multiplier, int yZero, double lo, double hi)
    {
        public readonly Vector512<double> Mul = Vector512.Create((double)multiplier);
        public readonly Vector512<double> Zp = Vector512.Create((double)yZero);
        public readonly Vector512<double> Lo = Vector512.Create(lo);
        public readonly Vector512<double> Hi = Vector512.Create(hi);

        /// <summary>Sixteen sums (two vectors) to sixteen bytes in lane order [a | b].</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector128<byte> Bytes(Vector256<int> a, Vector256<int> b)
        {
            var ia = Convert(a);
            var ib = Convert(b);
            return Avx512F.ConvertToVector128Byte(Vector512.Create(ia, ib));
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private Vector256<int> Convert(Vector256<int> a)
        {
            var d = Avx512F.ConvertToVector512Double(a);
            d = Avx512F.Add(Avx512F.Multiply(d, Mul), Zp);
            d = Avx512F.Min(Avx512F.Max(d, Lo), Hi);
            return Avx512F.ConvertToVector256Int32(d, FloatRoundingMode.ToEven);
        }
    }

    // stride 1: byte i of the 32 = output 4k + t, which sits at t·8 + k after the four narrowed vectors
    private static readonly Vector256<byte> Order4 = Vector256.Create(
        (byte)0, 8, 16, 24, 1, 9, 17, 25, 2, 10, 18, 26, 3, 11, 19, 27, 4, 12, 20, 28, 5, 13, 21, 29, 6, 14, 22, 30, 7, 15, 23, 31);

    // stride 2: byte i of the 16 = output 2k + t, at t·8 + k
    private static readonly Vector128<byte> Order2 = Vector128.Create((byte)0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Dot(Vector256<int> acc, byte* p, Vector256<sbyte> w) => AvxVnni.MultiplyWideningAndAdd(acc, Vector256.Load(p), w);

    private static void Filter1(byte* p, int wq, int n, Vector256<sbyte> w0, Vector256<sbyte> w1, Vector256<sbyte> w2,
        Vector256<int> bias, in Requant rq, byte* o)
    {
        var order = Order4;
        byte* p1 = p + wq, p2 = p + 2 * wq;
        for (int f = 0; f < n; f += 32)
        {
            var a0 = Dot(Dot(Dot(bias, p + f, w0), p1 + f, w1), p2 + f, w2);
            var a1 = Dot(Dot(Dot(bias, p + f + 1, w0), p1 + f + 1, w1), p2 + f + 1, w2);
            var a2 = Dot(Dot(Dot(bias, p + f + 2, w0), p1 + f + 2, w1), p2 + f + 2, w2);
            var a3 = Dot(Dot(Dot(bias, p + f + 3, w0), p1 + f + 3, w1), p2 + f + 3, w2);
            var b = Vector256.Create(rq.Bytes(a0, a1), rq.Bytes(a2, a3));
            Vector256.Store(Avx512Vbmi.VL.PermuteVar32x8(b, order), o + f);
        }
    }

    private static void Filter2(byte* e, byte* od, int wq, int n, Vector256<sbyte> w0, Vector256<sbyte> w1, Vector256<sbyte> w2,
        Vector256<int> bias, in Requant rq, byte* o)
    {
        var order = Order2;
        byte* e2 = e + 2 * wq;
        for (int f = 0; f < n; f += 16)
        {
            int q = 2 * f;
            var a0 = Dot(Dot(Dot(bias, e + q, w0), od + q, w1), e2 + q, w2);
            var a1 = Dot(Dot(Dot(bias, e + q + 2, w0), od + q + 2, w1), e2 + q + 2, w2);
            Vector128.Store(Ssse3.Shuffle(rq.Bytes(a0, a1), order), o + f);
        }
    }

    /// <summary>
    /// Copies the first OW of every Wq flat outputs into consecutive rows of y. Vector stores may run past a row into
    /// later rows or channels (written afterwards), never past <paramref name="room"/> bytes from y.
    /// </summary>
    private static void Compact(byte* wide, int wq, byte* y, int oh, int ow, long room)
    {
        for (int r = 0; r < oh; r++)
        {
            byte* src = wide + (long)r * wq;
            long at = (long)r * ow;
            byte* dst = y + at;
            int i = 0;
            for (; i < ow && at + i + 32 <= room; i += 32) Vector256.Store(Vector256.Load(src + i), dst + i);
            for (; i < ow && at + i + 8 <= room; i += 8) Unsafe.WriteUnaligned(dst + i, Unsafe.ReadUnaligned<ulong>(src + i));
            for (; i < ow; i++) dst[i] = src[i];
        }
    }
}
