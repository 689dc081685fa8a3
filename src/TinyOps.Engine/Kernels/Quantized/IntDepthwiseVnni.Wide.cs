using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace TinyOps.Engine.Kernels.Quantized;

/// <summary>
/// Stride 1 in 512-bit vectors where the dot product is emulated (<see cref="ByteDot"/>: AVX-512 without AVX-VNNI) and
/// the runtime deems 512-bit vectors fast (<see cref="Vector512.IsHardwareAccelerated"/>): the flat filter of
/// <see cref="IntDepthwiseVnni"/> with steps of 64 outputs (four zmm accumulators, lane k of accumulator v is output
/// f0 + 4k + v, loads at f0 + v of each kernel row), the requantization, packs and one vpermb per step as in the 256-bit
/// pass, every step stored whole except where the last channel's would pass the end of y (masked there). Half the
/// instructions per output of the 256-bit pass for the same multiplies; taken when every channel has one weight set and
/// rounds by the 1.5·2²³ addition (the quantizer's weights), on planes of at least <see cref="WideMinOutputs"/>.
/// </summary>
internal static unsafe partial class IntDepthwiseVnni
{
    private const int WideStep = 64;

    /// <summary>Whether the 512-bit pass may run; settable for tests and A/B comparisons.</summary>
    internal static bool Wide512 = true;

    /// <summary>Runs of the 512-bit pass on this thread (a test hook).</summary>
    [ThreadStatic] internal static int WideRuns;

    /// <summary>Smallest output plane (OH·OW) the 512-bit pass takes; settable for A/B comparisons.</summary>
    internal static int WideMinOutputs = 700;

    /// <summary>True when <see cref="Run"/> takes the 512-bit pass for this geometry (given one weight set and the magic rounding).</summary>
    internal static bool UsesWide(ConvGeometry g) =>
        Wide512 && WideHardware && g.OutDims[0] * g.OutDims[1] >= Math.Max(WideMinOutputs, 1);

    /// <summary>True when this machine could take the 512-bit pass (the dot product emulated, fast 512-bit vectors, AVX-512 VBMI).</summary>
    private static bool WideHardware => !ByteDot.Native && Vector512.IsHardwareAccelerated && Avx512Vbmi.IsSupported;

    private static int WideSteps(ConvGeometry g) => (g.OutDims[0] * Wq(g) + WideStep - 1) / WideStep;

    /// <summary>ints of the 512-bit table: a key (stride, OH, OW, steps), steps + 1 offsets into y, 64 index bytes per step.</summary>
    private static int WideTableInts(ConvGeometry g) => 4 + WideSteps(g) + 1 + WideSteps(g) * WideStep / 4;

    private static bool WideTableMatches(ConvGeometry g, ReadOnlySpan<int> t) =>
        t.Length >= 4 && t[0] == g.Strides[0] && t[1] == g.OutDims[0] && t[2] == g.OutDims[1] && t[3] == WideSteps(g);

    /// <summary>
    /// As <see cref="BuildTable"/> for steps of 64. On machines that cannot take the 512-bit pass only a key that
    /// matches no geometry is written (packing skips the table's work; <see cref="Run"/> never reads it there).
    /// </summary>
    private static void BuildWideTable(ConvGeometry g, Span<int> t)
    {
        if (!WideHardware)
        {
            t[0] = 0;
            return;
        }
        int s = g.Strides[0], oh = g.OutDims[0], ow = g.OutDims[1], wq = Wq(g), steps = WideSteps(g);
        t[0] = s; t[1] = oh; t[2] = ow; t[3] = steps;
        var offsets = t.Slice(4, steps + 1);
        var index = MemoryMarshal.AsBytes(t.Slice(4 + steps + 1, steps * WideStep / 4));
        // byte q of the packed step (two saturating packs within 128-bit lanes) holds output where[o] = q
        Span<byte> where = stackalloc byte[WideStep];
        for (int q = 0; q < WideStep; q++)
        {
            int lane = q >> 4, j = q & 15;
            int v = (j < 8 ? 0 : 2) + ((j & 7) < 4 ? 0 : 1); // which of the four accumulators
            int k = 4 * lane + (j & 3); // its int32 lane
            where[s == 1 ? 4 * k + v : (v & 2) * 16 + 2 * k + (v & 1)] = (byte)q;
        }
        int done = 0;
        for (int step = 0; step < steps; step++)
        {
            offsets[step] = done;
            int n = 0;
            for (int o = 0; o < WideStep; o++)
            {
                int f = step * WideStep + o;
                if (f < oh * wq && f % wq < ow) index[step * WideStep + n++] = where[o];
            }
            for (int i = n; i < WideStep; i++) index[step * WideStep + i] = 0;
            done += n;
        }
        offsets[steps] = done;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Dot512(Vector512<int> acc, byte* p, Vector512<sbyte> w)
        => acc + Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(Vector512.Load(p), w), Vector512<short>.One);

