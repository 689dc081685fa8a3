using TinyOps.Engine.Ir;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Profiling;

/// <summary>Multiply-accumulate counts of the compute-heavy operators, from their shapes.</summary>
public static class CostModel
{
    public static long Macs(string op, Node node, Func<int, int[]?> inputShape, Func<int, int[]?> outputShape)
    {
        var y = outputShape(0);
        if (y is null) return 0;
        switch (op)
        {
            case "Conv" or "ConvInteger" or "QLinearConv":
            {
                int wIndex = op == "QLinearConv" ? 3 : 1;
                var w = inputShape(wIndex);
                if (w is null || w.Length < 2) return 0;
                long perOutput = ShapeUtil.SizeFrom(w, 1); // Cin/group * kernel
                // A QLinearConv with its 2 x 2 MaxPool fused in (QuantizedPoolFusion) has the pool's output shape:
                // it still computes the four convolution outputs under every pooled one.
                long pooled = op == "QLinearConv" && node.GetInt(Kernels.Quantized.IntConvKernel.PoolAttribute, 0) != 0 ? 4 : 1;
                return ShapeUtil.Size(y) * perOutput * pooled;
            }
            case "ConvTranspose":
            {
                var x = inputShape(0);
                var w = inputShape(1);
                if (x is null || w is null || w.Length < 2) return 0;
                return (long)ShapeUtil.Size(x) * ShapeUtil.SizeFrom(w, 1);
            }
            case "Gemm" or "MatMul" or "MatMulInteger" or "QLinearMatMul":
            {
                var a = inputShape(0);
                if (a is null || a.Length == 0) return 0;
                long k = op == "Gemm" && node.GetInt("transA", 0) != 0 ? a[0] : a[^1];
                return ShapeUtil.Size(y) * k;
            }
            case "LSTM" or "GRU":
            {
                var x = inputShape(0);
                var w = inputShape(1);
                var r = inputShape(2);
                if (x is null || w is null || r is null || x.Length != 3) return 0;
                long seq = x[0], batch = x[1];
                return seq * batch * ((long)ShapeUtil.Size(w) + ShapeUtil.Size(r));
            }
            default:
                return 0;
        }
    }
}
