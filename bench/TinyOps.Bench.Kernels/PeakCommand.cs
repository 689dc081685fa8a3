using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace TinyOps.Bench.Kernels;

/// <summary>
/// <c>peak</c>: the multiply-add throughput of the instructions the fp32 and int8 kernels are built on, measured
/// alternately in one process: 512-bit FMA (vfmadd, 16 float multiply-adds), 256-bit FMA, and 256-bit vpdpbusd
/// (AVX-VNNI, 32 byte multiply-adds, the widest .NET 10 emits), each in a loop of 12 independent accumulators (more
/// than latency × ports, so the loop is bound by throughput). The ratio of the int8 and fp32 rates bounds how much an
/// int8 layer bound by nothing but multiply-adds can gain over its fp32 version on this machine; it includes the clock
/// drop 512-bit FMAs bring on some Intel cores.
/// </summary>
internal static class PeakCommand
{
    /// <summary>
    /// <c>peak --scaling</c>: how much the host lets two threads gain right now: a 512-bit FMA loop on one thread,
    /// then the same loop on two threads at once (each its own copy), alternated 20 times; prints one JSON line with
    /// the median of (two threads' combined rate / one thread's rate). On two idle cores this is 2.0; hyperthreads of
    /// one core, a shared core or a lower clock under load give less. bench/run-peer.sh samples it in every round, so
    /// the two-thread figures can be read against what the machine allowed at the time.
    /// </summary>
    public static int Scaling()
    {
        if (!Avx512F.IsSupported) { Console.Error.WriteLine("peak: needs AVX-512F"); return 2; }
        const int n = 40_000; // about 0.1 ms a call
        var z = Vector512.Create(1.0001f);
        for (int w = 0; w < 50; w++) Fma512(n, z);
        var ratios = new List<double>();
        using var go = new Barrier(2);
        for (int r = 0; r < 20; r++)
        {
            long t0 = Stopwatch.GetTimestamp();
            for (int i = 0; i < 10; i++) Fma512(n, z);
            double one = Stopwatch.GetElapsedTime(t0).TotalMicroseconds;
            var other = new Thread(() => { go.SignalAndWait(); for (int i = 0; i < 10; i++) Fma512(n, z); });
            other.Start();
            go.SignalAndWait();
            t0 = Stopwatch.GetTimestamp();
            for (int i = 0; i < 10; i++) Fma512(n, z);
            other.Join();
            double two = Stopwatch.GetElapsedTime(t0).TotalMicroseconds;
            ratios.Add(2 * one / two);
        }
        ratios.Sort();
        Console.WriteLine($"{{\"host_two_thread_scaling\":{ratios[ratios.Count / 2].ToString("F3", System.Globalization.CultureInfo.InvariantCulture)}}}");
        return 0;
    }

