using System.Runtime.Intrinsics;
using TinyOps.Engine.Ir;
using TinyOps.Engine.Kernels.Quantized;
using TinyOps.Engine.Runtime;
using TinyOps.Engine.Tensors;
using Xunit;

namespace TinyOps.Engine.Tests.Kernels;

/// <summary>The fast int8 routines (every instruction-set path) against the plain reference, bit for bit.</summary>
public class FastIntKernelTests
{
    /// <summary>Forced paths, as ints of <see cref="IntGemmPath"/> (an internal type): Scalar, Avx2, AvxVnni, AvxVnniWide.</summary>
    public static TheoryData<int> Paths => new() { (int)IntGemmPath.Scalar, (int)IntGemmPath.Avx2, (int)IntGemmPath.AvxVnni, (int)IntGemmPath.AvxVnniWide };

    private static T WithPath<T>(IntGemmPath path, Func<T> f)
    {
        var old = FastIntGemm.Forced;
        FastIntGemm.Forced = path;
        try { return f(); }
        finally { FastIntGemm.Forced = old; }
    }

    private static byte[] RandomBytes(Random r, int n, bool extreme)
    {
        var b = new byte[n];
        r.NextBytes(b);
        if (extreme) for (int i = 0; i < n; i++) b[i] = (i & 1) == 0 ? (byte)0xFF : (byte)0x80; // 255 / 128 or -1 / -128
        return b;
    }

    /// <summary>
    /// Signed weights for the wide kernels called directly: any bytes where the dot product is vpdpbusd, 7-bit ones
    /// ([−64, 64]) where it is emulated (no AVX-VNNI), which the emulation serves exactly (the kernels' callers check).
    /// </summary>
    private static byte[] WideWeights(Random r, int n)
    {
        if (ByteDot.Native) return RandomBytes(r, n, false);
        var b = new byte[n];
        for (int i = 0; i < n; i++) b[i] = (byte)(sbyte)r.Next(-64, 65);
        Assert.True(ByteDot.PairsFit(b));
        return b;
    }

    [Fact]
    public void ByteDotIsExactWherePairsFitAndSaysWhenTheyDoNot()
    {
        // PairsFit: byte pairs at even offsets with |a| + |b| <= 128 (where the dot product is native, always true)
        Assert.True(ByteDot.PairsFit(new byte[] { 64, unchecked((byte)-64), 127, 1, unchecked((byte)-128), 0, 5 }));
        Assert.Equal(ByteDot.Native, ByteDot.PairsFit(new byte[] { 0, 0, 127, 2 }));
        Assert.Equal(ByteDot.Native, ByteDot.PairsFit(new byte[] { unchecked((byte)-128), unchecked((byte)-1) }));
        if (!ByteDot.WideHardware) return;
        // Add: acc + four products per lane, against plain sums, for 7-bit signed bytes and any unsigned ones
        var rng = new Random(5);
        for (int t = 0; t < 200; t++)
        {
            var u = new byte[32]; rng.NextBytes(u);
            if (t % 10 == 0) Array.Fill(u, (byte)255);
            var sv = Enumerable.Range(0, 32).Select(i => (sbyte)(t % 10 == 0 ? (i % 2 == 0 ? -64 : 64) : rng.Next(-64, 65))).ToArray();
            var acc = Enumerable.Range(0, 8).Select(_ => rng.Next()).ToArray();
            var got = ByteDot.Add(Vector256.Create(acc), Vector256.Create(u), Vector256.Create(sv));
            for (int l = 0; l < 8; l++)
            {
                int want = acc[l];
                for (int j = 0; j < 4; j++) want += u[4 * l + j] * sv[4 * l + j];
                Assert.Equal(want, got[l]);
            }
        }
    }

    private static int[] Reference(bool aSigned, bool bSigned, int m, int n, int k, byte[] a, int[] za, byte[] b, int[] zb)
    {
        var c = new int[m * n];
        if (aSigned && bSigned) IntGemm.Multiply<sbyte, sbyte>(m, n, k, AsS(a), k, za, AsS(b), n, zb, c, n);
        else if (aSigned) IntGemm.Multiply<sbyte, byte>(m, n, k, AsS(a), k, za, b, n, zb, c, n);
        else if (bSigned) IntGemm.Multiply<byte, sbyte>(m, n, k, a, k, za, AsS(b), n, zb, c, n);
        else IntGemm.Multiply<byte, byte>(m, n, k, a, k, za, b, n, zb, c, n);
        return c;
    }

    private static sbyte[] AsS(byte[] b) => (sbyte[])(Array)b;

    private static int Zero(Random r, bool signed) => signed ? r.Next(-128, 128) : r.Next(0, 256);

    [Theory]
    [MemberData(nameof(Paths))]
    public void PackedGemmMatchesReference(int pathId)
    {
        var path = (IntGemmPath)pathId;
        var rng = new Random(1234 + (int)path);
        int[] sizes = [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 64];
        for (int trial = 0; trial < 160; trial++)
        {
            int m = sizes[rng.Next(sizes.Length)], n = sizes[rng.Next(sizes.Length)], k = sizes[rng.Next(sizes.Length)];
            if (trial % 16 == 0) k = 300 + rng.Next(40);
            bool aSigned = (trial & 1) != 0, bSigned = (trial & 2) != 0, extreme = trial % 5 == 0;
            var a = RandomBytes(rng, m * k, extreme);
            var b = RandomBytes(rng, k * n, extreme && trial % 10 == 0);
            int[] za = (trial & 4) != 0 ? Enumerable.Range(0, m).Select(_ => Zero(rng, aSigned)).ToArray() : [Zero(rng, aSigned)];
            int[] zb = (trial & 8) != 0 ? Enumerable.Range(0, n).Select(_ => Zero(rng, bSigned)).ToArray() : [Zero(rng, bSigned)];
            var expect = Reference(aSigned, bSigned, m, n, k, a, za, b, zb);

            var got = WithPath(path, () =>
            {
                FastIntGemm.Plan(aSigned, bSigned, out bool flip, out bool aUnsigned, out int shift);
                var ap = new byte[FastIntGemm.PackedASize(m, k)];
                var bp = new byte[FastIntGemm.PackedBSize(k, n)];
                var rs = new int[m];
                var cs = new int[n];
                FastIntGemm.PackA(a, m, k, k, flip, aSigned ^ flip, ap, rs);
                FastIntGemm.PackB(b, k, n, n, bSigned, bp, cs);
                var zaShifted = za.Select(z => z + shift).ToArray();
                var c = Enumerable.Repeat(-7, m * n).ToArray(); // garbage must be overwritten
                FastIntGemm.Multiply(m, n, k, ap, rs, zaShifted, aUnsigned, bp, cs, zb, new int[FastIntGemm.WorkInts(n)], c, n);
                return c;
            });
            Assert.True(expect.SequenceEqual(got), $"trial {trial}: m={m} n={n} k={k} aSigned={aSigned} bSigned={bSigned} za={za.Length} zb={zb.Length}");

            var rows = WithPath(path, () =>
            {
                var c = Enumerable.Repeat(-7, m * n).ToArray();
                FastIntGemm.MultiplyRows(m, n, k, a, k, aSigned, za, b, n, bSigned, zb, c, n);
                return c;
            });
            Assert.True(expect.SequenceEqual(rows), $"rows trial {trial}: m={m} n={n} k={k}");
        }
    }