    /// <summary>
    /// Every channel of <see cref="Run"/> (one weight set, magic rounding; channel 0 already copied into plane 0): the
    /// next channel copied while this one is filtered, as in <see cref="OneSetMagic1"/> and <see cref="OneSetMagic2"/>,
    /// in steps of 64. Stride 1: accumulator v, lane k is output f0 + 4k + v (loads at f0 + v of each kernel row).
    /// Stride 2: output f0 + 32·(v / 2) + 2k + v % 2 (loads at 2f0 + 64·(v / 2) + 2·(v % 2) in the even plane, the odd
    /// plane and the even plane one row on).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void OneSetMagicWide(in Copier cp, int c, byte* pl, int planeBytes, int wq, int* pk, int* pb, float* pm, int yZero,
        byte* py, int planeOut, int* offsets, byte* index, int steps, bool signed)
    {
        var magic = Vector512.Create(QuantMath.Magic);
        var zp = Vector512.Create(QuantMath.MagicBits - yZero);
        var iota = Vector512.CreateSequence((byte)0, (byte)1);
        long channelBytes = cp.ChannelBytes;
        bool two = cp.S == 2;
        // stride 1: the three kernel rows are one padded row apart; stride 2: the even plane, the odd plane, the even plane one row on
        int d1 = two ? cp.OddPlane : wq, d2 = two ? 2 * wq : 2 * wq;
        // the byte offsets of the four accumulators' loads and the bytes a step moves on
        int o1 = two ? 2 : 1, o2 = two ? 64 : 2, o3 = two ? 66 : 3, advance = two ? 2 * WideStep : WideStep;
        for (int ch = 0; ch < c; ch++)
        {
            if (ch + 1 < c) cp.Run(ch + 1, pl + ((ch + 1) & 1) * planeBytes);
            if (ch + 2 < c)
            {
                byte* next = cp.X + (ch + 2) * channelBytes;
                for (long i = 0; i < channelBytes; i += 64) Sse.Prefetch0(next + i);
            }
            byte* q0 = pl + (ch & 1) * planeBytes, q1 = q0 + d1, q2 = q0 + d2;
            byte* y = py + (long)ch * planeOut;
            int* wk = pk + PerChannel * ch;
            var w0 = Vector512.Create(wk[0]).AsSByte();
            var w1 = Vector512.Create(wk[1]).AsSByte();
            var w2 = Vector512.Create(wk[2]).AsSByte();
            var bias = Vector512.Create(pb[ch]);
            var mul = Vector512.Create(pm[ch]);
            // stores may run into later channels (written afterwards) but not past the last one
            long room = (long)(c - ch) * planeOut;
            int full = steps;
            while (full > 0 && offsets[full - 1] + WideStep > room) full--;
            for (int step = 0; step < steps; step++, q0 += advance, q1 += advance, q2 += advance)
            {
                var a0 = Dot512(Dot512(Dot512(bias, q0, w0), q1, w1), q2, w2);
                var a1 = Dot512(Dot512(Dot512(bias, q0 + o1, w0), q1 + o1, w1), q2 + o1, w2);
                var a2 = Dot512(Dot512(Dot512(bias, q0 + o2, w0), q1 + o2, w1), q2 + o2, w2);
                var a3 = Dot512(Dot512(Dot512(bias, q0 + o3, w0), q1 + o3, w1), q2 + o3, w2);
                var r0 = Avx512F.Add(Avx512F.Multiply(Avx512F.ConvertToVector512Single(a0), mul), magic).AsInt32() - zp;
                var r1 = Avx512F.Add(Avx512F.Multiply(Avx512F.ConvertToVector512Single(a1), mul), magic).AsInt32() - zp;
                var r2 = Avx512F.Add(Avx512F.Multiply(Avx512F.ConvertToVector512Single(a2), mul), magic).AsInt32() - zp;
                var r3 = Avx512F.Add(Avx512F.Multiply(Avx512F.ConvertToVector512Single(a3), mul), magic).AsInt32() - zp;
                var p01 = Avx512BW.PackSignedSaturate(r0, r1);
                var p23 = Avx512BW.PackSignedSaturate(r2, r3);
                var b = signed ? Avx512BW.PackSignedSaturate(p01, p23).AsByte() : Avx512BW.PackUnsignedSaturate(p01, p23);
                var v = Avx512Vbmi.PermuteVar64x8(b, Vector512.Load(index + step * WideStep));
                if (step < full) Vector512.Store(v, y + offsets[step]);
                else
                {
                    int n = offsets[step + 1] - offsets[step];
                    Avx512BW.MaskStore(y + offsets[step], Vector512.LessThan(iota, Vector512.Create((byte)n)), v);
                }
            }
        }
    }
}
