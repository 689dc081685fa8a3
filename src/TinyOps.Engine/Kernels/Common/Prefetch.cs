namespace TinyOps.Engine.Kernels.Common;

/// <summary>
/// Whether a tile's k loop prefetches, as a type parameter so the plain loop carries no test: ImplicitGemmConv's tiles
/// prefetch the weights after their block, PackedGemm's the next tile's A.
/// </summary>
internal interface IPrefetch { static abstract bool On { get; } }

/// <summary>The tile prefetches (see <see cref="IPrefetch"/>).</summary>
internal struct Prefetching : IPrefetch { public static bool On => true; }

/// <summary>The tile does not prefetch (see <see cref="IPrefetch"/>).</summary>
internal struct NoPrefetch : IPrefetch { public static bool On => false; }
