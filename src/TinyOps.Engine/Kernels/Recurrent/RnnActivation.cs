using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace TinyOps.Engine.Kernels.Recurrent;

internal enum RnnActivationKind
{
    Sigmoid,
    Tanh,
    Relu,
    HardSigmoid,
    LeakyRelu,
    ThresholdedRelu,
    ScaledTanh,
    Elu,
    Softsign,
    Softplus,
    Affine,
}

/// <summary>One activation function of a recurrent operator (the 'activations' attribute) with its alpha/beta.</summary>
internal readonly struct RnnActivation(RnnActivationKind kind, float alpha, float beta)
{
    public RnnActivationKind Kind { get; } = kind;
    public float Alpha { get; } = alpha;
    public float Beta { get; } = beta;

    /// <summary>
    /// Parses the activations attribute. <paramref name="defaults"/> are the per-direction defaults; a list of one
    /// direction's functions is reused for both directions of a bidirectional node. activation_alpha and
    /// activation_beta are consumed in order by the functions that take them; missing ones get the operator defaults.
    /// </summary>
    public static RnnActivation[] Parse(Ir.Node node, string[] defaults, int directions)
    {
        int perDir = defaults.Length;
        string[]? names = node.GetStrings("activations");
        if (names is null)
        {
            names = new string[perDir * directions];
            for (int d = 0; d < directions; d++) defaults.CopyTo(names, d * perDir);
        }
        else if (names.Length == perDir && directions == 2)
        {
            names = [.. names, .. names];
        }
        else if (names.Length != perDir * directions)
        {
            throw new ModelValidationException($"{node.DisplayName}: 'activations' lists {names.Length} functions; expected {perDir * directions} ({perDir} per direction)");
        }
        float[] alphas = node.GetFloats("activation_alpha") ?? [];
        float[] betas = node.GetFloats("activation_beta") ?? [];
        int ai = 0, bi = 0;
        var result = new RnnActivation[names.Length];
        for (int i = 0; i < names.Length; i++)
        {
            RnnActivationKind kind = names[i].ToLowerInvariant() switch
            {
                "sigmoid" => RnnActivationKind.Sigmoid,
                "tanh" => RnnActivationKind.Tanh,
                "relu" => RnnActivationKind.Relu,
                "hardsigmoid" => RnnActivationKind.HardSigmoid,
                "leakyrelu" => RnnActivationKind.LeakyRelu,
                "thresholdedrelu" => RnnActivationKind.ThresholdedRelu,
                "scaledtanh" => RnnActivationKind.ScaledTanh,
                "elu" => RnnActivationKind.Elu,
                "softsign" => RnnActivationKind.Softsign,
                "softplus" => RnnActivationKind.Softplus,
                "affine" => RnnActivationKind.Affine,
                _ => throw new ModelValidationException($"{node.DisplayName}: unsupported activation function '{names[i]}'"),
            };
            (bool usesAlpha, float defAlpha, bool usesBeta, float defBeta) = kind switch
            {
                RnnActivationKind.HardSigmoid => (true, 0.2f, true, 0.5f),
                RnnActivationKind.LeakyRelu => (true, 0.01f, false, 0f),
                RnnActivationKind.ThresholdedRelu => (true, 1f, false, 0f),
                RnnActivationKind.ScaledTanh => (true, 1f, true, 1f),
                RnnActivationKind.Elu => (true, 1f, false, 0f),
                RnnActivationKind.Affine => (true, 1f, true, 0f),
                _ => (false, 0f, false, 0f),
            };
            float alpha = defAlpha, beta = defBeta;
            if (usesAlpha && ai < alphas.Length) alpha = alphas[ai++];
            if (usesBeta && bi < betas.Length) beta = betas[bi++];
            result[i] = new RnnActivation(kind, alpha, beta);
        }
        return result;
    }

    /// <summary>Clips <paramref name="x"/> to [-clip, clip] when clip is positive, then applies the function in place.</summary>
    public void Apply(Span<float> x, float clip)
    {
        if (clip > 0f)
        {
            TensorPrimitives.Min(x, clip, x);
            TensorPrimitives.Max(x, -clip, x);
        }
        switch (Kind)
        {
            case RnnActivationKind.Sigmoid:
                TensorPrimitives.Sigmoid(x, x);
                break;
            case RnnActivationKind.Tanh:
                TensorPrimitives.Tanh(x, x);
                break;
            case RnnActivationKind.Relu:
                TensorPrimitives.Max(x, 0f, x);
                break;
            case RnnActivationKind.HardSigmoid:
                for (int i = 0; i < x.Length; i++) x[i] = MathF.Min(MathF.Max(Alpha * x[i] + Beta, 0f), 1f);
                break;
            case RnnActivationKind.LeakyRelu:
                for (int i = 0; i < x.Length; i++) if (x[i] < 0f) x[i] *= Alpha;
                break;
            case RnnActivationKind.ThresholdedRelu:
                for (int i = 0; i < x.Length; i++) if (!(x[i] > Alpha)) x[i] = 0f;
                break;
            case RnnActivationKind.ScaledTanh:
                TensorPrimitives.Multiply(x, Beta, x);
                TensorPrimitives.Tanh(x, x);
                TensorPrimitives.Multiply(x, Alpha, x);
                break;
            case RnnActivationKind.Elu:
                for (int i = 0; i < x.Length; i++) if (x[i] < 0f) x[i] = Alpha * (MathF.Exp(x[i]) - 1f);
                break;
            case RnnActivationKind.Softsign:
                for (int i = 0; i < x.Length; i++) x[i] /= 1f + MathF.Abs(x[i]);
                break;
            case RnnActivationKind.Softplus:
                for (int i = 0; i < x.Length; i++)
                {
                    float v = x[i];
                    x[i] = v > 20f ? v : MathF.Log(1f + MathF.Exp(v));
                }
                break;
            case RnnActivationKind.Affine:
                for (int i = 0; i < x.Length; i++) x[i] = Alpha * x[i] + Beta;
                break;
        }
    }
}
