using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace TinyOps.Engine.Kernels.Quantized;

/// <summary>Instruction-set paths of <see cref="FastIntGemm"/>; tests force each one through <see cref="FastIntGemm.Forced"/>.</summary>
internal enum IntGemmPath
{
    /// <summary>The best path this machine supports.</summary>
    Auto,
    /// <summary>The kernels call the plain reference <see cref="IntGemm"/> and scalar requantization (tests compare against it).</summary>
    Reference,
    /// <summary>Plain loops over the packed layout (any CPU).</summary>
    Scalar,
    /// <summary>AVX2: bytes widened to int16, vpmaddwd into int32 (no int16 saturation).</summary>
    Avx2,
    /// <summary>AVX-VNNI: vpdpbusd (unsigned × signed bytes, four products per int32 lane).</summary>
    AvxVnni,
    /// <summary>
    /// AVX-512: the 4 × 24 tiles of <see cref="WideIntGemm"/> for requantized products, with vpdpbusd where AVX-VNNI is
    /// present and its emulation (for weights it serves exactly) where not, see <see cref="ByteDot"/>; elsewhere as
    /// <see cref="AvxVnni"/>, or as <see cref="Avx2"/> without AVX-VNNI.
    /// </summary>
    AvxVnniWide,
}

/// <summary>
/// Packed integer GEMM with int32 accumulation: C[m, n] = Σ_k (A[m, k] − za[m]) · (B[k, n] − zb[n]).
/// <para>
/// A is packed in blocks of <see cref="MR"/> rows, B in panels of <see cref="NR"/> columns; both in groups of four
/// consecutive k (a "quad", the unit of vpdpbusd). Packed A: [block][quad][row r &lt; MR][4 bytes];
/// packed B: [panel][quad][column c &lt; NR][4 bytes]; padding is zero. The kernels multiply one unsigned by one
/// signed operand; when A and B have the same element type, A is converted (x ^ 0x80, i.e. ±128) while packing and
/// its zero point moves with it, so (a − za) is unchanged. Zero points are applied after the dot products through
/// row sums of A and column sums of B: Σ(a − za)(b − zb) = Σab − zb·Σa − za·(Σb − K·zb). All int32 arithmetic
/// wraps, exactly like <see cref="IntGemm"/>, so results are bit-identical to the reference.
/// </para>
/// </summary>
internal static class FastIntGemm
{
    public const int MR = 4;
    public const int NR = 16;

    [ThreadStatic] private static IntGemmPath t_forced;

    /// <summary>
    /// Forces a path on the calling thread (tests); <see cref="IntGemmPath.Auto"/> picks the best supported one.
    /// Unsupported choices fall back to the next best.
    /// </summary>
    public static IntGemmPath Forced { get => t_forced; set => t_forced = value; }

    /// <summary>True when kernels should use the plain reference routines.</summary>
    public static bool UseReference => t_forced == IntGemmPath.Reference;

    public static IntGemmPath Active
    {
        get
        {
            var f = Forced;
            if (f is IntGemmPath.Scalar or IntGemmPath.Reference) return IntGemmPath.Scalar;
            if (f == IntGemmPath.Avx2) return Avx2.IsSupported ? f : IntGemmPath.Scalar;
            if (f != IntGemmPath.AvxVnni && WideIntGemm.HardwareSupported) return IntGemmPath.AvxVnniWide;
            if (AvxVnni.IsSupported) return IntGemmPath.AvxVnni;
            return Avx2.IsSupported ? IntGemmPath.Avx2 : IntGemmPath.Scalar;
        }
    }

    public static int Quads(int k) => (k + 3) >> 2;
    public static int PackedASize(int m, int k) => (m + MR - 1) / MR * MR * Quads(k) * 4;
    public static int PackedBSize(int k, int n) => (n + NR - 1) / NR * NR * Quads(k) * 4;
    public static int PaddedN(int n) => (n + NR - 1) / NR * NR;

    /// <summary>
    /// How to pair the operand types: A is converted when both have the same type; after that exactly one side is
    /// unsigned. <paramref name="zeroShiftA"/> is what to add to A's zero points.
    /// </summary>
    public static void Plan(bool aSigned, bool bSigned, out bool flipA, out bool aUnsigned, out int zeroShiftA)
    {
        flipA = aSigned == bSigned;
        aUnsigned = flipA ? aSigned : !aSigned;
        zeroShiftA = !flipA ? 0 : aSigned ? 128 : -128;
    }

