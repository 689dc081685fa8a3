namespace TinyOps.Engine.Kernels.Recurrent;

internal static class RecurrentKernels
{
    public static void Register(KernelRegistry r)
    {
        r.Register("LSTM", (node, opset) => new LstmKernel(node, opset));
        r.Register("GRU", (node, opset) => new GruKernel(node, opset));
    }
}