    [Fact]
    public void WideShortProductsWithBInRegistersMatchTheTiles()
    {
        // Short products (K up to 32) run each B panel held in registers against every row (WideIntGemm.Stationary);
        // they must give the 4 x 24 tiles' bytes: every K from 1 to 36 (past 32: the tiles), ragged panels,
        // rows not a multiple of 4, signed and unsigned outputs, and multipliers large enough to need the clamp.
        if (!WideIntGemm.HardwareSupported) return;
        var rng = new Random(77);
        foreach (int k in Enumerable.Range(1, 28))
            foreach (var (m, n) in new[] { (8, 24), (13, 49), (9, 5), (16, 17), (12, 40), (20, 64) })
                foreach (bool ySigned in new[] { false, true })
                {
                    bool huge = (k + m) % 7 == 0;
                    var a = WideWeights(rng, m * k);
                    var b = RandomBytes(rng, k * n, k % 5 == 0);
                    var ap = new byte[FastIntGemm.PackedASize(m, k)];
                    FastIntGemm.PackA(a, m, k, k, false, true, ap, new int[m]);
                    var bp = new byte[WideIntGemm.PackedBSize(k, n)];
                    WideIntGemm.PackB(b, k, n, n, false, bp, default);
                    var init = Enumerable.Range(0, m).Select(_ => rng.Next(-20000, 20000)).ToArray();
                    var mult = Enumerable.Range(0, m).Select(_ => huge ? 1e6f : 0.0005f + 0.01f * (float)rng.NextDouble()).ToArray();
                    int yz = ySigned ? rng.Next(-20, 20) : rng.Next(0, 200);
                    byte[] Run(bool stationary)
                    {
                        var y = Enumerable.Repeat((byte)0xA5, m * n).ToArray();
                        bool saved = WideIntGemm.StationaryB;
                        WideIntGemm.StationaryB = stationary;
                        try
                        {
                            var e = new WideIntGemm.Epilogue(init, mult, default, default, yz, ySigned, y, n);
                            WideIntGemm.MultiplyRequantize(m, n, k, ap, false, bp, e);
                        }
                        finally { WideIntGemm.StationaryB = saved; }
                        return y;
                    }
                    var tiles = Run(false);
                    var held = Run(true);
                    Assert.True(tiles.SequenceEqual(held), $"m={m} n={n} k={k} ySigned={ySigned} huge={huge}");
                }
    }