    /// <summary>
    /// Packs A (m × k, row stride lda, raw bytes) into <paramref name="dst"/> (<see cref="PackedASize"/> bytes);
    /// <paramref name="rowSums"/>[i] = Σ_k A'[i, k] of the converted values, read as signed when
    /// <paramref name="signedAfter"/>.
    /// </summary>
    public static void PackA(ReadOnlySpan<byte> a, int m, int k, int lda, bool flip, bool signedAfter, Span<byte> dst, Span<int> rowSums)
    {
        int kq = Quads(k);
        dst.Slice(0, PackedASize(m, k)).Clear();
        byte x = flip ? (byte)0x80 : (byte)0;
        ref byte d0 = ref MemoryMarshal.GetReference(dst);
        for (int i = 0; i < m; i++)
        {
            var row = a.Slice(i * lda, k);
            int block = i / MR, r = i % MR;
            int baseOff = block * kq * MR * 4 + r * 4;
            int sum = 0;
            int p = 0;
            for (; p + 4 <= k; p += 4)
            {
                uint v = Unsafe.ReadUnaligned<uint>(ref Unsafe.AsRef(in row[p])) ^ (x * 0x01010101u);
                Unsafe.WriteUnaligned(ref Unsafe.Add(ref d0, baseOff + (p >> 2) * MR * 4), v);
                sum += signedAfter
                    ? (sbyte)v + (sbyte)(v >> 8) + (sbyte)(v >> 16) + (sbyte)(v >> 24)
                    : (int)(v & 0xFF) + (int)((v >> 8) & 0xFF) + (int)((v >> 16) & 0xFF) + (int)(v >> 24);
            }
            for (; p < k; p++)
            {
                byte v = (byte)(row[p] ^ x);
                Unsafe.Add(ref d0, baseOff + (p >> 2) * MR * 4 + (p & 3)) = v;
                sum += signedAfter ? (sbyte)v : v;
            }
            rowSums[i] = sum;
        }
    }

    /// <summary>
    /// Packs B (k × n, row stride ldb, raw bytes) into <paramref name="dst"/> (<see cref="PackedBSize"/> bytes);
    /// <paramref name="colSums"/>[j] = Σ_k B[k, j] (read as signed when <paramref name="signed"/>). B is never converted.
    /// </summary>
    public static void PackB(ReadOnlySpan<byte> b, int k, int n, int ldb, bool signed, Span<byte> dst, Span<int> colSums)
    {
        int kq = Quads(k);
        int panels = (n + NR - 1) / NR;
        colSums.Slice(0, n).Clear();
        ref byte d0 = ref MemoryMarshal.GetReference(dst);
        for (int pn = 0; pn < panels; pn++)
        {
            int j0 = pn * NR, nc = Math.Min(NR, n - j0);
            int panelOff = pn * kq * NR * 4;
            if (nc == NR && Avx2.IsSupported && Active != IntGemmPath.Scalar)
            {
                PackPanelSimd(b.Slice(j0), k, ldb, signed, dst.Slice(panelOff, kq * NR * 4), colSums.Slice(j0, NR));
                continue;
            }
            if (nc < NR) dst.Slice(panelOff, kq * NR * 4).Clear();
            else if ((k & 3) != 0) dst.Slice(panelOff + (kq - 1) * NR * 4, NR * 4).Clear();
            for (int p = 0; p < k; p++)
            {
                var src = b.Slice(p * ldb + j0, nc);
                ref byte d = ref Unsafe.Add(ref d0, panelOff + (p >> 2) * NR * 4 + (p & 3));
                for (int c = 0; c < nc; c++) Unsafe.Add(ref d, c * 4) = src[c];
            }
            var cs = colSums.Slice(j0, nc);
            for (int p = 0; p < k; p++)
            {
                var src = b.Slice(p * ldb + j0, nc);
                if (signed) for (int c = 0; c < nc; c++) cs[c] += (sbyte)src[c];
                else for (int c = 0; c < nc; c++) cs[c] += src[c];
            }
        }
    }

