using System.Numerics;
using TinyOps.Engine.Ir;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Kernels.Pooling;

/// <summary>MaxPool (opsets 1-22): N-d max pooling with pads, strides, dilations, ceil_mode, auto_pad and optional Indices.</summary>
internal sealed class MaxPoolKernel : Kernel
{
    private readonly PoolGeometry _g;
    private readonly bool _columnMajor;

    /// <summary>The uint8/int8 2-D pool with its permutation kept across runs.</summary>
    private readonly BytePool2d _bytePool = new();

    /// <summary>Tests set this to run the plain per-window loop instead of <see cref="MaxPool2d"/>.</summary>
    internal static bool UseReference;

    public MaxPoolKernel(Node node, int opset) : base(node, opset)
    {
        _g = new PoolGeometry(node, allowCeil: opset >= 10, allowDilations: opset >= 10);
        long order = node.GetInt("storage_order", 0);
        if (order is not (0 or 1)) throw Error($"'storage_order' must be 0 or 1, not {order}");
        _columnMajor = order == 1;
    }

    public override void Infer(InferContext ctx)
    {
        var t = Opset >= 12
            ? ctx.ExpectType(0, DataType.Float32, DataType.Int8, DataType.UInt8)
            : ctx.ExpectType(0, DataType.Float32);
        var x = ctx.InputShape(0);
        string? err = _g.Compute(x);
        if (err is not null) throw ctx.Error(err);
        var y = _g.OutputShape(x);
        ctx.SetOutput(0, t, y);
        if (ctx.OutputCount > 1)
        {
            if (Opset < 8 && ctx.HasOutput(1)) throw ctx.Error("the Indices output needs opset 8 or later");
            ctx.SetOutput(1, DataType.Int64, (int[])y.Clone());
        }
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    public override void Run(RunContext ctx)
    {
        var x = ctx.Input(0);
        _g.Compute(x.Shape);
        var y = ctx.Output(0);
        Span<long> idx = ctx.OutputCount > 1 ? ctx.Output(1).Span<long>() : default;
        int channels = x.Shape[0] * x.Shape[1];
        switch (x.Type)
        {
            case DataType.Float32 when idx.IsEmpty && _g.K[0] == 1 && _g.In[0] == 1 && _g.Out[0] == 1 && _g.Out[2] <= 4096:
                Pool2dFloat(x.ReadOnlySpan<float>(), y.Span<float>(), channels, ctx);
                break;
            case DataType.Float32: Pool(x.ReadOnlySpan<float>(), y.Span<float>(), idx, channels, float.NegativeInfinity); break;
            case DataType.Int8 when idx.IsEmpty && Is2d:
                Pool2dBytes(x.ReadOnlySpan<sbyte>(), y.Span<sbyte>(), channels, ctx);
                break;
            case DataType.UInt8 when idx.IsEmpty && Is2d:
                Pool2dBytes(x.ReadOnlySpan<byte>(), y.Span<byte>(), channels, ctx);
                break;
            case DataType.Int8: Pool(x.ReadOnlySpan<sbyte>(), y.Span<sbyte>(), idx, channels, sbyte.MinValue); break;
            case DataType.UInt8: Pool(x.ReadOnlySpan<byte>(), y.Span<byte>(), idx, channels, byte.MinValue); break;
            default: throw Error($"unsupported type {x.Type.OnnxName()}");
        }
    }

    /// <summary>At most two pooled dimensions (the normalized leading one is a unit).</summary>
    private bool Is2d => _g.K[0] == 1 && _g.In[0] == 1 && _g.Out[0] == 1 && MaxPool2dBytes.Forced != BytePoolPath.Reference;

    /// <summary>The uint8/int8 1-D/2-D case without Indices: <see cref="MaxPool2dBytes"/>, same results as <see cref="Pool{T}"/>.</summary>
    private void Pool2dBytes<T>(ReadOnlySpan<T> x, Span<T> y, int channels, RunContext ctx)
        where T : unmanaged, INumber<T>, IMinMaxValue<T>
    {
        var g = _g;
        _bytePool.Run(ctx, 7, x, y, channels, g.In[1], g.In[2], g.Out[1], g.Out[2], g.K[1], g.K[2], g.S[1], g.S[2], g.D[1], g.D[2], g.PadBegin[1], g.PadBegin[2]);
    }

    /// <summary>The float 1-D/2-D case without Indices: same results as <see cref="Pool{T}"/>, with the tap ranges hoisted.</summary>
    private unsafe void Pool2dFloat(ReadOnlySpan<float> x, Span<float> y, int channels, RunContext ctx)
    {
        var g = _g;
        int in1 = g.In[1], in2 = g.In[2], out1 = g.Out[1], out2 = g.Out[2];
        int s1 = g.S[1], s2 = g.S[2], k1 = g.K[1], k2 = g.K[2], d1 = g.D[1], d2 = g.D[2], p1 = g.PadBegin[1], p2 = g.PadBegin[2];
        int inSize = in1 * in2, outSize = out1 * out2;
        if (k1 == 2 && k2 == 2 && s1 == 2 && s2 == 2 && d1 == 1 && d2 == 1 && p1 == 0 && p2 == 0 && 2 * out1 <= in1 && 2 * out2 <= in2)
        {
            Pool2x2(x, y, channels, in1, in2, out1, out2);
            return;
        }
        if (!UseReference)
        {
            var scratch = ctx.Scratch<float>(MaxPool2d.ScratchFloats(out1, out2, k2, s2, d2), 7);
            fixed (float* px = x, py = y, ps = scratch)
                MaxPool2d.Run(px, py, channels, in1, in2, out1, out2, k1, k2, s1, s2, d1, d2, p1, p2, ps);
            return;
        }
        int* lo2s = stackalloc int[out2];
        int* hi2s = stackalloc int[out2];
        for (int o2 = 0; o2 < out2; o2++)
        {
            PoolGeometry.TapRange(o2 * s2 - p2, k2, d2, in2, out int lo, out int hi);
            lo2s[o2] = lo;
            hi2s[o2] = hi;
        }
        fixed (float* px = x, py = y)
        {
            for (int c = 0; c < channels; c++)
            {
                float* xc = px + (long)c * inSize;
                float* yo = py + (long)c * outSize;
                for (int o1 = 0; o1 < out1; o1++)
                {
                    int st1 = o1 * s1 - p1;
                    PoolGeometry.TapRange(st1, k1, d1, in1, out int lo1, out int hi1);
                    for (int o2 = 0; o2 < out2; o2++, yo++)
                    {
                        int st2 = o2 * s2 - p2, lo2 = lo2s[o2], hi2 = hi2s[o2];
                        float best = float.NegativeInfinity;
                        bool first = true;
                        for (int a = lo1; a < hi1; a++)
                        {
                            float* row = xc + (long)(st1 + a * d1) * in2 + st2;
                            for (int b = lo2; b < hi2; b++)
                            {
                                float v = row[b * d2];
                                if (v > best || first) { best = v; first = false; }
                            }
                        }
                        *yo = best;
                    }
                }
            }
        }
    }

    /// <summary>2x2 windows, stride 2, no padding, every window inside the input (the common CNN case).</summary>
    private static unsafe void Pool2x2(ReadOnlySpan<float> x, Span<float> y, int channels, int in1, int in2, int out1, int out2)
    {
        fixed (float* px = x, py = y)
        {
            float* yo = py;
            for (int c = 0; c < channels; c++)
            {
                float* xc = px + (long)c * in1 * in2;
                for (int o1 = 0; o1 < out1; o1++)
                {
                    float* r0 = xc + (long)2 * o1 * in2, r1 = r0 + in2;
                    int o2 = 0;
                    if (System.Runtime.Intrinsics.X86.Sse.IsSupported)
                    {
                        for (; o2 + 4 <= out2; o2 += 4)
                        {
                            var a = System.Runtime.Intrinsics.X86.Sse.Max(System.Runtime.Intrinsics.Vector128.Load(r0 + 2 * o2), System.Runtime.Intrinsics.Vector128.Load(r1 + 2 * o2));
                            var b = System.Runtime.Intrinsics.X86.Sse.Max(System.Runtime.Intrinsics.Vector128.Load(r0 + 2 * o2 + 4), System.Runtime.Intrinsics.Vector128.Load(r1 + 2 * o2 + 4));
                            var even = System.Runtime.Intrinsics.X86.Sse.Shuffle(a, b, 0b10_00_10_00);
                            var odd = System.Runtime.Intrinsics.X86.Sse.Shuffle(a, b, 0b11_01_11_01);
                            System.Runtime.Intrinsics.Vector128.Store(System.Runtime.Intrinsics.X86.Sse.Max(even, odd), yo + o2);
                        }
                    }
                    for (; o2 < out2; o2++)
                    {
                        float best = r0[2 * o2], v = r0[2 * o2 + 1];
                        if (v > best) best = v;
                        v = r1[2 * o2];
                        if (v > best) best = v;
                        v = r1[2 * o2 + 1];
                        if (v > best) best = v;
                        yo[o2] = best;
                    }
                    yo += out2;
                }
            }
        }
    }

    private void Pool<T>(ReadOnlySpan<T> x, Span<T> y, Span<long> indices, int channels, T lowest) where T : unmanaged, INumber<T>
    {
        var g = _g;
        int in0 = g.In[0], in1 = g.In[1], in2 = g.In[2];
        int out0 = g.Out[0], out1 = g.Out[1], out2 = g.Out[2];
        int inSize = g.InSize, outSize = g.OutSize;
        bool wantIdx = !indices.IsEmpty;
        for (int c = 0; c < channels; c++)
        {
            var xc = x.Slice(c * inSize, inSize);
            int yo = c * outSize;
            for (int o0 = 0; o0 < out0; o0++)
            {
                int s0 = o0 * g.S[0] - g.PadBegin[0];
                PoolGeometry.TapRange(s0, g.K[0], g.D[0], in0, out int lo0, out int hi0);
                for (int o1 = 0; o1 < out1; o1++)
                {
                    int s1 = o1 * g.S[1] - g.PadBegin[1];
                    PoolGeometry.TapRange(s1, g.K[1], g.D[1], in1, out int lo1, out int hi1);
                    for (int o2 = 0; o2 < out2; o2++, yo++)
                    {
                        int s2 = o2 * g.S[2] - g.PadBegin[2];
                        PoolGeometry.TapRange(s2, g.K[2], g.D[2], in2, out int lo2, out int hi2);
                        T best = lowest;
                        int bestAt = -1;
                        for (int k0 = lo0; k0 < hi0; k0++)
                        {
                            int p0 = s0 + k0 * g.D[0];
                            for (int k1 = lo1; k1 < hi1; k1++)
                            {
                                int row = (p0 * in1 + s1 + k1 * g.D[1]) * in2 + s2;
                                for (int k2 = lo2; k2 < hi2; k2++)
                                {
                                    int at = row + k2 * g.D[2];
                                    T v = xc[at];
                                    if (v > best || bestAt < 0) { best = v; bestAt = at; }
                                }
                            }
                        }
                        y[yo] = best;
                        if (wantIdx) indices[yo] = bestAt < 0 ? -1 : (long)c * inSize + Index(bestAt, in0, in1, in2);
                    }
                }
            }
        }
    }

    /// <summary>The Indices value of a within-channel row-major offset, honoring storage_order.</summary>
    private long Index(int at, int in0, int in1, int in2)
    {
        if (!_columnMajor) return at;
        int p2 = at % in2, rest = at / in2;
        int p1 = rest % in1, p0 = rest / in1;
        // column-major over the spatial dimensions: the first spatial dimension varies fastest
        return p0 + (long)p1 * in0 + (long)p2 * in0 * in1;
    }
}