    [Fact]
    public void WideProductsOnUnpackedBMatchTheTiles()
    {
        // B handed over as it is (a 1 x 1 convolution's input): short products interleave a 16-column panel at a time
        // and hold it in registers (WideIntGemm.MultiplyRequantizeUnpacked), the others pack each 24-column panel into a
        // small buffer as they reach it (MultiplyRequantizePanels), a last panel of one column by eight rows a vector
        // (OneColumn, also on B packed whole). All must give the bytes of the tiles on B packed whole: every K from 1 to 40, full and ragged panels, a row stride wider than n, rows not a multiple of 4 (and
        // fewer than 8, which never hold B in registers), signed and unsigned outputs, multipliers that need the clamp.
        if (!WideIntGemm.HardwareSupported) return;
        var rng = new Random(91);
        int ties = 0; // outputs whose scaled sum is a tie, not saturated
        foreach (int k in Enumerable.Range(1, 40).Concat([63, 64, 95, 96, 97, 144, 190, 192, 193]))
            foreach (var (m, n, ldb) in new[] { (8, 16, 16), (13, 49, 49), (9, 5, 7), (16, 17, 20), (12, 48, 48), (20, 64, 70), (24, 33, 33), (5, 72, 75), (4, 24, 24), (5, 50, 52), (6, 40, 40), (40, 25, 25), (8, 49, 49), (44, 1, 1), (16, 26, 26), (24, 51, 51), (40, 28, 30), (13, 4, 4), (8, 3, 3), (24, 150, 150), (9, 130, 131) })
                foreach (bool ySigned in new[] { false, true })
                {
                    bool huge = (k + m) % 7 == 0;
                    var a = WideWeights(rng, m * k);
                    var b = RandomBytes(rng, (k - 1) * ldb + n, k % 5 == 0);
                    var ap = new byte[FastIntGemm.PackedASize(m, k)];
                    FastIntGemm.PackA(a, m, k, k, false, true, ap, new int[m]);
                    var bp = new byte[WideIntGemm.PackedBSize(k, n)];
                    WideIntGemm.PackB(b, k, n, ldb, false, bp, default);
                    var init = Enumerable.Range(0, m).Select(_ => rng.Next(-20000, 20000)).ToArray();
                    // multipliers of 2^-10 and 2^-9 make ties (scaled sums at x.5) among the outputs that do not saturate
                    var mult = Enumerable.Range(0, m).Select(i => huge ? 1e6f : (k % 3) switch
                    {
                        1 => i % 2 == 0 ? 1f / 1024 : 1f / 512,
                        _ => 0.0005f + 0.01f * (float)rng.NextDouble(),
                    }).ToArray();
                    int yz = ySigned ? rng.Next(-20, 20) : rng.Next(0, 200);
                    // now and then the extreme zero points (the epilogues add them to saturated int16 words)
                    if (k % 4 == 0) yz = ySigned ? (k % 8 == 0 ? -128 : 127) : (k % 8 == 0 ? 0 : 255);
                    // the rounding by the magic-number addition (the default where the scaled sums stay small) and by
                    // the conversion (every fifth K) must give the same bytes as the plain loops below
                    bool magic = k % 5 != 2;
                    var range = WideIntGemm.ScaledSumsRange(FastIntGemm.Quads(k), init, mult, false);
                    Assert.Equal(huge ? WideIntGemm.SumRange.Clamped : WideIntGemm.SumRange.Magic, range);
                    // the reference: 4 x 24 tiles only (no B in registers, no last column by channels)
                    var tiles = Enumerable.Repeat((byte)0xA5, m * n).ToArray();
                    bool saved = WideIntGemm.StationaryB;
                    WideIntGemm.StationaryB = false;
                    WideIntGemm.OneColumnByChannels = false;
                    WideIntGemm.UseMagic = magic;
                    try { WideIntGemm.MultiplyRequantize(m, n, k, ap, false, bp, new WideIntGemm.Epilogue(init, mult, default, default, yz, ySigned, tiles, n)); }
                    finally { WideIntGemm.StationaryB = saved; WideIntGemm.OneColumnByChannels = true; WideIntGemm.UseMagic = true; }
                    // and the tiles against plain loops: init + Σ signed A · unsigned B, requantized by QuantMath
                    for (int i = 0; i < m; i++)
                        for (int j = 0; j < n; j++)
                        {
                            int acc = init[i];
                            for (int kk = 0; kk < k; kk++) acc += (sbyte)a[i * k + kk] * b[kk * ldb + j];
                            int q = QuantMath.Requantize(acc, mult[i], yz, ySigned ? -128 : 0, ySigned ? 127 : 255);
                            Assert.True((byte)q == tiles[i * n + j], $"tiles vs loops: m={m} n={n} k={k} magic={magic} at ({i}, {j}): {tiles[i * n + j]} vs {(byte)q}");
                            if (Math.Abs(Math.IEEERemainder(acc * (double)mult[i], 1)) == 0.5 && q > (ySigned ? -128 : 0) && q < (ySigned ? 127 : 255)) ties++;
                        }
                    var panels = Enumerable.Repeat((byte)0xA5, m * n).ToArray();
                    var buffer = new byte[WideIntGemm.PanelBytes(k)];
                    WideIntGemm.MultiplyRequantizePanels(m, n, k, ap, false, b, default, ldb, buffer, new WideIntGemm.Epilogue(init, mult, default, default, yz, ySigned, panels, n));
                    Assert.True(tiles.SequenceEqual(panels), $"panels: m={m} n={n} ldb={ldb} k={k} ySigned={ySigned} huge={huge}");
                    var whole = Enumerable.Repeat((byte)0xA5, m * n).ToArray();
                    WideIntGemm.MultiplyRequantize(m, n, k, ap, false, bp, new WideIntGemm.Epilogue(init, mult, default, default, yz, ySigned, whole, n));
                    Assert.True(tiles.SequenceEqual(whole), $"packed whole: m={m} n={n} ldb={ldb} k={k} ySigned={ySigned} huge={huge}");
                    // up to 8 quads held in ymm registers, up to 24 in zmm where the 512-bit pass runs, and up to 48 in two
                    // chunks there for at most 64 rows
                    Assert.Equal(m >= 8 && (k <= (WideIntGemm.Uses512 ? 96 : 32) || (WideIntGemm.Uses512 && k <= 192 && m <= 64)), WideIntGemm.TakesUnpacked(m, k, false));
                    if (!WideIntGemm.TakesUnpacked(m, k, false)) continue;
                    // the 512-bit pass where it runs (AVX-512 without AVX-VNNI), 64 columns interleaved at a time or 16, and the 256-bit one
                    foreach (var (wide, by64) in new[] { (true, true), (true, false), (false, true) })
                    {
                        if (!wide && k > 32) continue; // past 8 quads only the 512-bit pass holds B
                        var unpacked = Enumerable.Repeat((byte)0xA5, m * n).ToArray();
                        WideIntGemm.Stationary512 = wide;
                        WideIntGemm.Interleave64 = by64;
                        try { WideIntGemm.MultiplyRequantizeUnpacked(m, n, k, ap, false, b, default, ldb, new WideIntGemm.Epilogue(init, mult, default, default, yz, ySigned, unpacked, n)); }
                        finally { WideIntGemm.Stationary512 = true; WideIntGemm.Interleave64 = true; }
                        Assert.True(tiles.SequenceEqual(unpacked), $"unpacked (512 {wide}, by 64 {by64}): m={m} n={n} ldb={ldb} k={k} ySigned={ySigned} huge={huge}");
                    }
                    // the 512-bit pass storing rows of `width` columns compacted to their first `keep` (the stem's phase planes):
                    // every divisor of n as the row width, dropping none, one or two columns a row
                    if (WideIntGemm.CompactsRows(m, k))
                        foreach (int width in Enumerable.Range(2, n - 1).Where(w => n % w == 0))
                            foreach (int keep in new[] { width, width - 1, width - 2 }.Where(kp => kp >= 1))
                            {
                                int ldc = n / width * keep;
                                var compact = Enumerable.Repeat((byte)0xA5, m * ldc + 32).ToArray();
                                WideIntGemm.MultiplyRequantizeUnpacked(m, n, k, ap, false, b, default, ldb,
                                    new WideIntGemm.Epilogue(init, mult, default, default, yz, ySigned, compact.AsSpan(0, m * ldc), ldc) { RowWidth = width, RowKeep = keep });
                                for (int i = 0; i < m; i++)
                                    for (int j = 0; j < n; j++)
                                        if (j % width < keep)
                                            Assert.True(tiles[i * n + j] == compact[i * ldc + j / width * keep + j % width], $"compacted: m={m} n={n} k={k} width={width} keep={keep} at ({i}, {j})");
                                Assert.True(compact.AsSpan(m * ldc).IndexOfAnyExcept((byte)0xA5) < 0, $"compacted: m={m} n={n} k={k} width={width} keep={keep} wrote past its output");
                            }
                    // rows scattered through a buffer, found through a table (the stem's phase planes), in reverse order with gaps
                    var offsets = Enumerable.Range(0, k).Select(p => (k - 1 - p) * (n + 3) + 1).ToArray();
                    var scattered = new byte[k * (n + 3) + 1];
                    for (int p = 0; p < k; p++) b.AsSpan(p * ldb, n).CopyTo(scattered.AsSpan(offsets[p]));
                    var table = Enumerable.Repeat((byte)0xA5, m * n).ToArray();
                    WideIntGemm.MultiplyRequantizePanels(m, n, k, ap, false, scattered, offsets, 0, buffer, new WideIntGemm.Epilogue(init, mult, default, default, yz, ySigned, table, n));
                    Assert.True(tiles.SequenceEqual(table), $"row table: m={m} n={n} k={k} ySigned={ySigned} huge={huge}");
                }
        Assert.True(ties > 50, $"only {ties} ties were rounded");
        Assert.False(WideIntGemm.TakesUnpacked(16, 16, true));
        static WideIntGemm.Epilogue Bad() => new(new int[16], new float[16], default, default, 0, false, new byte[128], 8);
        // B shorter than its rows, a panel buffer too small
        Assert.Throws<ArgumentException>(() => WideIntGemm.MultiplyRequantizeUnpacked(16, 8, 16, new byte[FastIntGemm.PackedASize(16, 16)], false, new byte[100], default, 8, Bad()));
        Assert.Throws<ArgumentException>(() => WideIntGemm.MultiplyRequantizeUnpacked(16, 8, 2, new byte[FastIntGemm.PackedASize(16, 2)], false, new byte[100], new[] { 0, 95 }, 0, Bad()));
        Assert.Throws<ArgumentException>(() => WideIntGemm.MultiplyRequantizePanels(16, 8, 200, new byte[FastIntGemm.PackedASize(16, 200)], false, new byte[1600], default, 8, new byte[10], Bad()));
    }