    /// <summary>One full 16-column panel: four rows at a time interleaved with byte/word unpacks; column sums widened to int32.</summary>
    private static void PackPanelSimd(ReadOnlySpan<byte> b, int k, int ldb, bool signed, Span<byte> dst, Span<int> colSums)
    {
        ref byte s0 = ref MemoryMarshal.GetReference(b);
        ref byte d = ref MemoryMarshal.GetReference(dst);
        var sumLo = Vector256<int>.Zero;
        var sumHi = Vector256<int>.Zero;
        int kq = Quads(k);
        for (int q = 0; q < kq; q++)
        {
            int p = q * 4;
            var r0 = Vector128.LoadUnsafe(ref s0, (nuint)(p * ldb));
            var r1 = p + 1 < k ? Vector128.LoadUnsafe(ref s0, (nuint)((p + 1) * ldb)) : Vector128<byte>.Zero;
            var r2 = p + 2 < k ? Vector128.LoadUnsafe(ref s0, (nuint)((p + 2) * ldb)) : Vector128<byte>.Zero;
            var r3 = p + 3 < k ? Vector128.LoadUnsafe(ref s0, (nuint)((p + 3) * ldb)) : Vector128<byte>.Zero;
            var t01l = Sse2.UnpackLow(r0, r1).AsInt16();
            var t01h = Sse2.UnpackHigh(r0, r1).AsInt16();
            var t23l = Sse2.UnpackLow(r2, r3).AsInt16();
            var t23h = Sse2.UnpackHigh(r2, r3).AsInt16();
            Sse2.UnpackLow(t01l, t23l).AsByte().StoreUnsafe(ref d, 0);
            Sse2.UnpackHigh(t01l, t23l).AsByte().StoreUnsafe(ref d, 16);
            Sse2.UnpackLow(t01h, t23h).AsByte().StoreUnsafe(ref d, 32);
            Sse2.UnpackHigh(t01h, t23h).AsByte().StoreUnsafe(ref d, 48);
            d = ref Unsafe.Add(ref d, NR * 4);
            // column sums: widen each row to int16, add the four rows, widen to int32
            Vector256<short> w;
            if (signed)
                w = Avx2.ConvertToVector256Int16(r0.AsSByte()) + Avx2.ConvertToVector256Int16(r1.AsSByte())
                  + Avx2.ConvertToVector256Int16(r2.AsSByte()) + Avx2.ConvertToVector256Int16(r3.AsSByte());
            else
                w = Avx2.ConvertToVector256Int16(r0) + Avx2.ConvertToVector256Int16(r1)
                  + Avx2.ConvertToVector256Int16(r2) + Avx2.ConvertToVector256Int16(r3);
            sumLo += Avx2.ConvertToVector256Int32(w.GetLower());
            sumHi += Avx2.ConvertToVector256Int32(w.GetUpper());
        }
        sumLo.CopyTo(colSums);
        sumHi.CopyTo(colSums.Slice(8));
    }

    /// <summary>Scratch ints <see cref="Multiply"/> needs for n columns.</summary>
    public static int WorkInts(int n) => 2 * PaddedN(n);

    /// <summary>
    /// C = packed A × packed B with zero-point corrections (see the type summary). za holds one value or one per row,
    /// zb one or one per column, both in the packed (converted) domain. <paramref name="work"/> has <see cref="WorkInts"/> ints.
    /// </summary>
    public static void Multiply(int m, int n, int k,
        ReadOnlySpan<byte> ap, ReadOnlySpan<int> rowSumA, ReadOnlySpan<int> za, bool aUnsigned,
        ReadOnlySpan<byte> bp, ReadOnlySpan<int> colSumB, ReadOnlySpan<int> zb,
        Span<int> work, Span<int> c, int ldc, bool pairsFit = false)
        => Core(m, n, k, ap, rowSumA, za, aUnsigned, bp, colSumB, zb, work, c, ldc, default, default, 0, default, 0, 0, pairsFit);

    /// <summary>
    /// As <see cref="Multiply"/>, then requantizes each finished tile straight into <paramref name="y"/> (uint8, or int8
    /// when <paramref name="ySigned"/>): y[i, j] = requantize(C[i, j] + rowBias[i], rowMult[i]) exactly as
    /// <see cref="IntRequantize.Row{TY}(ReadOnlySpan{int}, int, float, int, Span{TY})"/>; no int32 matrix is stored.
    /// </summary>
    public static void MultiplyRequantize(int m, int n, int k,
        ReadOnlySpan<byte> ap, ReadOnlySpan<int> rowSumA, ReadOnlySpan<int> za, bool aUnsigned,
        ReadOnlySpan<byte> bp, ReadOnlySpan<int> colSumB, ReadOnlySpan<int> zb, Span<int> work,
        ReadOnlySpan<float> rowMult, ReadOnlySpan<int> rowBias, int yZero, Span<byte> y, bool ySigned, int ldy, bool pairsFit = false)
        => Core(m, n, k, ap, rowSumA, za, aUnsigned, bp, colSumB, zb, work, default, 0, rowMult, rowBias, yZero, y, ySigned ? 2 : 1, ldy, pairsFit);

    /// <summary>
    /// True when every pair of consecutive k (k = 2i, 2i + 1) of each column of a signed B has |a| + |b| ≤ 128, so
    /// vpmaddubsw against unsigned bytes cannot saturate (see <see cref="PairsFitInt16"/>).
    /// </summary>
    public static bool ColumnPairsFitInt16(ReadOnlySpan<byte> b, int k, int n, int ldb)
    {
        for (int p = 0; p + 1 < k; p += 2)
        {
            var r0 = b.Slice(p * ldb, n);
            var r1 = b.Slice((p + 1) * ldb, n);
            for (int j = 0; j < n; j++)
                if (Math.Abs((int)(sbyte)r0[j]) + Math.Abs((int)(sbyte)r1[j]) > 128) return false;
        }
        return true;
    }

