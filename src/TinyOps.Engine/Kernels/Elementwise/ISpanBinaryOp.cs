namespace TinyOps.Engine.Kernels.Elementwise;

/// <summary>
/// An element-wise binary operation over contiguous runs: vector-vector, vector-scalar and scalar-vector.
/// Implementations must allow the destination to be the same span as a source (exact overlap).
/// </summary>
internal interface ISpanBinaryOp<TIn, TOut>
{
    static abstract void VV(ReadOnlySpan<TIn> a, ReadOnlySpan<TIn> b, Span<TOut> y);
    static abstract void VS(ReadOnlySpan<TIn> a, TIn b, Span<TOut> y);
    static abstract void SV(TIn a, ReadOnlySpan<TIn> b, Span<TOut> y);
}
