using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace TinyOps.Engine.Kernels.Quantized;

/// <summary>
/// The B operand of a 2-D integer convolution (stride 1 or 2, dilation 1) without an im2col matrix.
/// <para>
/// Each input channel is copied once into s² stride-phase planes of the zero-padded input (s = stride; plane (py, px)
/// holds padded rows s·i + py and columns s·j + px; padding holds the input zero point, which contributes exactly
/// nothing once the zero point is subtracted). Every plane row is <see cref="Width"/> = OW + (kw − 1)/s wide, so for
/// an output pixel numbered n' = oy·Width + ox the tap (c, ky, kx) reads plane (ky mod s, kx mod s) of channel c at
/// <c>(ky / s)·Width + kx / s + n'</c>: each row of the virtual im2col matrix is one contiguous run starting at a
/// per-tap offset (<see cref="RowOffsets"/>). The GEMM then computes OH·Width columns, of which the last
/// (kw − 1)/s of each output row are discarded (<see cref="Compact"/>).
/// </para>
/// </summary>
internal static class IntPhasePlanes
{
    /// <summary>True for the geometries this layout serves: 2-D, dilation 1, stride 1 or 2 in both axes, not 1×1 stride 1.</summary>
    public static bool Supports(ConvGeometry g) =>
        g.SpatialRank == 2 && !g.IsPointwise && g.Dilations[0] == 1 && g.Dilations[1] == 1
        && g.Strides[0] == g.Strides[1] && g.Strides[0] is 1 or 2;

    public static int Width(ConvGeometry g) => g.OutDims[1] + (g.KDims[1] - 1) / g.Strides[0];
    private static int Height(ConvGeometry g) => g.OutDims[0] + (g.KDims[0] - 1) / g.Strides[0];

    /// <summary>Bytes of one phase plane, with a row of slack so the last tap's run (and 8-byte loads) stay inside.</summary>
    private static int PlaneBytes(ConvGeometry g) => (Height(g) + 1) * Width(g) + 16;

    /// <summary>Columns of the GEMM: OH · <see cref="Width"/>.</summary>
    public static int Columns(ConvGeometry g) => g.OutDims[0] * Width(g);

    /// <summary>Scratch bytes for the planes of <paramref name="channels"/> channels.</summary>
    public static int PlanesBytes(ConvGeometry g, int channels) => channels * g.Strides[0] * g.Strides[0] * PlaneBytes(g);

    /// <summary>Offset of each virtual im2col row (k = (c·kh + ky)·kw + kx, the weights' order) in the planes.</summary>
    public static void RowOffsets(ConvGeometry g, int channels, Span<int> offsets)
    {
        int s = g.Strides[0], kh = g.KDims[0], kw = g.KDims[1], width = Width(g), plane = PlaneBytes(g);
        int k = 0;
        for (int c = 0; c < channels; c++)
            for (int ky = 0; ky < kh; ky++)
                for (int kx = 0; kx < kw; kx++)
                    offsets[k++] = (c * s * s + (ky % s) * s + kx % s) * plane + (ky / s) * width + kx / s;
    }

    /// <summary>Writes the phase planes of <paramref name="channels"/> channels of one image (NCHW bytes) into <paramref name="planes"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Build(ConvGeometry g, ReadOnlySpan<byte> x, int channels, byte pad, Span<byte> planes)
    {
        int s = g.Strides[0], h = g.InDims[0], w = g.InDims[1];
        int width = Width(g), height = Height(g), plane = PlaneBytes(g);
        int pt = g.PadBegin[0], pl = g.PadBegin[1];
        for (int c = 0; c < channels; c++)
        {
            var src = x.Slice(c * h * w, h * w);
            for (int py = 0; py < s; py++)
                for (int px = 0; px < s; px++)
                {
                    var dst = planes.Slice((c * s * s + py * s + px) * plane, plane);
                    dst.Fill(pad);
                    for (int i = 0; i < height; i++)
                    {
                        int r = s * i + py - pt;
                        if ((uint)r < (uint)h) Row(src.Slice(r * w, w), s, px - pl, dst.Slice(i * width, width));
                    }
                }
        }
    }

    /// <summary>dst[j] = src[s·j + first] where that index is inside the row (the rest of dst already holds the pad value).</summary>
    private static void Row(ReadOnlySpan<byte> src, int s, int first, Span<byte> dst)
    {
        int w = src.Length, n = dst.Length;
        // j range whose source index lies in [0, w)
        int j0 = first >= 0 ? 0 : (-first + s - 1) / s;
        int j1 = Math.Min(n, (w - first + s - 1) / s);
        if (j1 <= j0) return;
        ref byte s0 = ref MemoryMarshal.GetReference(src);
        ref byte d0 = ref MemoryMarshal.GetReference(dst);
        if (s == 1)
        {
            Copy(ref Unsafe.Add(ref s0, j0 + first), ref Unsafe.Add(ref d0, j0), j1 - j0);
            return;
        }
        int j = j0;
        if (Ssse3.IsSupported)
        {
            // 16 source bytes give 8 outputs: shuffle the even bytes to the low half
            var even = Vector128.Create((byte)0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
            for (; j + 8 <= j1 && 2 * j + first + 16 <= w; j += 8)
            {
                var v = Ssse3.Shuffle(Vector128.LoadUnsafe(ref s0, (nuint)(2 * j + first)), even);
                Unsafe.WriteUnaligned(ref Unsafe.Add(ref d0, j), v.AsUInt64().ToScalar());
            }
        }
        for (; j < j1; j++) Unsafe.Add(ref d0, j) = Unsafe.Add(ref s0, 2 * j + first);
    }

    /// <summary>Copies the OW valid columns of each GEMM output row (OH·<see cref="Width"/> columns per channel) into y.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Compact(ConvGeometry g, ReadOnlySpan<byte> wide, int channels, Span<byte> y)
    {
        int oh = g.OutDims[0], ow = g.OutDims[1], width = Width(g), rows = channels * oh;
        if (wide.Length < rows * width || y.Length < rows * ow) throw new ArgumentException("buffers too small for the compaction");
        ref byte s0 = ref MemoryMarshal.GetReference(wide);
        ref byte d0 = ref MemoryMarshal.GetReference(y);
        for (int r = 0; r < rows; r++) Copy(ref Unsafe.Add(ref s0, r * width), ref Unsafe.Add(ref d0, r * ow), ow);
    }

    /// <summary>Copies n bytes; short rows take overlapping 16- or 8-byte moves instead of a call to memmove.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Copy(ref byte src, ref byte dst, int n)
    {
        if (n >= 16)
        {
            int i = 0;
            for (; i + 16 <= n; i += 16) Vector128.LoadUnsafe(ref src, (nuint)i).StoreUnsafe(ref dst, (nuint)i);
            if (i < n) Vector128.LoadUnsafe(ref src, (nuint)(n - 16)).StoreUnsafe(ref dst, (nuint)(n - 16));
        }
        else if (n >= 8)
        {
            Unsafe.WriteUnaligned(ref dst, Unsafe.ReadUnaligned<ulong>(ref src));
            Unsafe.WriteUnaligned(ref Unsafe.Add(ref dst, n - 8), Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref src, n - 8)));
        }
        else for (int i = 0; i < n; i++) Unsafe.Add(ref dst, i) = Unsafe.Add(ref src, i);
    }
}
