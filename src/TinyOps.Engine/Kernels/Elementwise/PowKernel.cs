using TinyOps.Engine.Ir;
using TinyOps.Engine.Kernels.Common;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Kernels.Elementwise;

/// <summary>
/// Pow: base float32/int32/int64, exponent of any numeric type (opset 12+), output of the base's type.
/// Float bases with float exponents use fp32 math; integer powers are exact with wrap-around; mixed types are
/// computed in double and converted (truncating) like numpy's promotion.
/// </summary>
internal sealed class PowKernel : Kernel
{
    private readonly LegacyBroadcast _legacy;

    public PowKernel(Node node, int opset) : base(node, opset)
    {
        _legacy = new LegacyBroadcast(node, opset, 6);
    }

    public override void Infer(InferContext ctx)
    {
        var t = ctx.ExpectType(0, DataType.Float32, DataType.Int32, DataType.Int64);
        var e = ctx.ExpectType(1, DataType.Float32, DataType.Int8, DataType.UInt8, DataType.Int32, DataType.Int64);
        if (Opset < 12 && e != t) throw ctx.Error($"base and exponent types differ ({t.OnnxName()} and {e.OnnxName()}), which opset {Opset} does not allow");
        ctx.SetOutput(0, t, _legacy.OutputShape(ctx));
    }

    public override void Run(RunContext ctx)
    {
        var a = ctx.Input(0);
        var b = ctx.Input(1);
        var y = ctx.Output(0);
        Span<int> buf = stackalloc int[Broadcast.MaxRank];
        var bShape = _legacy.ShapeB(a.Shape, b.Shape, buf);
        if (a.Type == DataType.Float32 && b.Type == DataType.Float32)
        {
            BroadcastDriver.Run<float, float, ArithmeticOps.PowFloat>(a.ReadOnlySpan<float>(), a.Shape, b.ReadOnlySpan<float>(), bShape, y.Span<float>(), y.Shape);
            return;
        }
        if (a.Type != DataType.Float32 && b.Type != DataType.Float32)
        {
            var la = ctx.Scratch<long>(a.Length, 0);
            var lb = ctx.Scratch<long>(b.Length, 1);
            var ly = ctx.Scratch<long>(y.Length, 2);
            TypeConvert.To(a, la);
            TypeConvert.To(b, lb);
            BroadcastDriver.Run<long, long, ArithmeticOps.PowLong>(la, a.Shape, lb, bShape, ly, y.Shape);
            TypeConvert.From<long>(ly, y);
            return;
        }
        var da = ctx.Scratch<double>(a.Length, 0);
        var db = ctx.Scratch<double>(b.Length, 1);
        var dy = ctx.Scratch<double>(y.Length, 2);
        TypeConvert.To(a, da);
        TypeConvert.To(b, db);
        BroadcastDriver.Run<double, double, ArithmeticOps.PowDouble>(da, a.Shape, db, bShape, dy, y.Shape);
        if (y.Type == DataType.Float32)
        {
            var fy = y.Span<float>();
            for (int i = 0; i < fy.Length; i++) fy[i] = (float)dy[i];
        }
        else
        {
            var ly = ctx.Scratch<long>(y.Length, 3);
            for (int i = 0; i < ly.Length; i++) ly[i] = (long)dy[i];
            TypeConvert.From<long>(ly, y);
        }
    }
}