    /// <summary>
    /// True when every pair of consecutive k of each row (k = 2i, 2i + 1) of a signed matrix has |a| + |b| ≤ 128, so a
    /// pair of products with any unsigned byte (≤ 255·128 = 32640) fits int16 and vpmaddubsw cannot saturate.
    /// Weights quantized to 7 bits ([-64, 64]) always pass.
    /// </summary>
    public static bool PairsFitInt16(ReadOnlySpan<byte> a, int rows, int k, int lda)
    {
        for (int i = 0; i < rows; i++)
            if (!ByteDot.PairsWithin128(a.Slice(i * lda, k))) return false;
        return true;
    }

    private static void Core(int m, int n, int k,
        ReadOnlySpan<byte> ap, ReadOnlySpan<int> rowSumA, ReadOnlySpan<int> za, bool aUnsigned,
        ReadOnlySpan<byte> bp, ReadOnlySpan<int> colSumB, ReadOnlySpan<int> zb,
        Span<int> work, Span<int> c, int ldc,
        ReadOnlySpan<float> rowMult, ReadOnlySpan<int> rowBias, int yZero, Span<byte> y, int yKind, int ldy, bool pairsFit)
    {
        if (m == 0 || n == 0) return;
        var q = new Requant(rowMult, rowBias, yZero, y, yKind, ldy);
        int np = PaddedN(n);
        var zbFull = work.Slice(0, np);
        var colAdj = work.Slice(np, np);
        for (int j = 0; j < n; j++)
        {
            int z = zb.Length == 0 ? 0 : zb.Length == 1 ? zb[0] : zb[j];
            zbFull[j] = z;
            colAdj[j] = colSumB[j] - k * z;
        }
        zbFull.Slice(n).Clear();
        colAdj.Slice(n).Clear();
        var path = Active;
        if (path == IntGemmPath.AvxVnni || (path == IntGemmPath.AvxVnniWide && ByteDot.Native))
        {
            if (aUnsigned) Run<AUnsigned, VnniTile>(m, n, k, ap, rowSumA, za, bp, zbFull, colAdj, c, ldc, q);
            else Run<ASigned, VnniTile>(m, n, k, ap, rowSumA, za, bp, zbFull, colAdj, c, ldc, q);
        }
        else if (path is IntGemmPath.Avx2 or IntGemmPath.AvxVnniWide && pairsFit)
        {
            if (aUnsigned) Run<AUnsigned, MaddubsTile>(m, n, k, ap, rowSumA, za, bp, zbFull, colAdj, c, ldc, q);
            else Run<ASigned, MaddubsTile>(m, n, k, ap, rowSumA, za, bp, zbFull, colAdj, c, ldc, q);
        }
        else if (path is IntGemmPath.Avx2 or IntGemmPath.AvxVnniWide)
        {
            if (aUnsigned) Run<AUnsigned, MaddTile>(m, n, k, ap, rowSumA, za, bp, zbFull, colAdj, c, ldc, q);
            else Run<ASigned, MaddTile>(m, n, k, ap, rowSumA, za, bp, zbFull, colAdj, c, ldc, q);
        }
        else
        {
            if (aUnsigned) Run<AUnsigned, ScalarTile>(m, n, k, ap, rowSumA, za, bp, zbFull, colAdj, c, ldc, q);
            else Run<ASigned, ScalarTile>(m, n, k, ap, rowSumA, za, bp, zbFull, colAdj, c, ldc, q);
        }
    }

    /// <summary>
    /// The reference algorithm vectorized over columns, for few rows (depthwise convolution, tiny products):
    /// C[i, :] = Σ_k (A[i, k] − za[i]) · B[k, :], then − zb[j] · Σ_k (A[i, k] − za[i]). Raw bytes, no packing.
    /// </summary>
    public static void MultiplyRows(int m, int n, int k, ReadOnlySpan<byte> a, int lda, bool aSigned, ReadOnlySpan<int> za,
        ReadOnlySpan<byte> b, int ldb, bool bSigned, ReadOnlySpan<int> zb, Span<int> c, int ldc)
    {
        bool vec = Avx2.IsSupported && Active != IntGemmPath.Scalar;
        for (int i = 0; i < m; i++)
        {
            var crow = c.Slice(i * ldc, n);
            crow.Clear();
            int zai = za.Length == 0 ? 0 : za.Length == 1 ? za[0] : za[i];
            int rowSum = 0;
            for (int p = 0; p < k; p++)
            {
                byte raw = a[i * lda + p];
                int av = (aSigned ? (sbyte)raw : raw) - zai;
                if (av == 0) continue;
                rowSum += av;
                var brow = b.Slice(p * ldb, n);
                int j = 0;
                if (vec)
                {
                    var s = Vector256.Create(av);
                    ref byte b0 = ref MemoryMarshal.GetReference(brow);
                    ref int c0 = ref MemoryMarshal.GetReference(crow);
                    for (; j + 8 <= n; j += 8)
                    {
                        var bv = Vector128.CreateScalar(Unsafe.ReadUnaligned<long>(ref Unsafe.Add(ref b0, j))).AsByte();
                        var w = bSigned ? Avx2.ConvertToVector256Int32(bv.AsSByte()) : Avx2.ConvertToVector256Int32(bv);
                        (Vector256.LoadUnsafe(ref c0, (nuint)j) + w * s).StoreUnsafe(ref c0, (nuint)j);
                    }
                }
                if (bSigned) for (; j < n; j++) crow[j] += av * (sbyte)brow[j];
                else for (; j < n; j++) crow[j] += av * brow[j];
            }
            if (zb.Length > 1) for (int j = 0; j < n; j++) crow[j] -= zb[j] * rowSum;
            else if (zb.Length == 1 && zb[0] != 0)
            {
                int corr = zb[0] * rowSum;
                for (int j = 0; j < n; j++) crow[j] -= corr;
            }
        }
    }