    [Fact]
    public void ScaledSumsRangeCheckMatchesTheRowByRowBound()
    {
        // WideIntGemm.ScaledSumsInRange first bounds all rows at once; its answer must be the row-by-row bound's:
        // |sum| <= 4·kq·255² + |row constant| (2³¹ with any za), times |multiplier|, below 2²⁹
        static bool RowByRow(int kq, int[] init, float[] mult, bool anyZa)
        {
            for (int i = 0; i < init.Length; i++)
            {
                double bound = anyZa ? 2147483648.0 : Math.Min(2147483648.0, 4.0 * kq * 65025 + Math.Abs((double)init[i]));
                if (bound * Math.Abs((double)mult[i]) >= 1 << 29) return false;
            }
            return true;
        }
        var rng = new Random(5);
        int ins = 0, outs = 0;
        for (int trial = 0; trial < 3000; trial++)
        {
            int m = 1 + rng.Next(40), kq = 1 + rng.Next(300);
            bool anyZa = trial % 9 == 0;
            var init = Enumerable.Range(0, m).Select(_ => trial % 13 == 0 ? int.MinValue + rng.Next(3) : rng.Next(-5_000_000, 5_000_000)).ToArray();
            double scale = Math.Pow(10, rng.NextDouble() * 8 - 7); // 1e-7 .. 10
            var mult = Enumerable.Range(0, m + 3).Select(_ => (float)((rng.NextDouble() * 2 - 1) * scale)).ToArray();
            if (trial % 7 == 0) mult[rng.Next(m)] = (float)(scale * 50); // one row far above the others
            bool expect = RowByRow(kq, init, mult, anyZa);
            Assert.Equal(expect, WideIntGemm.ScaledSumsInRange(kq, init, mult, anyZa));
            if (expect) ins++; else outs++;
        }
        Assert.True(ins > 100 && outs > 100, $"both answers should occur: {ins} in range, {outs} not");
    }

    [Fact]
    public void RequantizeMatchesScalarIncludingHalfwayCases()
    {
        var rng = new Random(7);
        var acc = new int[203];
        for (int i = 0; i < acc.Length; i++) acc[i] = i < 64 ? (i - 32) * 2 + 1 : rng.Next(-100000, 100000); // odd values: x.5 with multiplier 0.5
        acc[100] = int.MaxValue; acc[101] = int.MinValue;
        foreach (float mult in new[] { 0.5f, 0.0123f, 1f / 3f, 2.5f, float.PositiveInfinity, float.NaN })
        {
            foreach (int yz in new[] { 0, 3, 128, -5 })
            {
                var fast = new byte[acc.Length];
                var slow = new byte[acc.Length];
                var fs = new sbyte[acc.Length];
                var ss = new sbyte[acc.Length];
                WithPath(IntGemmPath.Auto, () => { IntRequantize.Row<byte>(acc, 11, mult, yz, fast); IntRequantize.Row<sbyte>(acc, 11, mult, yz, fs); return 0; });
                var (umin, umax) = QuantMath.Range<byte>();
                var (smin, smax) = QuantMath.Range<sbyte>();
                for (int i = 0; i < acc.Length; i++)
                {
                    slow[i] = (byte)QuantMath.Requantize(acc[i] + 11, mult, yz, umin, umax);
                    ss[i] = (sbyte)QuantMath.Requantize(acc[i] + 11, mult, yz, smin, smax);
                }
                Assert.Equal(slow, fast);
                Assert.Equal(ss, fs);
                var mults = Enumerable.Range(0, acc.Length).Select(i => mult * (1 + i % 7) / 4f).ToArray();
                var fc = new byte[acc.Length];
                WithPath(IntGemmPath.Auto, () => { IntRequantize.Row<byte>(acc, mults, yz, fc); return 0; });
                for (int i = 0; i < acc.Length; i++) Assert.Equal((byte)QuantMath.Requantize(acc[i], mults[i], yz, umin, umax), fc[i]);
            }
        }
    }

    // ---- whole kernels through a session: reference route vs each fast path ----

    private static Tensor Bytes(Random r, bool signed, params int[] shape)
    {
        var b = new byte[shape.Aggregate(1, (x, y) => x * y)];
        r.NextBytes(b);
        return signed ? Tensor.FromArray(AsS(b), shape) : Tensor.FromArray(b, shape);
    }

