using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using TinyOps.Engine.Ir;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Kernels.Pooling;

/// <summary>GlobalAveragePool and GlobalMaxPool: pools each (N, C) plane over all spatial dimensions to 1.</summary>
internal sealed class GlobalPoolKernel : Kernel
{
    private readonly bool _max;

    public GlobalPoolKernel(Node node, int opset, bool max) : base(node, opset)
    {
        _max = max;
    }

    public override void Infer(InferContext ctx)
    {
        ctx.ExpectType(0, DataType.Float32);
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
