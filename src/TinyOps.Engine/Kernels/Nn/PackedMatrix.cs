namespace TinyOps.Engine.Kernels.Nn;

/// <summary>
/// A constant left operand (a layer's weights) packed once into the micro-kernel panel layout of one GEMM path,
/// so runs skip packing it: for each K block of <c>KC</c> rows, MR-row panels of every row, zero-padded.
/// </summary>
internal sealed class PackedMatrix
{
    public required float[] Data { get; init; }
    public required PackedGemm.Path Path { get; init; }
    public required int Rows { get; init; }
    public required int Cols { get; init; }

    /// <summary>True when this packing can serve op(A) of M x K on the given path.</summary>
    public bool Fits(PackedGemm.Path path, int m, int k) => Path == path && Rows == m && Cols == k;
}