    private static Tensor ZeroPoint(Random r, bool signed, int count, bool vector)
    {
        if (!vector) return signed ? Tensor.Scalar((sbyte)r.Next(-20, 20)) : Tensor.Scalar((byte)r.Next(100, 156));
        return signed
            ? Tensor.FromArray(Enumerable.Range(0, count).Select(_ => (sbyte)r.Next(-20, 20)).ToArray(), count)
            : Tensor.FromArray(Enumerable.Range(0, count).Select(_ => (byte)r.Next(100, 156)).ToArray(), count);
    }

    private static Tensor Scales(Random r, int count, bool vector, float baseScale) => vector
        ? Tensor.FromArray(Enumerable.Range(0, count).Select(_ => baseScale * (0.5f + (float)r.NextDouble())).ToArray(), count)
        : Tensor.Scalar(baseScale);

    /// <summary>Runs a one-node model; names in <paramref name="constants"/> are initializers (packed at planning).</summary>
    private static Tensor RunNode(string op, (string Name, Tensor? Value)[] inputs, HashSet<string> constants, Dictionary<string, AttributeValue> attrs, IntGemmPath path)
    {
        var node = new Node { OpType = op, Inputs = inputs.Select(i => i.Value is null ? "" : i.Name).ToList(), Outputs = ["y"], Attributes = attrs };
        var g = new Graph { Nodes = [node] };
        foreach (var (name, v) in inputs)
        {
            if (v is null) continue;
            if (constants.Contains(name)) g.Initializers[name] = v;
            else g.Inputs.Add(new ValueInfo(name, v.Type, v.Shape.Select(d => Dim.Of(d)).ToArray()));
        }
        g.Outputs.Add(new ValueInfo("y", DataType.Undefined, null));
        var model = new Model { Graph = g, Opsets = { [""] = 13 } };
        return WithPath(path, () =>
        {
            var session = new InferenceSession(model);
            var feed = inputs.Where(i => i.Value is not null && !constants.Contains(i.Name)).ToDictionary(i => i.Name, i => i.Value!);
            session.Run(feed);
            return session.Run(feed)["y"]; // second run: planned (packed) weights reused
        });
    }

    private static void AssertSame(Tensor expect, Tensor got, string what)
    {
        Assert.Equal(expect.Type, got.Type);
        Assert.Equal(expect.Shape, got.Shape);
        Assert.True(expect.Buffer.AsSpan(expect.ByteOffset, expect.Length * expect.Type.ElementSize())
            .SequenceEqual(got.Buffer.AsSpan(got.ByteOffset, got.Length * got.Type.ElementSize())), what);
    }

    /// <summary>
    /// Convolutions that the wide path feeds from stride-phase planes (any kernel size, stride 1 or 2, asymmetric
    /// padding, groups) and from the input itself (1×1), at sizes that span several 24-column panels and row blocks.
    /// </summary>
    [Theory]
    [MemberData(nameof(Paths))]
    public void QLinearConvPhasePlanesMatchReference(int pathId)
    {
        var path = (IntGemmPath)pathId;
        var rng = new Random(1234 + (int)path);
        for (int trial = 0; trial < 24; trial++)
        {
            bool xs = (trial & 1) != 0, ws = trial % 5 == 1, perChannel = (trial & 2) == 0;
            int stride = 1 + trial % 2, kh = 1 + rng.Next(5), kw = 1 + rng.Next(4), group = trial % 3 == 0 ? 2 : 1;
            if (kh == 1 && kw == 1 && stride == 1) kh = 3;
            int c = group * (1 + rng.Next(6)), m = group * (1 + rng.Next(20)), h = kh + rng.Next(20), w = kw + rng.Next(30);
            var attrs = new Dictionary<string, AttributeValue>
            {
                ["strides"] = AttributeValue.Of("strides", new long[] { stride, stride }),
                ["pads"] = AttributeValue.Of("pads", new long[] { rng.Next(kh), rng.Next(kw), rng.Next(kh), rng.Next(kw) }),
                ["group"] = AttributeValue.Of("group", (long)group),
            };
            var x = Bytes(rng, xs, 1 + trial % 2, c, h, w);
            var wt = Bytes(rng, ws, m, c / group, kh, kw);
            var wz = trial % 4 == 3 ? ZeroPoint(rng, ws, m, perChannel) : (ws ? Tensor.FromArray(new sbyte[perChannel ? m : 1], perChannel ? [m] : [1]) : Tensor.FromArray(new byte[perChannel ? m : 1], perChannel ? [m] : [1]));
            (string, Tensor?)[] q =
            [
                ("x", x), ("xs", Tensor.Scalar(0.02f)), ("xz", ZeroPoint(rng, xs, 1, false)), ("w", wt), ("ws", Scales(rng, m, perChannel, 0.01f)), ("wz", wz),
                ("ys", Tensor.Scalar(0.2f + 0.5f * (float)rng.NextDouble())), ("yz", trial % 3 == 1 ? Tensor.Scalar((sbyte)rng.Next(-10, 10)) : Tensor.Scalar((byte)rng.Next(100, 150))),
                ("b", Tensor.FromArray(Enumerable.Range(0, m).Select(_ => rng.Next(-20000, 20000)).ToArray(), m)),
            ];
            var consts = trial % 6 == 5 ? [] : new HashSet<string> { "w", "ws", "wz", "xs", "xz", "ys", "yz", "b" };
            string what = $"trial {trial} x {ShapeUtil.Format(x.Shape)} w {ShapeUtil.Format(wt.Shape)} stride {stride} group {group} xs={xs} ws={ws}";
            AssertSame(RunNode("QLinearConv", q, consts, attrs, IntGemmPath.Reference), RunNode("QLinearConv", q, consts, attrs, path), "QLinearConv " + what);
        }
    }

