using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TinyOps.Engine.Ir;
using TinyOps.Engine.Kernels.Quantized;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Kernels.Pooling;

/// <summary>
/// GlobalAveragePool and GlobalMaxPool: pools each (N, C) plane over all spatial dimensions to 1. A GlobalAveragePool
/// with <see cref="DequantizedAttribute"/> is a per-tensor DequantizeLinear fused into it (inputs x, x_scale,
/// x_zero_point; built by <c>Runtime.Fusion.DequantizeChainFusion</c>): each plane's values are made as
/// <see cref="DequantizeLinearKernel"/> would, in registers for planes under 1,024 (<see cref="SmallSumDequantized"/>),
/// else into a small buffer (<see cref="DequantizeChainKernel.Dequantize"/>), and summed as the float input is, so the
/// result is bit for bit that of the two nodes without the float tensor between them.
/// </summary>
internal sealed class GlobalPoolKernel : Kernel
{
    /// <summary>Internal node attribute: input 0 is quantized, inputs 1 and 2 its scale and zero point (never written to files).</summary>
    public const string DequantizedAttribute = "__tinyops_dequantized_input";

    private readonly bool _max;
    private readonly bool _dequantize;

    public GlobalPoolKernel(Node node, int opset, bool max) : base(node, opset)
    {
        _max = max;
        _dequantize = !max && node.HasAttribute(DequantizedAttribute);
        if (_dequantize && node.Inputs.Count is < 2 or > 3) throw Error("a GlobalAveragePool with its DequantizeLinear fused takes 2 or 3 inputs");
    }

    public override void Infer(InferContext ctx)
    {
        if (_dequantize)
        {
            var xType = ctx.ExpectType(0, DataType.UInt8, DataType.Int8, DataType.Int32);
            ctx.ExpectType(1, DataType.Float32);
            if (ShapeUtil.Size(ctx.InputShape(1)) != 1) throw ctx.Error("x_scale must have one element");
            if (ctx.HasInput(2) && (ctx.InputType(2) != xType || ShapeUtil.Size(ctx.InputShape(2)) != 1))
                throw ctx.Error("x_zero_point must be one element of x's type");
        }
        else ctx.ExpectType(0, DataType.Float32);
        var x = ctx.InputShape(0);
        if (x.Length < 2) throw ctx.Error($"input has rank {x.Length}; it must be (N, C, spatial...) with rank at least 2");
        var y = new int[x.Length];
        y[0] = x[0];
        y[1] = x[1];
        for (int i = 2; i < y.Length; i++) y[i] = 1;
        if (_max && ShapeUtil.SizeFrom(x, 2) == 0 && x[0] * x[1] > 0)
            throw ctx.Error($"cannot take the maximum over empty spatial dimensions {ShapeUtil.Format(x)}");
        ctx.SetOutput(0, DataType.Float32, y);
    }

    public override void Run(RunContext ctx)
    {
        var xt = ctx.Input(0);
        if (_dequantize)
        {
            RunDequantized(ctx, xt);
            return;
        }
        var x = xt.ReadOnlySpan<float>();
        var y = ctx.Output(0).Span<float>();
        int plane = ShapeUtil.SizeFrom(xt.Shape, 2);
        if (!_max && plane > 0 && plane < 1024)
        {
            // Small planes (the usual 7x7 or 13x13 before a classifier): one vector loop per plane beats a library
            // call per plane.
            float inv = 1f / plane;
            for (int c = 0; c < y.Length; c++) y[c] = SmallSum(x.Slice(c * plane, plane)) * inv;
            return;
        }
        for (int c = 0; c < y.Length; c++)
        {
            var p = x.Slice(c * plane, plane);
            y[c] = _max ? TensorPrimitives.Max(p) : plane == 0 ? float.NaN : TensorPrimitives.Sum(p) / plane;
        }
    }

    /// <summary>The average of each dequantized plane, summed exactly as <see cref="Run"/> sums a float plane.</summary>
    private static void RunDequantized(RunContext ctx, TinyOps.Engine.Tensors.Tensor xt)
    {
        var y = ctx.Output(0).Span<float>();
        int plane = ShapeUtil.SizeFrom(xt.Shape, 2);
        float scale = ctx.Input(1).ReadOnlySpan<float>()[0];
        var zp = ctx.OptionalInput(2);
        float inv = 1f / plane;
        bool small = plane > 0 && plane < 1024;
        if (small && xt.Type != DataType.Int32 && Avx2.IsSupported && !IntRequantize.ForceScalar)
        {
            // one pass over each plane's bytes, the float values made in registers, summed in SmallSum's order
            bool signed = xt.Type == DataType.Int8;
            float z = zp is null ? 0f : QuantMath.ReadInt(zp, 0);
            var bytes = xt.Buffer.AsSpan(xt.ByteOffset, xt.Length);
            for (int c = 0; c < y.Length; c++) y[c] = SmallSumDequantized(bytes.Slice(c * plane, plane), signed, z, scale) * inv;
            return;
        }
        var f = ctx.Scratch<float>(plane, 0);
        for (int c = 0; c < y.Length; c++)
        {
            DequantizeChainKernel.Dequantize(xt, c * plane, plane, scale, zp, f);
            y[c] = small ? SmallSum(f) * inv : plane == 0 ? float.NaN : TensorPrimitives.Sum(f) / plane;
        }
    }

    /// <summary>
    /// <see cref="SmallSum"/> of the plane's dequantized values, (x − zero_point)·scale as DequantizeLinear makes them
    /// (float subtraction, then multiplication), added in the same order: eight lanes, <see cref="Vector256.Sum"/>,
    /// then the rest one by one. AVX2 only (the caller checks).
    /// </summary>
    private static float SmallSumDequantized(ReadOnlySpan<byte> p, bool signed, float zp, float scale)
    {
        ref byte r = ref MemoryMarshal.GetReference(p);
        int i = 0;
        float s = 0;
        if (Vector256.IsHardwareAccelerated && p.Length >= 8)
        {
            var acc = Vector256<float>.Zero;
            var z = Vector256.Create(zp);
            var sc = Vector256.Create(scale);
            for (; i + 8 <= p.Length; i += 8)
            {
                var b = Vector128.CreateScalarUnsafe(Unsafe.ReadUnaligned<long>(ref Unsafe.Add(ref r, i))).AsByte();
                var v = signed ? Avx2.ConvertToVector256Int32(b.AsSByte()) : Avx2.ConvertToVector256Int32(b);
                acc += (Avx.ConvertToVector256Single(v) - z) * sc;
            }
            s = Vector256.Sum(acc);
        }
        for (; i < p.Length; i++) s += ((signed ? (sbyte)p[i] : p[i]) - zp) * scale;
        return s;
    }

    private static float SmallSum(ReadOnlySpan<float> p)
    {
        ref float r = ref MemoryMarshal.GetReference(p);
        int i = 0;
        float s = 0;
        if (Vector256.IsHardwareAccelerated && p.Length >= 8)
        {
            var acc = Vector256<float>.Zero;
            for (; i + 8 <= p.Length; i += 8) acc += Vector256.LoadUnsafe(ref r, (nuint)i);
            s = Vector256.Sum(acc);
        }
        for (; i < p.Length; i++) s += p[i];
        return s;
    }
}
