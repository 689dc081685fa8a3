namespace TinyOps.Engine.Kernels.Nn;

/// <summary>
/// The geometry of one Conv or ConvTranspose call, with 1-D and 2-D cases lifted to 3-D by leading unit
/// dimensions (kernel 1, stride 1, dilation 1, no padding). For ConvTranspose, In is the input (X) grid and Out
/// the output (Y) grid as well. A value type so kernels can recompute it in Run without allocating.
/// </summary>
internal struct ConvShape
{
    public int Batch;
    public int InChannels;
    public int OutChannels;
    public int Group;
    public int SpatialRank;
    public Int3 In;
    public Int3 Kernel;
    public Int3 Out;
    public Int3 Stride;
    public Int3 Dilation;
    /// <summary>Padding before each axis (may be negative for ConvTranspose with an explicit output_shape).</summary>
    public Int3 PadBegin;

    public readonly int InSize => In[0] * In[1] * In[2];
    public readonly int OutSize => Out[0] * Out[1] * Out[2];
    public readonly int KernelSize => Kernel[0] * Kernel[1] * Kernel[2];

    /// <summary>The output shape [N, M, spatial...] in the original rank.</summary>
    public readonly int[] OutputShape()
    {
        var s = new int[SpatialRank + 2];
        s[0] = Batch;
        s[1] = OutChannels;
        for (int i = 0; i < SpatialRank; i++) s[2 + i] = Out[3 - SpatialRank + i];
        return s;
    }
}
