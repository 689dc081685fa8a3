using TinyOps.Engine.Kernels;

namespace TinyOps.Engine.Runtime;

/// <summary>How a session runs: threads per operator, memory limits and which kernels to use.</summary>
public sealed class SessionOptions
{
    /// <summary>Threads an operator may use. 1 (the default) runs everything on the caller's thread.</summary>
    public int Threads { get; init; } = 1;

    /// <summary>The planned activation arena may not exceed this (default 1 GiB); a larger plan is refused.</summary>
    public long MaxArenaBytes { get; init; } = 1L << 30;

    /// <summary>Largest constant subgraph result folded at load time, in elements.</summary>
    public long MaxFoldElements { get; init; } = 1L << 24;

    /// <summary>Fold Relu, Clip and other activations into the Conv or Gemm before them (default on; off to profile node by node).</summary>
    public bool FuseActivations { get; init; } = true;

    /// <summary>
    /// Plan the inputs of a Concat as views of its output where they are contiguous blocks of it (channels at batch
    /// 1), so their producers write in place and the Concat copies nothing. Results are the same either way.
    /// </summary>
    public bool ConcatInPlace { get; init; } = true;

    /// <summary>
    /// Run DequantizeLinear → Add(constant) → [Relu] → [QuantizeLinear] chains of quantized graphs as one node
    /// (default on; same results, fewer dispatches; off to profile node by node or to compare).
    /// </summary>
    public bool FuseDequantizeChains { get; init; } = true;

    /// <summary>
    /// Add two quantized tensors (a quantized graph's residual sum, DequantizeLinear ×2 → Add → [Relu] →
    /// QuantizeLinear, fused by <see cref="FuseDequantizeChains"/>) exactly as the separate kernels do, with a division
    /// by the output scale per element. Off by default: the fused node then computes
    /// (a − za)·(sa / sy) + (b − zb)·(sb / sy) with the two ratios worked out once, as ONNX Runtime's QLinearAdd does,
    /// about twice as fast; the result differs from the separate kernels' by at most one quantization step, where the
    /// sum falls within a few float roundings of a halfway point.
    /// </summary>
    public bool ExactQuantizedAdds { get; init; }

    /// <summary>
    /// Run a Conv whose output only feeds an Add (a residual block's end, with the Relu after it) as one node that adds
    /// the other operand in the convolution's epilogue (default on; same results; off to profile node by node).
    /// </summary>
    public bool FuseResiduals { get; init; } = true;

    /// <summary>
    /// Run a QLinearConv followed only by a 2 × 2, stride 2 MaxPool as one node that pools the sums before requantizing
    /// them (default on; same results; off to profile node by node or to compare).
    /// </summary>
    public bool FuseQuantizedPools { get; init; } = true;

    /// <summary>Time every node of the main graph (see <see cref="InferenceSession.NodeProfile"/>); off by default.</summary>
    public bool ProfileNodes { get; init; }

    public KernelRegistry Registry { get; init; } = KernelRegistry.Default;
}
