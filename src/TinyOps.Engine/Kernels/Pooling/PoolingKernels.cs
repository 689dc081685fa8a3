namespace TinyOps.Engine.Kernels.Pooling;

/// <summary>Pooling, normalization over windows, softmax and reductions.</summary>
internal static class PoolingKernels
{
    public static void Register(KernelRegistry r)
    {
        r.Register("MaxPool", (node, opset) => new MaxPoolKernel(node, opset));
        r.Register("AveragePool", (node, opset) => new AveragePoolKernel(node, opset));
        r.Register("GlobalAveragePool", (node, opset) => new GlobalPoolKernel(node, opset, max: false));
        r.Register("GlobalMaxPool", (node, opset) => new GlobalPoolKernel(node, opset, max: true));
        r.Register("LRN", (node, opset) => new LrnKernel(node, opset));
        r.Register("Softmax", (node, opset) => new SoftmaxKernel(node, opset, log: false));
        r.Register("LogSoftmax", (node, opset) => new SoftmaxKernel(node, opset, log: true));
        r.Register("ReduceSum", (node, opset) => new ReduceKernel(node, opset, ReduceOp.Sum));
        r.Register("ReduceMean", (node, opset) => new ReduceKernel(node, opset, ReduceOp.Mean));
        r.Register("ReduceMax", (node, opset) => new ReduceKernel(node, opset, ReduceOp.Max));
    }
}
