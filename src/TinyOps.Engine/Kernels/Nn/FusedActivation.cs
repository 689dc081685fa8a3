using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using TinyOps.Engine.Ir;

namespace TinyOps.Engine.Kernels.Nn;

/// <summary>The element-wise activations Conv and Gemm can apply in their epilogue.</summary>
internal enum ActivationKind
{
    None,
    Relu,
    /// <summary>min(max(x, A), B).</summary>
    Clip,
    /// <summary>x &lt; 0 ? A * x : x.</summary>
    LeakyRelu,
    /// <summary>clamp(A * x + B, 0, 1).</summary>
    HardSigmoid,
    /// <summary>x * clamp(A * x + B, 0, 1).</summary>
    HardSwish,
    Sigmoid,
}

/// <summary>
/// An activation fused into a Conv or Gemm node by <c>Runtime.Fusion.ActivationFusion</c>, carried on the node as
/// the attributes <see cref="KindAttribute"/> and <see cref="ParamsAttribute"/>. Applied to each output element after
/// bias; the cheap ones inside the GEMM micro-kernel, Sigmoid in a pass over each finished row.
/// </summary>
internal readonly struct FusedActivation
{
    /// <summary>Node attribute naming the fused activation (an internal attribute, never written to files).</summary>
    public const string KindAttribute = "__tinyops_activation";
    public const string ParamsAttribute = "__tinyops_activation_params";

    /// <summary>Node attribute of a Conv that also adds a residual (its input 3) before the activation (see <c>Runtime.Fusion.ResidualFusion</c>).</summary>
    public const string ResidualAttribute = "__tinyops_residual";

    public readonly ActivationKind Kind;
    public readonly float A;
    public readonly float B;
    /// <summary>
    /// With <see cref="HasResidual"/>: the byte distance from the output to a residual of the same layout, both pinned
    /// for the whole call; the kernels that take it (the implicit-GEMM convolution and the packed GEMM) store
    /// act((sum + bias) + residual).
    /// </summary>
    public readonly nint ResidualDelta;
    public readonly bool HasResidual;

    public FusedActivation(ActivationKind kind, float a = 0f, float b = 0f)
    {
        Kind = kind;
        A = a;
        B = b;
    }

    private FusedActivation(in FusedActivation act, nint residualDelta)
    {
        Kind = act.Kind;
        A = act.A;
        B = act.B;
        ResidualDelta = residualDelta;
        HasResidual = true;
    }

    public static readonly FusedActivation None = default;

    /// <summary>
    /// This activation after adding a residual that lies <paramref name="residualDelta"/> bytes from the output (the
    /// caller keeps both pinned while the kernel runs).
    /// </summary>
    public FusedActivation WithResidual(nint residualDelta) => new(in this, residualDelta);

    /// <summary>True when the activation is applied as a separate pass (not inside the micro-kernel).</summary>
    public bool NeedsRowPass => Kind == ActivationKind.Sigmoid;

    /// <summary>The residual of the output element at <paramref name="y"/> (only with <see cref="HasResidual"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public unsafe float* Residual(float* y) => (float*)((byte*)y + ResidualDelta);

    /// <summary>Reads the fused activation attributes of a node (None when it has none).</summary>
    public static FusedActivation FromNode(Node node)
    {
        string kind = node.GetString(KindAttribute, "");
        if (kind.Length == 0) return None;
        float[] p = node.GetFloats(ParamsAttribute) ?? [];
        float P(int i) => i < p.Length ? p[i] : throw new ModelValidationException($"{node.DisplayName}: fused activation '{kind}' lacks parameter {i}");
        return kind switch
        {
            "Relu" => new FusedActivation(ActivationKind.Relu),
            "Clip" => new FusedActivation(ActivationKind.Clip, P(0), P(1)),
            "LeakyRelu" => new FusedActivation(ActivationKind.LeakyRelu, P(0)),
            "HardSigmoid" => new FusedActivation(ActivationKind.HardSigmoid, P(0), P(1)),
            "HardSwish" => new FusedActivation(ActivationKind.HardSwish, 1f / 6f, 0.5f),
            "Sigmoid" => new FusedActivation(ActivationKind.Sigmoid),
            _ => throw new ModelValidationException($"{node.DisplayName}: unknown fused activation '{kind}'"),
        };
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Apply(float v)
    {
        switch (Kind)
        {
            case ActivationKind.Relu: return v > 0f ? v : 0f;
            case ActivationKind.Clip: return Math.Min(Math.Max(v, A), B);
            case ActivationKind.LeakyRelu: return v < 0f ? v * A : v;
            case ActivationKind.HardSigmoid: return Math.Clamp(v * A + B, 0f, 1f);
            case ActivationKind.HardSwish: return v * Math.Clamp(v * A + B, 0f, 1f);
            default: return v;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Vector512<float> Apply(Vector512<float> v)
    {
        switch (Kind)
        {
            case ActivationKind.Relu: return Vector512.Max(v, Vector512<float>.Zero);
            case ActivationKind.Clip: return Vector512.Min(Vector512.Max(v, Vector512.Create(A)), Vector512.Create(B));
            case ActivationKind.LeakyRelu: return Vector512.ConditionalSelect(Vector512.LessThan(v, Vector512<float>.Zero), v * A, v);
            case ActivationKind.HardSigmoid: return Vector512.Min(Vector512.Max(v * A + Vector512.Create(B), Vector512<float>.Zero), Vector512<float>.One);
            case ActivationKind.HardSwish: return v * Vector512.Min(Vector512.Max(v * A + Vector512.Create(B), Vector512<float>.Zero), Vector512<float>.One);
            default: return v;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Vector256<float> Apply(Vector256<float> v)
    {
        switch (Kind)
        {
            case ActivationKind.Relu: return Vector256.Max(v, Vector256<float>.Zero);
            case ActivationKind.Clip: return Vector256.Min(Vector256.Max(v, Vector256.Create(A)), Vector256.Create(B));
            case ActivationKind.LeakyRelu: return Vector256.ConditionalSelect(Vector256.LessThan(v, Vector256<float>.Zero), v * A, v);
            case ActivationKind.HardSigmoid: return Vector256.Min(Vector256.Max(v * A + Vector256.Create(B), Vector256<float>.Zero), Vector256<float>.One);
            case ActivationKind.HardSwish: return v * Vector256.Min(Vector256.Max(v * A + Vector256.Create(B), Vector256<float>.Zero), Vector256<float>.One);
            default: return v;
        }
    }

    /// <summary>Applies the activation to a span in place (never the residual: kernels add it where they finish a value).</summary>
    public void Apply(Span<float> x)
    {
        switch (Kind)
        {
            case ActivationKind.None: return;
            case ActivationKind.Relu: TensorPrimitives.Max(x, 0f, x); return;
            case ActivationKind.Sigmoid: TensorPrimitives.Sigmoid(x, x); return;
        }
        int i = 0;
        if (Vector256.IsHardwareAccelerated && !SGemm.ForceScalar)
        {
            ref float r = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(x);
            for (; i + Vector256<float>.Count <= x.Length; i += Vector256<float>.Count)
                Apply(Vector256.LoadUnsafe(ref r, (nuint)i)).StoreUnsafe(ref r, (nuint)i);
        }
        for (; i < x.Length; i++) x[i] = Apply(x[i]);
    }
}