    /// <summary>Optional fused requantization of finished tiles (Kind 0: none, 1: uint8, 2: int8).</summary>
    private readonly ref struct Requant(ReadOnlySpan<float> rowMult, ReadOnlySpan<int> rowBias, int yZero, Span<byte> y, int kind, int ldy)
    {
        public readonly ReadOnlySpan<float> RowMult = rowMult;
        public readonly ReadOnlySpan<int> RowBias = rowBias;
        public readonly int YZero = yZero;
        public readonly Span<byte> Y = y;
        public readonly int Kind = kind;
        public readonly int Ldy = ldy;
    }

    internal interface ISign { static abstract bool AIsUnsigned { get; } }
    internal struct AUnsigned : ISign { public static bool AIsUnsigned => true; }
    internal struct ASigned : ISign { public static bool AIsUnsigned => false; }

    /// <summary>Computes one MR × NR tile (rows beyond the valid ones are computed on zero padding and ignored).</summary>
    internal interface ITile
    {
        static abstract void Compute<TS>(ref byte ap, ref byte bp, int kq, Span<int> tile) where TS : struct, ISign;
    }

    private static void Run<TS, TT>(int m, int n, int k,
        ReadOnlySpan<byte> ap, ReadOnlySpan<int> rowSumA, ReadOnlySpan<int> za,
        ReadOnlySpan<byte> bp, ReadOnlySpan<int> zbFull, ReadOnlySpan<int> colAdj, Span<int> c, int ldc, Requant q)
        where TS : struct, ISign where TT : struct, ITile
    {
        Span<int> rowTmp = stackalloc int[NR];
        int kq = Quads(k);
        int panels = (n + NR - 1) / NR, blocks = (m + MR - 1) / MR;
        Span<int> tile = stackalloc int[MR * NR];
        ref byte a0 = ref MemoryMarshal.GetReference(ap);
        ref byte b0 = ref MemoryMarshal.GetReference(bp);
        bool zaPerRow = za.Length > 1;
        int zaShared = za.Length == 0 ? 0 : za[0];
        bool fastQ = q.Kind != 0 && Avx2.IsSupported && !IntRequantize.ForceScalar && AllFinite(q.RowMult.Slice(0, m));
        for (int pn = 0; pn < panels; pn++)
        {
            int j0 = pn * NR, nc = Math.Min(NR, n - j0);
            ref byte bpanel = ref Unsafe.Add(ref b0, pn * kq * NR * 4);
            var zbp = zbFull.Slice(j0, NR);
            var adjp = colAdj.Slice(j0, NR);
            for (int bl = 0; bl < blocks; bl++)
            {
                int i0 = bl * MR, mr = Math.Min(MR, m - i0);
                if (mr == 1 && typeof(TT) == typeof(MaddubsTile)) MaddubsTile.ComputeOneRow<TS>(ref Unsafe.Add(ref a0, bl * kq * MR * 4), ref bpanel, kq, tile);
                else TT.Compute<TS>(ref Unsafe.Add(ref a0, bl * kq * MR * 4), ref bpanel, kq, tile);
                for (int r = 0; r < mr; r++)
                {
                    int i = i0 + r;
                    if (q.Kind == 0)
                    {
                        Epilogue(tile.Slice(r * NR, NR), rowSumA[i], zaPerRow ? za[i] : zaShared, zbp, adjp, c.Slice(i * ldc + j0, nc));
                        continue;
                    }
                    var tmp = rowTmp.Slice(0, nc);
                    Epilogue(tile.Slice(r * NR, NR), rowSumA[i], zaPerRow ? za[i] : zaShared, zbp, adjp, tmp);
                    int bias = q.RowBias.IsEmpty ? 0 : q.RowBias[i];
                    var yrow = q.Y.Slice(i * q.Ldy + j0, nc);
                    if (fastQ && nc == NR) IntRequantize.Row16(tmp, bias, q.RowMult[i], q.YZero, yrow, q.Kind == 2);
                    else if (q.Kind == 1) IntRequantize.Row(tmp, bias, q.RowMult[i], q.YZero, yrow);
                    else IntRequantize.Row(tmp, bias, q.RowMult[i], q.YZero, MemoryMarshal.Cast<byte, sbyte>(yrow));
                }
            }
        }
    }

