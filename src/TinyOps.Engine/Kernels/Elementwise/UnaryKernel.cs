using System.Numerics;
using System.Numerics.Tensors;
using TinyOps.Engine.Ir;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Kernels.Elementwise;

/// <summary>
/// Shape-preserving unary operators. Float32 everywhere; Relu (opset 14+), Neg, Abs and Erf also take integer
/// types, with wrap-around for the negation of the minimum value.
/// </summary>
internal sealed class UnaryKernel : Kernel
{
    public enum Op { Relu, LeakyRelu, Sigmoid, Tanh, HardSigmoid, HardSwish, Sqrt, Exp, Log, Neg, Abs, Reciprocal, Erf }

    private static readonly DataType[] FloatOnly = [DataType.Float32];
    private static readonly DataType[] Signed = [DataType.Float32, DataType.Int8, DataType.Int32, DataType.Int64];
    private static readonly DataType[] Numeric = [DataType.Float32, DataType.Int8, DataType.UInt8, DataType.Int32, DataType.Int64];

    private readonly Op _op;
    private readonly float _alpha;
    private readonly float _beta;

    public UnaryKernel(Node node, int opset, Op op) : base(node, opset)
    {
        _op = op;
        switch (op)
        {
            case Op.LeakyRelu:
                _alpha = node.GetFloat("alpha", 0.01f);
                break;
            case Op.HardSigmoid:
                _alpha = node.GetFloat("alpha", 0.2f);
                _beta = node.GetFloat("beta", 0.5f);
                break;
            case Op.HardSwish:
                _alpha = 1f / 6f;
                _beta = 0.5f;
                break;
        }
    }

    public override void Infer(InferContext ctx)
    {
        var allowed = _op switch
        {
            Op.Relu or Op.Neg => Signed,
            Op.Abs or Op.Erf => Numeric,
            _ => FloatOnly,
        };
        ctx.ExpectType(0, allowed);
        ctx.SetOutputLike(0, 0);
    }

    public override void Run(RunContext ctx)
    {
        var x = ctx.Input(0);
        var y = ctx.Output(0);
        switch (x.Type)
        {
            case DataType.Float32: RunFloat(x.ReadOnlySpan<float>(), y.Span<float>()); break;
            case DataType.Int8: RunInt(x.ReadOnlySpan<sbyte>(), y.Span<sbyte>()); break;
            case DataType.UInt8: RunInt(x.ReadOnlySpan<byte>(), y.Span<byte>()); break;
            case DataType.Int32: RunInt(x.ReadOnlySpan<int>(), y.Span<int>()); break;
            case DataType.Int64: RunInt(x.ReadOnlySpan<long>(), y.Span<long>()); break;
            default: throw Error($"unexpected type {x.Type.OnnxName()}");
        }
    }

    private void RunFloat(ReadOnlySpan<float> x, Span<float> y)
    {
        switch (_op)
        {
            case Op.Relu: TensorPrimitives.Max(x, 0f, y); break;
            case Op.LeakyRelu:
                {
                    float alpha = _alpha;
                    for (int i = 0; i < y.Length; i++)
                    {
                        float v = x[i];
                        y[i] = v < 0f ? v * alpha : v;
                    }
                    break;
                }
            case Op.Sigmoid: TensorPrimitives.Sigmoid(x, y); break;
            case Op.Tanh: TensorPrimitives.Tanh(x, y); break;
            case Op.HardSigmoid:
                TensorPrimitives.Multiply(x, _alpha, y);
                TensorPrimitives.Add(y, _beta, y);
                TensorPrimitives.Clamp<float>(y, 0f, 1f, y);
                break;
            case Op.HardSwish:
                {
                    float alpha = _alpha, beta = _beta;
                    for (int i = 0; i < y.Length; i++)
                    {
                        float v = x[i];
                        float h = v * alpha + beta;
                        h = h < 0f ? 0f : h > 1f ? 1f : h;
                        y[i] = v * h;
                    }
                    break;
                }
            case Op.Sqrt: TensorPrimitives.Sqrt(x, y); break;
            case Op.Exp: TensorPrimitives.Exp(x, y); break;
            case Op.Log: TensorPrimitives.Log(x, y); break;
            case Op.Neg: TensorPrimitives.Negate(x, y); break;
            case Op.Abs: TensorPrimitives.Abs(x, y); break;
            case Op.Reciprocal: TensorPrimitives.Reciprocal(x, y); break;
            case Op.Erf:
                for (int i = 0; i < y.Length; i++) y[i] = (float)ErfMath.Erf(x[i]);
                break;
            default: throw Error($"unexpected operation {_op}");
        }
    }

    private void RunInt<T>(ReadOnlySpan<T> x, Span<T> y) where T : unmanaged, IBinaryInteger<T>
    {
        switch (_op)
        {
            case Op.Relu: TensorPrimitives.Max(x, T.Zero, y); break;
            case Op.Neg:
                for (int i = 0; i < y.Length; i++) y[i] = T.Zero - x[i];
                break;
            case Op.Abs:
                for (int i = 0; i < y.Length; i++) y[i] = T.IsNegative(x[i]) ? T.Zero - x[i] : x[i];
                break;
            case Op.Erf:
                for (int i = 0; i < y.Length; i++) y[i] = T.CreateTruncating((long)ErfMath.Erf(double.CreateTruncating(x[i])));
                break;
            default: throw Error($"operation {_op} does not take integer input");
        }
    }
}
