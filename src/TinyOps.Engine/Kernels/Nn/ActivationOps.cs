using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace TinyOps.Engine.Kernels.Nn;

/// <summary>
/// An activation as a type, so the GEMM micro-kernels are compiled once per activation with no branch on its kind
/// (the JIT specializes generic code for each struct type argument). <see cref="AnyActivation"/> serves the rest
/// through <see cref="FusedActivation"/>'s switch.
/// </summary>
internal interface IActivationOp
{
    static abstract Vector256<float> Apply(Vector256<float> v, in FusedActivation act);
    static abstract Vector512<float> Apply(Vector512<float> v, in FusedActivation act);
}

internal struct NoActivation : IActivationOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Apply(Vector256<float> v, in FusedActivation act) => v;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Apply(Vector512<float> v, in FusedActivation act) => v;
}

internal struct ReluActivation : IActivationOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Apply(Vector256<float> v, in FusedActivation act) =>
        Avx.IsSupported ? Avx.Max(Vector256<float>.Zero, v) : Vector256.Max(v, Vector256<float>.Zero); // maxps(0, v) keeps NaN

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Apply(Vector512<float> v, in FusedActivation act) =>
        Avx512F.IsSupported ? Avx512F.Max(Vector512<float>.Zero, v) : Vector512.Max(v, Vector512<float>.Zero);
}

internal struct ClipActivation : IActivationOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Apply(Vector256<float> v, in FusedActivation act) =>
        Avx.IsSupported ? Avx.Min(Vector256.Create(act.B), Avx.Max(Vector256.Create(act.A), v))
        : Vector256.Min(Vector256.Max(v, Vector256.Create(act.A)), Vector256.Create(act.B));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Apply(Vector512<float> v, in FusedActivation act) =>
        Avx512F.IsSupported ? Avx512F.Min(Vector512.Create(act.B), Avx512F.Max(Vector512.Create(act.A), v))
        : Vector512.Min(Vector512.Max(v, Vector512.Create(act.A)), Vector512.Create(act.B));
}

internal struct AnyActivation : IActivationOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Apply(Vector256<float> v, in FusedActivation act) => act.Apply(v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Apply(Vector512<float> v, in FusedActivation act) => act.Apply(v);
}