    private static bool AllFinite(ReadOnlySpan<float> v)
    {
        foreach (float f in v) if (!float.IsFinite(f)) return false;
        return true;
    }

    /// <summary>c[j] = acc[j] − zb[j]·rowSum − za·adj[j] for the valid columns.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Epilogue(ReadOnlySpan<int> acc, int rowSum, int za, ReadOnlySpan<int> zb, ReadOnlySpan<int> adj, Span<int> c)
    {
        int j = 0;
        if (Vector256.IsHardwareAccelerated && c.Length == NR)
        {
            var rs = Vector256.Create(rowSum);
            var zv = Vector256.Create(za);
            for (; j < NR; j += 8)
            {
                var v = Vector256.Create(acc.Slice(j, 8)) - Vector256.Create(zb.Slice(j, 8)) * rs - zv * Vector256.Create(adj.Slice(j, 8));
                v.CopyTo(c.Slice(j, 8));
            }
            return;
        }
        for (; j < c.Length; j++) c[j] = acc[j] - zb[j] * rowSum - za * adj[j];
    }

    /// <summary>Reference-style tile over the packed layout.</summary>
    internal struct ScalarTile : ITile
    {
        public static void Compute<TS>(ref byte ap, ref byte bp, int kq, Span<int> tile) where TS : struct, ISign
        {
            tile.Clear();
            bool au = TS.AIsUnsigned;
            for (int q = 0; q < kq; q++)
            {
                ref byte aq = ref Unsafe.Add(ref ap, q * MR * 4);
                ref byte bq = ref Unsafe.Add(ref bp, q * NR * 4);
                for (int r = 0; r < MR; r++)
                {
                    var trow = tile.Slice(r * NR, NR);
                    for (int t = 0; t < 4; t++)
                    {
                        byte ab = Unsafe.Add(ref aq, r * 4 + t);
                        int av = au ? ab : (sbyte)ab;
                        if (av == 0) continue;
                        for (int cc = 0; cc < NR; cc++)
                        {
                            byte bb = Unsafe.Add(ref bq, cc * 4 + t);
                            trow[cc] += av * (au ? (sbyte)bb : bb);
                        }
                    }
                }
            }
        }
    }

