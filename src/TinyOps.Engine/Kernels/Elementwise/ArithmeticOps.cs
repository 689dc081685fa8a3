using System.Numerics;
using System.Numerics.Tensors;

namespace TinyOps.Engine.Kernels.Elementwise;

/// <summary>The span operations the element-wise kernels broadcast with <see cref="BroadcastDriver"/>.</summary>
internal static class ArithmeticOps
{
    public struct Add<T> : ISpanBinaryOp<T, T> where T : INumber<T>
    {
        public static void VV(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y) => TensorPrimitives.Add(a, b, y);
        public static void VS(ReadOnlySpan<T> a, T b, Span<T> y) => TensorPrimitives.Add(a, b, y);
        public static void SV(T a, ReadOnlySpan<T> b, Span<T> y) => TensorPrimitives.Add(b, a, y);
    }

    public struct Sub<T> : ISpanBinaryOp<T, T> where T : INumber<T>
    {
        public static void VV(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y) => TensorPrimitives.Subtract(a, b, y);
        public static void VS(ReadOnlySpan<T> a, T b, Span<T> y) => TensorPrimitives.Subtract(a, b, y);
        public static void SV(T a, ReadOnlySpan<T> b, Span<T> y) => TensorPrimitives.Subtract(a, b, y);
    }

    public struct Mul<T> : ISpanBinaryOp<T, T> where T : INumber<T>
    {
        public static void VV(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y) => TensorPrimitives.Multiply(a, b, y);
        public static void VS(ReadOnlySpan<T> a, T b, Span<T> y) => TensorPrimitives.Multiply(a, b, y);
        public static void SV(T a, ReadOnlySpan<T> b, Span<T> y) => TensorPrimitives.Multiply(b, a, y);
    }

    public struct DivFloat : ISpanBinaryOp<float, float>
    {
        public static void VV(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y) => TensorPrimitives.Divide(a, b, y);
        public static void VS(ReadOnlySpan<float> a, float b, Span<float> y) => TensorPrimitives.Divide(a, b, y);
        public static void SV(float a, ReadOnlySpan<float> b, Span<float> y) => TensorPrimitives.Divide(a, b, y);
    }

    /// <summary>Integer division truncating toward zero; x/0 gives 0 and MIN/-1 wraps to MIN instead of trapping.</summary>
    public struct DivInt<T> : ISpanBinaryOp<T, T> where T : IBinaryInteger<T>, IMinMaxValue<T>
    {
        private static T Div(T a, T b)
        {
            if (b == T.Zero) return T.Zero;
            if (a == T.MinValue && T.IsNegative(b) && b + T.One == T.Zero) return a;
            return a / b;
        }

        public static void VV(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y)
        {
            for (int i = 0; i < y.Length; i++) y[i] = Div(a[i], b[i]);
        }

        public static void VS(ReadOnlySpan<T> a, T b, Span<T> y)
        {
            for (int i = 0; i < y.Length; i++) y[i] = Div(a[i], b);
        }

        public static void SV(T a, ReadOnlySpan<T> b, Span<T> y)
        {
            for (int i = 0; i < y.Length; i++) y[i] = Div(a, b[i]);
        }
    }

    public struct Max<T> : ISpanBinaryOp<T, T> where T : INumber<T>
    {
        public static void VV(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y) => TensorPrimitives.Max(a, b, y);
        public static void VS(ReadOnlySpan<T> a, T b, Span<T> y) => TensorPrimitives.Max(a, b, y);
        public static void SV(T a, ReadOnlySpan<T> b, Span<T> y) => TensorPrimitives.Max(b, a, y);
    }

    public struct Min<T> : ISpanBinaryOp<T, T> where T : INumber<T>
    {
        public static void VV(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y) => TensorPrimitives.Min(a, b, y);
        public static void VS(ReadOnlySpan<T> a, T b, Span<T> y) => TensorPrimitives.Min(a, b, y);
        public static void SV(T a, ReadOnlySpan<T> b, Span<T> y) => TensorPrimitives.Min(b, a, y);
    }

    public struct Equal<T> : ISpanBinaryOp<T, bool> where T : IEqualityOperators<T, T, bool>
    {
        public static void VV(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<bool> y)
        {
            for (int i = 0; i < y.Length; i++) y[i] = a[i] == b[i];
        }

        public static void VS(ReadOnlySpan<T> a, T b, Span<bool> y)
        {
            for (int i = 0; i < y.Length; i++) y[i] = a[i] == b;
        }

        public static void SV(T a, ReadOnlySpan<T> b, Span<bool> y)
        {
            for (int i = 0; i < y.Length; i++) y[i] = a == b[i];
        }
    }

    public struct PowFloat : ISpanBinaryOp<float, float>
    {
        public static void VV(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y) => TensorPrimitives.Pow(a, b, y);
        public static void VS(ReadOnlySpan<float> a, float b, Span<float> y)
        {
            if (b == 2f) TensorPrimitives.Multiply(a, a, y);
            else if (b == 1f) a.CopyTo(y);
            else TensorPrimitives.Pow(a, b, y);
        }
        public static void SV(float a, ReadOnlySpan<float> b, Span<float> y) => TensorPrimitives.Pow(a, b, y);
    }

    /// <summary>Power in double precision (mixed-type Pow, computed like numpy's promotion).</summary>
    public struct PowDouble : ISpanBinaryOp<double, double>
    {
        public static void VV(ReadOnlySpan<double> a, ReadOnlySpan<double> b, Span<double> y)
        {
            for (int i = 0; i < y.Length; i++) y[i] = Math.Pow(a[i], b[i]);
        }

        public static void VS(ReadOnlySpan<double> a, double b, Span<double> y)
        {
            for (int i = 0; i < y.Length; i++) y[i] = Math.Pow(a[i], b);
        }

        public static void SV(double a, ReadOnlySpan<double> b, Span<double> y)
        {
            for (int i = 0; i < y.Length; i++) y[i] = Math.Pow(a, b[i]);
        }
    }

    /// <summary>Exact integer power with wrap-around; negative exponents give the truncated reciprocal.</summary>
    public struct PowLong : ISpanBinaryOp<long, long>
    {
        public static long Pow(long x, long e)
        {
            if (e < 0)
            {
                if (x == 1) return 1;
                if (x == -1) return (e & 1) == 0 ? 1 : -1;
                return 0;
            }
            long r = 1;
            while (e > 0)
            {
                if ((e & 1) != 0) r = unchecked(r * x);
                x = unchecked(x * x);
                e >>= 1;
            }
            return r;
        }

        public static void VV(ReadOnlySpan<long> a, ReadOnlySpan<long> b, Span<long> y)
        {
            for (int i = 0; i < y.Length; i++) y[i] = Pow(a[i], b[i]);
        }

        public static void VS(ReadOnlySpan<long> a, long b, Span<long> y)
        {
            for (int i = 0; i < y.Length; i++) y[i] = Pow(a[i], b);
        }

        public static void SV(long a, ReadOnlySpan<long> b, Span<long> y)
        {
            for (int i = 0; i < y.Length; i++) y[i] = Pow(a, b[i]);
        }
    }
}