    /// <summary>
    /// The shapes the direct route (<see cref="IntDirectConv"/>) serves on the wide path: uint8 x, int8 w with zero
    /// points 0, stride 1, channel quads (C a multiple of 4) and column quads (kw ≤ 4), widths that leave ragged
    /// vectors, batches of 2, asymmetric padding, and huge multipliers that saturate.
    /// </summary>
    [Theory]
    [MemberData(nameof(Paths))]
    public void QLinearConvDirectRouteMatchesReference(int pathId)
    {
        var path = (IntGemmPath)pathId;
        var rng = new Random(4321 + (int)path);
        for (int trial = 0; trial < 30; trial++)
        {
            bool quads = trial % 2 == 0;
            int c = quads ? 4 * (1 + rng.Next(4)) : 1 + rng.Next(7);
            int kh = 1 + rng.Next(5), kw = quads ? 1 + rng.Next(5) : 1 + rng.Next(4);
            if (kh == 1 && kw == 1) kw = 2;
            int m = 1 + rng.Next(13), h = kh + rng.Next(16), w = kw + rng.Next(40), batch = 1 + trial % 2;
            var attrs = new Dictionary<string, AttributeValue>
            {
                ["pads"] = AttributeValue.Of("pads", new long[] { rng.Next(kh), rng.Next(kw), rng.Next(kh), rng.Next(kw) }),
            };
            var x = Bytes(rng, false, batch, c, h, w);
            var wt = Bytes(rng, true, m, c, kh, kw);
            bool perChannel = trial % 3 != 0;
            float ys = trial % 7 == 6 ? 1e-6f : 0.2f + 0.5f * (float)rng.NextDouble();
            (string, Tensor?)[] q =
            [
                ("x", x), ("xs", Tensor.Scalar(0.02f)), ("xz", Tensor.Scalar((byte)rng.Next(0, 256))), ("w", wt), ("ws", Scales(rng, m, perChannel, 0.01f)),
                ("wz", Tensor.FromArray(new sbyte[perChannel ? m : 1], perChannel ? [m] : [1])),
                ("ys", Tensor.Scalar(ys)), ("yz", trial % 4 == 1 ? Tensor.Scalar((sbyte)rng.Next(-10, 10)) : Tensor.Scalar((byte)rng.Next(100, 150))),
                ("b", trial % 5 == 4 ? null : Tensor.FromArray(Enumerable.Range(0, m).Select(_ => rng.Next(-20000, 20000)).ToArray(), m)),
            ];
            var consts = new HashSet<string> { "w", "ws", "wz", "xs", "xz", "ys", "yz", "b" };
            string what = $"trial {trial} x {ShapeUtil.Format(x.Shape)} w {ShapeUtil.Format(wt.Shape)} pads {string.Join(",", attrs["pads"].Ints)}";
            AssertSame(RunNode("QLinearConv", q, consts, attrs, IntGemmPath.Reference), RunNode("QLinearConv", q, consts, attrs, path), "QLinearConv " + what);
        }
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void QLinearConvAndConvIntegerMatchReference(int pathId)
    {
        var path = (IntGemmPath)pathId;
        var rng = new Random(99 + (int)path);
        for (int trial = 0; trial < 40; trial++)
        {
            bool xs = (trial & 1) != 0, ws = (trial & 2) != 0, perChannel = (trial & 4) != 0, constW = (trial & 8) == 0, ys = trial % 3 == 0;
            int kind = trial % 4; // 0: 3x3 pad 1, 1: 1x1, 2: depthwise 3x3 stride 2, 3: grouped 3x2 dilated
            int batch = 1 + trial % 2, h = 3 + rng.Next(9), w = 3 + rng.Next(9);
            int c, m, group, kh, kw;
            var attrs = new Dictionary<string, AttributeValue>();
            switch (kind)
            {
                case 0: c = 1 + rng.Next(7); m = 1 + rng.Next(19); group = 1; kh = kw = 3; attrs["pads"] = AttributeValue.Of("pads", new long[] { 1, 1, 1, 1 }); break;
                case 1: c = 1 + rng.Next(40); m = 1 + rng.Next(40); group = 1; kh = kw = 1; break;
                case 2: c = 1 + rng.Next(12); m = c; group = c; kh = kw = 3; attrs["strides"] = AttributeValue.Of("strides", new long[] { 2, 2 }); attrs["pads"] = AttributeValue.Of("pads", new long[] { 1, 0, 1, 1 }); break;
                default: group = 2; c = 2 * (1 + rng.Next(4)); m = 2 * (1 + rng.Next(6)); kh = 3; kw = 2; attrs["dilations"] = AttributeValue.Of("dilations", new long[] { 2, 1 }); break;
            }
            if (kind >= 2) { h += 4; w += 2; }
            foreach (var a in attrs.Values.ToList()) attrs[a.Name] = a;
            attrs["group"] = AttributeValue.Of("group", (long)group);
            var x = Bytes(rng, xs, batch, c, h, w);
            var wt = Bytes(rng, ws, m, c / group, kh, kw);
            var xz = ZeroPoint(rng, xs, 1, false);
            var wz = ZeroPoint(rng, ws, m, perChannel);
            var bias = Tensor.FromArray(Enumerable.Range(0, m).Select(_ => rng.Next(-5000, 5000)).ToArray(), m);
            (string, Tensor?)[] q =
            [
                ("x", x), ("xs", Tensor.Scalar(0.02f)), ("xz", xz), ("w", wt), ("ws", Scales(rng, m, perChannel, 0.01f)), ("wz", wz),
                ("ys", Tensor.Scalar(0.05f + 0.1f * (float)rng.NextDouble())), ("yz", ys ? Tensor.Scalar((sbyte)rng.Next(-10, 10)) : Tensor.Scalar((byte)rng.Next(100, 150))),
                ("b", trial % 5 == 4 ? null : bias),
            ];
            var consts = constW ? new HashSet<string> { "w", "ws", "wz", "xs", "xz", "ys", "yz", "b" } : [];
            string what = $"trial {trial} kind {kind} x {ShapeUtil.Format(x.Shape)} w {ShapeUtil.Format(wt.Shape)} xs={xs} ws={ws} perChannel={perChannel} const={constW}";
            AssertSame(RunNode("QLinearConv", q, consts, attrs, IntGemmPath.Reference), RunNode("QLinearConv", q, consts, attrs, path), "QLinearConv " + what);
            (string, Tensor?)[] ci = [("x", x), ("w", wt), ("xz", xz), ("wz", wz)];
            AssertSame(RunNode("ConvInteger", ci, consts, attrs, IntGemmPath.Reference), RunNode("ConvInteger", ci, consts, attrs, path), "ConvInteger " + what);
        }
    }

    [Fact]
    public void StemConvolutionsOnSevenBitWeightsMatchTheReference()
    {
        // MobileNetV2's stem as the quantizer writes it (uint8 activations, 7-bit int8 weights, zero points 0): 3 × 3
        // stride 2 over phase planes on the wide path, whose 512-bit pass (AVX-512 without AVX-VNNI) stores the planes'
        // rows compacted straight into y, or the GEMM writes them whole and a pass compacts them; both against the reference
        var rng = new Random(31);
        foreach (var (c, m, h, w, pad) in new[] { (3, 32, 40, 40, 1), (3, 8, 31, 37, 1), (3, 16, 17, 5, 0), (4, 24, 24, 66, 1), (3, 32, 2, 2, 1) })
            foreach (bool compact in new[] { true, false })
            {
                var attrs = new Dictionary<string, AttributeValue>
                {
                    ["strides"] = AttributeValue.Of("strides", new long[] { 2, 2 }),
                    ["pads"] = AttributeValue.Of("pads", new long[] { pad, pad, pad, pad }),
                };
                var x = Bytes(rng, false, 1, c, h, w);
                var weights = new sbyte[m * c * 9];
                for (int i = 0; i < weights.Length; i++) weights[i] = (sbyte)rng.Next(-64, 65);
                (string, Tensor?)[] q =
                [
                    ("x", x), ("xs", Tensor.Scalar(0.02f)), ("xz", Tensor.Scalar((byte)rng.Next(256))), ("w", Tensor.FromArray(weights, m, c, 3, 3)),
                    ("ws", Scales(rng, m, true, 0.01f)), ("wz", Tensor.FromArray(new sbyte[m], m)),
                    ("ys", Tensor.Scalar(0.05f)), ("yz", Tensor.Scalar((byte)rng.Next(100, 150))),
                    ("b", Tensor.FromArray(Enumerable.Range(0, m).Select(_ => rng.Next(-5000, 5000)).ToArray(), m)),
                ];
                var consts = new HashSet<string> { "w", "ws", "wz", "xs", "xz", "ys", "yz", "b" };
                WideIntGemm.CompactRows = compact;
                try
                {
                    AssertSame(RunNode("QLinearConv", q, consts, attrs, IntGemmPath.Reference), RunNode("QLinearConv", q, consts, attrs, IntGemmPath.Auto),
                        $"stem {c}x{h}x{w} -> {m}, pad {pad}, compacted as stored {compact}");
                }
                finally { WideIntGemm.CompactRows = true; }
            }
    }

    /// <summary>
    /// Multipliers far above 1 (a tiny y_scale): scaled sums leave the int32 range, so the wide path's clamp before the
    /// float-to-int conversion runs; every output saturates or lands near the ends, as in the reference.
    /// </summary>
    [Theory]
    [MemberData(nameof(Paths))]
    public void HugeMultipliersSaturateLikeTheReference(int pathId)
    {
        var path = (IntGemmPath)pathId;
        var rng = new Random(77 + (int)path);
        for (int trial = 0; trial < 8; trial++)
        {
            bool ws = trial % 2 == 0, ysSigned = trial % 3 == 0;
            int c = 3 + rng.Next(10), m = 1 + rng.Next(30), h = 3 + rng.Next(12), w = 3 + rng.Next(30), k = trial % 4 == 0 ? 1 : 3;
            var attrs = new Dictionary<string, AttributeValue> { ["pads"] = AttributeValue.Of("pads", k == 1 ? new long[] { 0, 0, 0, 0 } : new long[] { 1, 1, 1, 1 }) };
            var x = Bytes(rng, false, 1, c, h, w);
            var wt = Bytes(rng, ws, m, c, k, k);
            (string, Tensor?)[] q =
            [
                ("x", x), ("xs", Tensor.Scalar(0.5f)), ("xz", Tensor.Scalar((byte)rng.Next(256))), ("w", wt), ("ws", Scales(rng, m, true, 0.5f)),
                ("wz", trial % 4 == 3 ? ZeroPoint(rng, ws, m, true) : (ws ? Tensor.FromArray(new sbyte[m], m) : Tensor.FromArray(new byte[m], m))),
                ("ys", Tensor.Scalar(1e-4f)), ("yz", ysSigned ? Tensor.Scalar((sbyte)3) : Tensor.Scalar((byte)128)),
                ("b", Tensor.FromArray(Enumerable.Range(0, m).Select(_ => rng.Next(int.MinValue / 2, int.MaxValue / 2)).ToArray(), m)),
            ];
            var consts = new HashSet<string> { "w", "ws", "wz", "xs", "xz", "ys", "yz", "b" };
            AssertSame(RunNode("QLinearConv", q, consts, attrs, IntGemmPath.Reference), RunNode("QLinearConv", q, consts, attrs, path), $"QLinearConv trial {trial}");
            int mm = 1 + rng.Next(6), kk = 1 + rng.Next(90), nn = 1 + rng.Next(60);
            (string, Tensor?)[] mq =
            [
                ("a", Bytes(rng, false, mm, kk)), ("as", Tensor.Scalar(0.5f)), ("az", Tensor.Scalar((byte)rng.Next(256))),
                ("b", Bytes(rng, true, kk, nn)), ("bs", Tensor.Scalar(0.5f)), ("bz", Tensor.Scalar((sbyte)0)),
                ("ys", Tensor.Scalar(1e-4f)), ("yz", Tensor.Scalar((byte)17)),
            ];
            var mc = new HashSet<string> { "b", "bs", "bz", "ys", "yz", "as", "az" };
            var none = new Dictionary<string, AttributeValue>();
            AssertSame(RunNode("QLinearMatMul", mq, mc, none, IntGemmPath.Reference), RunNode("QLinearMatMul", mq, mc, none, path), $"QLinearMatMul trial {trial}");
        }
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void QLinearMatMulAndMatMulIntegerMatchReference(int pathId)
    {
        var path = (IntGemmPath)pathId;
        var rng = new Random(5 + (int)path);
        for (int trial = 0; trial < 40; trial++)
        {
            bool as_ = (trial & 1) != 0, bs = (trial & 2) != 0, perCol = (trial & 4) != 0, constB = (trial & 8) == 0, ys = trial % 3 == 0;
            int m = 1 + rng.Next(13), k = 1 + rng.Next(70), n = 1 + rng.Next(50);
            int[] aShape = trial % 7 == 6 ? [2, m, k] : [m, k];
            int[] bShape = trial % 11 == 10 ? [2, k, n] : [k, n];
            var a = Bytes(rng, as_, aShape);
            var b = Bytes(rng, bs, bShape);
            var az = ZeroPoint(rng, as_, m, false);
            var bz = ZeroPoint(rng, bs, n, perCol);
            (string, Tensor?)[] q =
            [
                ("a", a), ("as", Tensor.Scalar(0.03f)), ("az", az), ("b", b), ("bs", Scales(rng, n, perCol, 0.01f)), ("bz", bz),
                ("ys", Tensor.Scalar(0.02f + 0.1f * (float)rng.NextDouble())), ("yz", ys ? Tensor.Scalar((sbyte)rng.Next(-10, 10)) : Tensor.Scalar((byte)rng.Next(100, 150))),
            ];
            var consts = constB ? new HashSet<string> { "b", "bs", "bz", "ys", "yz", "as", "az" } : [];
            string what = $"trial {trial} a {ShapeUtil.Format(aShape)} b {ShapeUtil.Format(bShape)} as={as_} bs={bs} perCol={perCol} const={constB}";
            var empty = new Dictionary<string, AttributeValue>();
            AssertSame(RunNode("QLinearMatMul", q, consts, empty, IntGemmPath.Reference), RunNode("QLinearMatMul", q, consts, empty, path), "QLinearMatMul " + what);
            var azv = ZeroPoint(rng, as_, m, trial % 3 == 1);
            (string, Tensor?)[] mi = [("a", a), ("b", b), ("az", trial % 4 == 3 ? null : azv), ("bz", bz)];
            AssertSame(RunNode("MatMulInteger", mi, consts, empty, IntGemmPath.Reference), RunNode("MatMulInteger", mi, consts, empty, path), "MatMulInteger " + what);
        }
    }

    [Fact]
    public void SingleRowQLinearMatMulTakesItsPlannedRouteAndMatchesTheReference()
    {
        // One row against a constant B with constant scalar parameters (a classifier's layers) runs by the plan made at
        // load; it must give the reference's bytes whatever the sizes, zero points and signedness, and the same bytes as
        // the general route.
        if (!WideIntGemm.HardwareSupported) return;
        var rng = new Random(41);
        int trial = 0;
        foreach (int k in new[] { 4, 64, 784 })
            foreach (int n in new[] { 1, 10, 37, 64 })
                foreach (bool aSigned in new[] { false, true })
                {
                    trial++;
                    bool bSigned = !aSigned, ySigned = trial % 2 == 0, rank1 = trial % 3 == 0;
                    int zb = trial % 4 == 0 ? 0 : rng.Next(-20, 20);
                    var zbT = bSigned ? Tensor.Scalar((sbyte)zb) : Tensor.Scalar((byte)(zb + 128));
                    var az = aSigned ? Tensor.Scalar((sbyte)rng.Next(-128, 128)) : Tensor.Scalar((byte)rng.Next(256));
                    (string, Tensor?)[] q =
                    [
                        ("a", rank1 ? Bytes(rng, aSigned, k) : Bytes(rng, aSigned, 1, k)), ("as", Tensor.Scalar(0.03f)), ("az", az),
                        ("b", Bytes(rng, bSigned, k, n)), ("bs", Tensor.Scalar(0.011f)), ("bz", zbT),
                        ("ys", Tensor.Scalar(0.05f + 0.5f * (float)rng.NextDouble())), ("yz", ySigned ? Tensor.Scalar((sbyte)rng.Next(-10, 10)) : Tensor.Scalar((byte)rng.Next(100, 150))),
                    ];
                    var consts = new HashSet<string> { "b", "bs", "bz", "ys", "yz", "as", "az" };
                    var empty = new Dictionary<string, AttributeValue>();
                    string what = $"k {k} n {n} a signed {aSigned} y signed {ySigned} zb {zb} rank-1 a {rank1}";
                    var expect = RunNode("QLinearMatMul", q, consts, empty, IntGemmPath.Reference);
                    AssertSame(expect, RunNode("QLinearMatMul", q, consts, empty, IntGemmPath.AvxVnniWide), "planned row " + what);
                    IntMatMulKernel.PlanRows = false;
                    try
                    {
                        AssertSame(expect, RunNode("QLinearMatMul", q, consts, empty, IntGemmPath.AvxVnniWide), "general route " + what);
                    }
                    finally
                    {
                        IntMatMulKernel.PlanRows = true;
                    }
                }
    }

    [Fact]
    public void FastConvAllocatesNothingPerRun()
    {
        var rng = new Random(3);
        var node = new Node
        {
            OpType = "QLinearConv", Inputs = ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"], Outputs = ["y"],
            Attributes = new() { ["pads"] = AttributeValue.Of("pads", new long[] { 1, 1, 1, 1 }) },
        };
        var g = new Graph { Nodes = [node] };
        g.Inputs.Add(new ValueInfo("x", DataType.UInt8, [Dim.Of(1), Dim.Of(8), Dim.Of(10), Dim.Of(10)]));
        g.Initializers["xs"] = Tensor.Scalar(0.02f);
        g.Initializers["xz"] = Tensor.Scalar((byte)128);
        g.Initializers["w"] = Bytes(rng, true, 16, 8, 3, 3);
        g.Initializers["ws"] = Scales(rng, 16, true, 0.01f);
        g.Initializers["wz"] = Tensor.FromArray(new sbyte[16], 16);
        g.Initializers["ys"] = Tensor.Scalar(0.1f);
        g.Initializers["yz"] = Tensor.Scalar((byte)120);
        g.Initializers["b"] = Tensor.FromArray(new int[16], 16);
        g.Outputs.Add(new ValueInfo("y", DataType.Undefined, null));
        var session = new InferenceSession(new Model { Graph = g, Opsets = { [""] = 13 } });
        var inputs = new[] { Bytes(rng, false, 1, 8, 10, 10) };
        var outputs = new Tensor[1];
        session.Run(inputs, outputs);
        session.Run(inputs, outputs);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 5; i++) session.Run(inputs, outputs);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