    /// <summary>AVX-VNNI tile: per quad, two 8-column vectors of B and a broadcast of each row's 4 bytes of A.</summary>
    internal struct VnniTile : ITile
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Compute<TS>(ref byte ap, ref byte bp, int kq, Span<int> tile) where TS : struct, ISign
        {
            var c00 = Vector256<int>.Zero; var c01 = Vector256<int>.Zero;
            var c10 = Vector256<int>.Zero; var c11 = Vector256<int>.Zero;
            var c20 = Vector256<int>.Zero; var c21 = Vector256<int>.Zero;
            var c30 = Vector256<int>.Zero; var c31 = Vector256<int>.Zero;
            for (int q = 0; q < kq; q++)
            {
                var b0 = Vector256.LoadUnsafe(ref bp);
                var b1 = Vector256.LoadUnsafe(ref bp, 32);
                var a0 = Vector256.Create(Unsafe.ReadUnaligned<int>(ref ap)).AsByte();
                var a1 = Vector256.Create(Unsafe.ReadUnaligned<int>(ref Unsafe.Add(ref ap, 4))).AsByte();
                var a2 = Vector256.Create(Unsafe.ReadUnaligned<int>(ref Unsafe.Add(ref ap, 8))).AsByte();
                var a3 = Vector256.Create(Unsafe.ReadUnaligned<int>(ref Unsafe.Add(ref ap, 12))).AsByte();
                if (TS.AIsUnsigned)
                {
                    var s0 = b0.AsSByte(); var s1 = b1.AsSByte();
                    c00 = AvxVnni.MultiplyWideningAndAdd(c00, a0, s0); c01 = AvxVnni.MultiplyWideningAndAdd(c01, a0, s1);
                    c10 = AvxVnni.MultiplyWideningAndAdd(c10, a1, s0); c11 = AvxVnni.MultiplyWideningAndAdd(c11, a1, s1);
                    c20 = AvxVnni.MultiplyWideningAndAdd(c20, a2, s0); c21 = AvxVnni.MultiplyWideningAndAdd(c21, a2, s1);
                    c30 = AvxVnni.MultiplyWideningAndAdd(c30, a3, s0); c31 = AvxVnni.MultiplyWideningAndAdd(c31, a3, s1);
                }
                else
                {
                    c00 = AvxVnni.MultiplyWideningAndAdd(c00, b0, a0.AsSByte()); c01 = AvxVnni.MultiplyWideningAndAdd(c01, b1, a0.AsSByte());
                    c10 = AvxVnni.MultiplyWideningAndAdd(c10, b0, a1.AsSByte()); c11 = AvxVnni.MultiplyWideningAndAdd(c11, b1, a1.AsSByte());
                    c20 = AvxVnni.MultiplyWideningAndAdd(c20, b0, a2.AsSByte()); c21 = AvxVnni.MultiplyWideningAndAdd(c21, b1, a2.AsSByte());
                    c30 = AvxVnni.MultiplyWideningAndAdd(c30, b0, a3.AsSByte()); c31 = AvxVnni.MultiplyWideningAndAdd(c31, b1, a3.AsSByte());
                }
                ap = ref Unsafe.Add(ref ap, MR * 4);
                bp = ref Unsafe.Add(ref bp, NR * 4);
            }
            ref int t = ref MemoryMarshal.GetReference(tile);
            c00.StoreUnsafe(ref t, 0); c01.StoreUnsafe(ref t, 8);
            c10.StoreUnsafe(ref t, 16); c11.StoreUnsafe(ref t, 24);
            c20.StoreUnsafe(ref t, 32); c21.StoreUnsafe(ref t, 40);
            c30.StoreUnsafe(ref t, 48); c31.StoreUnsafe(ref t, 56);
        }
    }

    /// <summary>
    /// AVX2 tile with vpmaddubsw (unsigned × signed bytes, pairs summed to int16) and vpmaddwd by ones (pairs of int16
    /// to int32): four products per int32 lane like VNNI, in two instructions. Only used when the signed operand's
    /// pairs fit (<see cref="PairsFitInt16"/>), so the int16 step never saturates and results stay exact.
    /// </summary>
    internal struct MaddubsTile : ITile
    {
        /// <summary>Row 0 of the tile only (a product with one row, e.g. a fully connected layer at batch 1).</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void ComputeOneRow<TS>(ref byte ap, ref byte bp, int kq, Span<int> tile) where TS : struct, ISign
        {
            var c0 = Vector256<int>.Zero; var c1 = Vector256<int>.Zero;
            for (int q = 0; q < kq; q++)
            {
                var b0 = Vector256.LoadUnsafe(ref bp);
                var b1 = Vector256.LoadUnsafe(ref bp, 32);
                var a = Vector256.Create(Unsafe.ReadUnaligned<int>(ref ap)).AsByte();
                if (TS.AIsUnsigned)
                {
                    c0 = ByteDot.Emulated(c0, a, b0.AsSByte());
                    c1 = ByteDot.Emulated(c1, a, b1.AsSByte());
                }
                else
                {
                    c0 = ByteDot.Emulated(c0, b0, a.AsSByte());
                    c1 = ByteDot.Emulated(c1, b1, a.AsSByte());
                }
                ap = ref Unsafe.Add(ref ap, MR * 4);
                bp = ref Unsafe.Add(ref bp, NR * 4);
            }
            ref int t = ref MemoryMarshal.GetReference(tile);
            c0.StoreUnsafe(ref t, 0); c1.StoreUnsafe(ref t, 8);
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Compute<TS>(ref byte ap, ref byte bp, int kq, Span<int> tile) where TS : struct, ISign
        {
            var c00 = Vector256<int>.Zero; var c01 = Vector256<int>.Zero;
            var c10 = Vector256<int>.Zero; var c11 = Vector256<int>.Zero;
            var c20 = Vector256<int>.Zero; var c21 = Vector256<int>.Zero;
            var c30 = Vector256<int>.Zero; var c31 = Vector256<int>.Zero;
            for (int q = 0; q < kq; q++)
            {
                var b0 = Vector256.LoadUnsafe(ref bp);
                var b1 = Vector256.LoadUnsafe(ref bp, 32);
                var a0 = Vector256.Create(Unsafe.ReadUnaligned<int>(ref ap)).AsByte();
                var a1 = Vector256.Create(Unsafe.ReadUnaligned<int>(ref Unsafe.Add(ref ap, 4))).AsByte();
                var a2 = Vector256.Create(Unsafe.ReadUnaligned<int>(ref Unsafe.Add(ref ap, 8))).AsByte();
                var a3 = Vector256.Create(Unsafe.ReadUnaligned<int>(ref Unsafe.Add(ref ap, 12))).AsByte();
                if (TS.AIsUnsigned)
                {
                    var s0 = b0.AsSByte(); var s1 = b1.AsSByte();
                    c00 = ByteDot.Emulated(c00, a0, s0); c01 = ByteDot.Emulated(c01, a0, s1);
                    c10 = ByteDot.Emulated(c10, a1, s0); c11 = ByteDot.Emulated(c11, a1, s1);
                    c20 = ByteDot.Emulated(c20, a2, s0); c21 = ByteDot.Emulated(c21, a2, s1);
                    c30 = ByteDot.Emulated(c30, a3, s0); c31 = ByteDot.Emulated(c31, a3, s1);
                }
                else
                {
                    c00 = ByteDot.Emulated(c00, b0, a0.AsSByte()); c01 = ByteDot.Emulated(c01, b1, a0.AsSByte());
                    c10 = ByteDot.Emulated(c10, b0, a1.AsSByte()); c11 = ByteDot.Emulated(c11, b1, a1.AsSByte());
                    c20 = ByteDot.Emulated(c20, b0, a2.AsSByte()); c21 = ByteDot.Emulated(c21, b1, a2.AsSByte());
                    c30 = ByteDot.Emulated(c30, b0, a3.AsSByte()); c31 = ByteDot.Emulated(c31, b1, a3.AsSByte());
                }
                ap = ref Unsafe.Add(ref ap, MR * 4);
                bp = ref Unsafe.Add(ref bp, NR * 4);
            }
            ref int t = ref MemoryMarshal.GetReference(tile);
            c00.StoreUnsafe(ref t, 0); c01.StoreUnsafe(ref t, 8);
            c10.StoreUnsafe(ref t, 16); c11.StoreUnsafe(ref t, 24);
            c20.StoreUnsafe(ref t, 32); c21.StoreUnsafe(ref t, 40);
            c30.StoreUnsafe(ref t, 48); c31.StoreUnsafe(ref t, 56);
        }
    }

    /// <summary>
    /// AVX2 tile without VNNI: bytes widened to int16 and multiplied pairwise with vpmaddwd, which never saturates
    /// for byte inputs (vpmaddubsw would). Each 4-column group accumulates two partial sums per column, added at the end.
    /// </summary>
    internal struct MaddTile : ITile
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Compute<TS>(ref byte ap, ref byte bp, int kq, Span<int> tile) where TS : struct, ISign
        {
            for (int r = 0; r < MR; r++)
            {
                var c0 = Vector256<int>.Zero; var c1 = Vector256<int>.Zero;
                var c2 = Vector256<int>.Zero; var c3 = Vector256<int>.Zero;
                ref byte aq = ref Unsafe.Add(ref ap, r * 4);
                ref byte bq = ref bp;
                for (int q = 0; q < kq; q++)
                {
                    var a4 = Vector128.CreateScalar(Unsafe.ReadUnaligned<int>(ref aq)).AsByte();
                    var aw = TS.AIsUnsigned ? Sse41.ConvertToVector128Int16(a4) : Sse41.ConvertToVector128Int16(a4.AsSByte());
                    var av = Avx2.BroadcastScalarToVector256(aw.AsInt64()).AsInt16();
                    var v0 = Vector128.LoadUnsafe(ref bq);
                    var v1 = Vector128.LoadUnsafe(ref bq, 16);
                    var v2 = Vector128.LoadUnsafe(ref bq, 32);
                    var v3 = Vector128.LoadUnsafe(ref bq, 48);
                    if (TS.AIsUnsigned)
                    {
                        c0 += Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(v0.AsSByte()), av);
                        c1 += Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(v1.AsSByte()), av);
                        c2 += Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(v2.AsSByte()), av);
                        c3 += Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(v3.AsSByte()), av);
                    }
                    else
                    {
                        c0 += Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(v0), av);
                        c1 += Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(v1), av);
                        c2 += Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(v2), av);
                        c3 += Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(v3), av);
                    }
                    aq = ref Unsafe.Add(ref aq, MR * 4);
                    bq = ref Unsafe.Add(ref bq, NR * 4);
                }
                // [c0p0 c0p1 c1p0 c1p1 | c2p0 c2p1 c3p0 c3p1] per group: hadd gives [c0 c1 c4 c5 | c2 c3 c6 c7]
                var lo = Avx2.Permute4x64(Avx2.HorizontalAdd(c0, c1).AsInt64(), 0b11_01_10_00).AsInt32();
                var hi = Avx2.Permute4x64(Avx2.HorizontalAdd(c2, c3).AsInt64(), 0b11_01_10_00).AsInt32();
                ref int t = ref MemoryMarshal.GetReference(tile);
                lo.StoreUnsafe(ref t, (nuint)(r * NR));
                hi.StoreUnsafe(ref t, (nuint)(r * NR + 8));
            }
        }
    }
}