    /// <summary>
    /// What bounds the emulated dot product's loops (machines without AVX-VNNI): the inner loop of the fused conv + pool
    /// tile (per quad: four 32-byte loads of B, two 4-byte broadcasts of A, eight vpmaddubsw + vpmaddwd + vpaddd into
    /// eight accumulators) on L1-resident data, against the same with B held in registers, and with pairs of quads
    /// sharing one vpmaddwd. Prints emulated dot products (8 lanes × 4 bytes) per ns.
    /// </summary>
    public static unsafe int Loops()
    {
        if (!Avx2.IsSupported) { Console.Error.WriteLine("peak --loops: needs AVX2"); return 2; }
        const int kq = 18, reps = 2000;
        var rng = new Random(1);
        var bBytes = new byte[kq * 128 + 64];
        var aBytes = new byte[kq * 8 + 64];
        rng.NextBytes(bBytes);
        for (int i = 0; i < aBytes.Length; i++) aBytes[i] = (byte)(sbyte)rng.Next(-30, 31);
        fixed (byte* pb = bBytes, pa = aBytes)
        {
            for (int w = 0; w < 50; w++) { WithLoads(pb, pa, kq, reps); InRegisters(pb, pa, kq, reps); Paired(pb, pa, kq, reps); }
            var tl = new List<double>(); var tr = new List<double>(); var tp = new List<double>();
            for (int r = 0; r < 200; r++)
            {
                long t0 = Stopwatch.GetTimestamp(); WithLoads(pb, pa, kq, reps); tl.Add(Stopwatch.GetElapsedTime(t0).TotalMicroseconds);
                t0 = Stopwatch.GetTimestamp(); InRegisters(pb, pa, kq, reps); tr.Add(Stopwatch.GetElapsedTime(t0).TotalMicroseconds);
                t0 = Stopwatch.GetTimestamp(); Paired(pb, pa, kq, reps); tp.Add(Stopwatch.GetElapsedTime(t0).TotalMicroseconds);
            }
            double Rate(List<double> t) { t.Sort(); return 8.0 * kq * reps / t[t.Count / 2] / 1000; }
            Console.WriteLine($"tile loop, B loaded each quad : {Rate(tl):F2} dots per ns");
            Console.WriteLine($"tile loop, B in registers     : {Rate(tr):F2} dots per ns");
            Console.WriteLine($"tile loop, quad pairs         : {Rate(tp):F2} dots per ns");
        }
        return 0;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Emu(Vector256<int> acc, Vector256<byte> u, Vector256<byte> s) => TinyOps.Engine.Kernels.Quantized.ByteDot.Emulated(acc, u, s.AsSByte());

    private interface IFlag { static abstract bool Value { get; } }
    private struct Yes : IFlag { public static bool Value => true; }
    private struct No : IFlag { public static bool Value => false; }

    private static unsafe Vector256<int> WithLoads(byte* pb, byte* pa, int kq, int reps) => TileLoop<Yes>(pb, pa, kq, reps);

    private static unsafe Vector256<int> InRegisters(byte* pb, byte* pa, int kq, int reps) => TileLoop<No>(pb, pa, kq, reps);

    /// <summary>The fused conv + pool tile's loop; <typeparamref name="TLoad"/>: B loaded for every quad (else held in registers).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static unsafe Vector256<int> TileLoop<TLoad>(byte* pb, byte* pa, int kq, int reps) where TLoad : struct, IFlag
    {
        Vector256<int> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default, c6 = default, c7 = default;
        var b0 = Vector256.Load(pb); var b1 = Vector256.Load(pb + 32); var b2 = Vector256.Load(pb + 64); var b3 = Vector256.Load(pb + 96);
        for (int r = 0; r < reps; r++)
            for (int q = 0; q < kq; q++)
            {
                if (TLoad.Value)
                {
                    byte* b = pb + q * 128;
                    b0 = Vector256.Load(b); b1 = Vector256.Load(b + 32); b2 = Vector256.Load(b + 64); b3 = Vector256.Load(b + 96);
                }
                var w = Vector256.Create(*(int*)(pa + q * 8)).AsByte();
                c0 = Emu(c0, b0, w); c1 = Emu(c1, b1, w); c2 = Emu(c2, b2, w); c3 = Emu(c3, b3, w);
                w = Vector256.Create(*(int*)(pa + q * 8 + 4)).AsByte();
                c4 = Emu(c4, b0, w); c5 = Emu(c5, b1, w); c6 = Emu(c6, b2, w); c7 = Emu(c7, b3, w);
            }
        return c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static unsafe Vector256<int> Paired(byte* pb, byte* pa, int kq, int reps)
    {
        Vector256<int> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default, c6 = default, c7 = default;
        var one = Vector256<short>.One;
        for (int r = 0; r < reps; r++)
            for (int q = 0; q < kq; q += 2)
            {
                byte* b = pb + q * 128;
                var b0 = Vector256.Load(b); var b1 = Vector256.Load(b + 32); var b2 = Vector256.Load(b + 64); var b3 = Vector256.Load(b + 96);
                var s0 = Vector256.Load(b + 128); var s1 = Vector256.Load(b + 160); var s2 = Vector256.Load(b + 192); var s3 = Vector256.Load(b + 224);
                var w = Vector256.Create(*(int*)(pa + q * 8)).AsSByte(); var v = Vector256.Create(*(int*)(pa + q * 8 + 8)).AsSByte();
                c0 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(b0, w) + Avx2.MultiplyAddAdjacent(s0, v), one);
                c1 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(b1, w) + Avx2.MultiplyAddAdjacent(s1, v), one);
                c2 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(b2, w) + Avx2.MultiplyAddAdjacent(s2, v), one);
                c3 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(b3, w) + Avx2.MultiplyAddAdjacent(s3, v), one);
                w = Vector256.Create(*(int*)(pa + q * 8 + 4)).AsSByte(); v = Vector256.Create(*(int*)(pa + q * 8 + 12)).AsSByte();
                c4 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(b0, w) + Avx2.MultiplyAddAdjacent(s0, v), one);
                c5 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(b1, w) + Avx2.MultiplyAddAdjacent(s1, v), one);
                c6 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(b2, w) + Avx2.MultiplyAddAdjacent(s2, v), one);
                c7 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(b3, w) + Avx2.MultiplyAddAdjacent(s3, v), one);
            }
        return c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7;
    }

    public static int Run()
    {
        if (!Avx512BW.IsSupported || !Fma.IsSupported)
        {
            Console.Error.WriteLine("peak: needs AVX-512BW and FMA");
            return 2;
        }
        const int n = 20_000; // 240,000 instructions a call
        var z = Vector512.Create(1.0001f);
        var y = Vector256.Create(1.0001f);
        var a = Vector256.Create((byte)3);
        var b = Vector256.Create((sbyte)2);
        var z8 = Vector512.Create((byte)3);
        var s8 = Vector512.Create((sbyte)2);
        bool vnni = AvxVnni.IsSupported;
        for (int w = 0; w < 100; w++) { Fma512(n, z); Fma256(n, y); if (vnni) Vnni256(n, a, b); Emulated256(n, a, b); Emulated512(n, z8, s8); }
        var t512 = new List<double>(); var t256 = new List<double>(); var tv = new List<double>(); var te = new List<double>(); var te5 = new List<double>();
        for (int r = 0; r < 300; r++)
        {
            long t0 = Stopwatch.GetTimestamp(); Fma512(n, z); t512.Add(Stopwatch.GetElapsedTime(t0).TotalMicroseconds);
            t0 = Stopwatch.GetTimestamp(); Fma256(n, y); t256.Add(Stopwatch.GetElapsedTime(t0).TotalMicroseconds);
            if (vnni) { t0 = Stopwatch.GetTimestamp(); Vnni256(n, a, b); tv.Add(Stopwatch.GetElapsedTime(t0).TotalMicroseconds); }
            t0 = Stopwatch.GetTimestamp(); Emulated256(n, a, b); te.Add(Stopwatch.GetElapsedTime(t0).TotalMicroseconds);
            t0 = Stopwatch.GetTimestamp(); Emulated512(n, z8, s8); te5.Add(Stopwatch.GetElapsedTime(t0).TotalMicroseconds);
        }
        double Rate(List<double> t) { t.Sort(); return 12.0 * n / t[t.Count / 2] / 1000; } // instructions (or emulated dot steps) per ns, median
        double f512 = Rate(t512), f256 = Rate(t256), e = Rate(te), e5 = Rate(te5), fp = Math.Max(f512 * 16, f256 * 8);
        Console.WriteLine($"512-bit FMA     : {f512:F2} per ns = {f512 * 16:F1} float multiply-adds per ns");
        Console.WriteLine($"256-bit FMA     : {f256:F2} per ns = {f256 * 8:F1} float multiply-adds per ns");
        if (vnni)
        {
            double v = Rate(tv);
            Console.WriteLine($"256-bit vpdpbusd: {v:F2} per ns = {v * 32:F1} byte multiply-adds per ns");
            Console.WriteLine($"int8 / fp32 ceiling (vpdpbusd / best FMA): {v * 32 / fp:F2}x");
        }
        Console.WriteLine($"256-bit vpmaddubsw+vpmaddwd+vpaddd: {e:F2} per ns = {e * 32:F1} byte multiply-adds per ns ({e * 32 / fp:F2}x the best FMA)");
        Console.WriteLine($"512-bit vpmaddubsw+vpmaddwd+vpaddd: {e5:F2} per ns = {e5 * 64:F1} byte multiply-adds per ns ({e5 * 64 / fp:F2}x the best FMA)");
        return 0;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static Vector512<float> Fma512(int n, Vector512<float> x)
    {
        Vector512<float> c0 = x, c1 = x, c2 = x, c3 = x, c4 = x, c5 = x, c6 = x, c7 = x, c8 = x, c9 = x, c10 = x, c11 = x;
        for (int i = 0; i < n; i++)
        {
            c0 = Vector512.FusedMultiplyAdd(c0, x, x); c1 = Vector512.FusedMultiplyAdd(c1, x, x); c2 = Vector512.FusedMultiplyAdd(c2, x, x);
            c3 = Vector512.FusedMultiplyAdd(c3, x, x); c4 = Vector512.FusedMultiplyAdd(c4, x, x); c5 = Vector512.FusedMultiplyAdd(c5, x, x);
            c6 = Vector512.FusedMultiplyAdd(c6, x, x); c7 = Vector512.FusedMultiplyAdd(c7, x, x); c8 = Vector512.FusedMultiplyAdd(c8, x, x);
            c9 = Vector512.FusedMultiplyAdd(c9, x, x); c10 = Vector512.FusedMultiplyAdd(c10, x, x); c11 = Vector512.FusedMultiplyAdd(c11, x, x);
        }
        return c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static Vector256<float> Fma256(int n, Vector256<float> x)
    {
        Vector256<float> c0 = x, c1 = x, c2 = x, c3 = x, c4 = x, c5 = x, c6 = x, c7 = x, c8 = x, c9 = x, c10 = x, c11 = x;
        for (int i = 0; i < n; i++)
        {
            c0 = Vector256.FusedMultiplyAdd(c0, x, x); c1 = Vector256.FusedMultiplyAdd(c1, x, x); c2 = Vector256.FusedMultiplyAdd(c2, x, x);
            c3 = Vector256.FusedMultiplyAdd(c3, x, x); c4 = Vector256.FusedMultiplyAdd(c4, x, x); c5 = Vector256.FusedMultiplyAdd(c5, x, x);
            c6 = Vector256.FusedMultiplyAdd(c6, x, x); c7 = Vector256.FusedMultiplyAdd(c7, x, x); c8 = Vector256.FusedMultiplyAdd(c8, x, x);
            c9 = Vector256.FusedMultiplyAdd(c9, x, x); c10 = Vector256.FusedMultiplyAdd(c10, x, x); c11 = Vector256.FusedMultiplyAdd(c11, x, x);
        }
        return c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static Vector256<int> Emulated256(int n, Vector256<byte> a, Vector256<sbyte> b)
    {
        var one = Vector256<short>.One;
        var a0 = a; var a1 = a + Vector256<byte>.One;
        var b0 = b; var b1 = b + Vector256<sbyte>.One; var b2 = b1 + Vector256<sbyte>.One; var b3 = b2 + Vector256<sbyte>.One; var b4 = b3 + Vector256<sbyte>.One; var b5 = b4 + Vector256<sbyte>.One;
        Vector256<int> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default;
        Vector256<int> c6 = default, c7 = default, c8 = default, c9 = default, c10 = default, c11 = default;
        for (int i = 0; i < n; i++)
        {
            c0 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(a0, b0), one); c1 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(a1, b0), one);
            c2 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(a0, b1), one); c3 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(a1, b1), one);
            c4 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(a0, b2), one); c5 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(a1, b2), one);
            c6 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(a0, b3), one); c7 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(a1, b3), one);
            c8 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(a0, b4), one); c9 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(a1, b4), one);
            c10 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(a0, b5), one); c11 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(a1, b5), one);
            a0 += Vector256<byte>.One; a1 += Vector256<byte>.One;
        }
        return c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static Vector512<int> Emulated512(int n, Vector512<byte> a, Vector512<sbyte> b)
    {
        var one = Vector512<short>.One;
        var a0 = a; var a1 = a + Vector512<byte>.One;
        var b0 = b; var b1 = b + Vector512<sbyte>.One; var b2 = b1 + Vector512<sbyte>.One; var b3 = b2 + Vector512<sbyte>.One; var b4 = b3 + Vector512<sbyte>.One; var b5 = b4 + Vector512<sbyte>.One;
        Vector512<int> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default;
        Vector512<int> c6 = default, c7 = default, c8 = default, c9 = default, c10 = default, c11 = default;
        for (int i = 0; i < n; i++)
        {
            c0 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(a0, b0), one); c1 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(a1, b0), one);
            c2 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(a0, b1), one); c3 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(a1, b1), one);
            c4 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(a0, b2), one); c5 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(a1, b2), one);
            c6 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(a0, b3), one); c7 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(a1, b3), one);
            c8 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(a0, b4), one); c9 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(a1, b4), one);
            c10 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(a0, b5), one); c11 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(a1, b5), one);
            a0 += Vector512<byte>.One; a1 += Vector512<byte>.One;
        }
        return c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static Vector256<int> Vnni256(int n, Vector256<byte> a, Vector256<sbyte> b)
    {
        Vector256<int> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default;
        Vector256<int> c6 = default, c7 = default, c8 = default, c9 = default, c10 = default, c11 = default;
        for (int i = 0; i < n; i++)
        {
            c0 = AvxVnni.MultiplyWideningAndAdd(c0, a, b); c1 = AvxVnni.MultiplyWideningAndAdd(c1, a, b); c2 = AvxVnni.MultiplyWideningAndAdd(c2, a, b);
            c3 = AvxVnni.MultiplyWideningAndAdd(c3, a, b); c4 = AvxVnni.MultiplyWideningAndAdd(c4, a, b); c5 = AvxVnni.MultiplyWideningAndAdd(c5, a, b);
            c6 = AvxVnni.MultiplyWideningAndAdd(c6, a, b); c7 = AvxVnni.MultiplyWideningAndAdd(c7, a, b); c8 = AvxVnni.MultiplyWideningAndAdd(c8, a, b);
            c9 = AvxVnni.MultiplyWideningAndAdd(c9, a, b); c10 = AvxVnni.MultiplyWideningAndAdd(c10, a, b); c11 = AvxVnni.MultiplyWideningAndAdd(c11, a, b);
        }
        return c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11;
    }
}
