using System.Runtime.CompilerServices;

namespace TinyOps.Engine.Kernels.Nn;

/// <summary>Three ints stored inline (depth, height, width of a convolution), indexable without allocation.</summary>
[InlineArray(3)]
internal struct Int3
{
    private int _element;
}
