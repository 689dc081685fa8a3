namespace TinyOps.Engine.Kernels.ShapeOps;

internal static class ShapeKernels
{
    public static void Register(KernelRegistry r)
    {
        r.Register("Reshape", (n, o) => new ReshapeKernel(n, o));
        r.Register("Flatten", (n, o) => new FlattenKernel(n, o));
        r.Register("Squeeze", (n, o) => new SqueezeKernel(n, o));
        r.Register("Unsqueeze", (n, o) => new UnsqueezeKernel(n, o));
        r.Register("Transpose", (n, o) => new TransposeKernel(n, o));
        r.Register("Concat", (n, o) => new ConcatKernel(n, o));
        r.Register("Split", (n, o) => new SplitKernel(n, o));
        r.Register("Gather", (n, o) => new GatherKernel(n, o));
        r.Register("Slice", (n, o) => new SliceKernel(n, o));
        r.Register("Pad", (n, o) => new PadKernel(n, o));
        r.Register("Shape", (n, o) => new ShapeKernel(n, o));
        r.Register("Constant", (n, o) => new ConstantKernel(n, o));
        r.Register("ConstantOfShape", (n, o) => new ConstantOfShapeKernel(n, o), sinceVersion: 9);
        r.Register("Expand", (n, o) => new ExpandKernel(n, o), sinceVersion: 8);
        r.Register("Resize", (n, o) => new ResizeKernel(n, o), sinceVersion: 10);
        r.Register("Tile", (n, o) => new TileKernel(n, o), sinceVersion: 6);
    }
}
