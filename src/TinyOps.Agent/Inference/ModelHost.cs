using System.Diagnostics;
using TinyOps.Agent.Install;
using TinyOps.Engine;
using TinyOps.Engine.Runtime;
using TinyOps.Engine.Tensors;
using TinyOps.Protocol.Devices;

namespace TinyOps.Agent.Inference;

/// <summary>The model being served: the active slot's session. Runs are serialized (a session is not thread-safe).</summary>
public sealed class ModelHost
{
    private readonly Lock _lock = new();
    private Loaded? _current;

    private sealed record Loaded(SlotContent Content, InferenceSession Session, InstalledModel Model);

    /// <summary>The slot being served, or null when no model is loaded.</summary>
    public SlotContent? Active => _current?.Content;

    public InstalledModel? ActiveModel => _current?.Model;

    /// <summary>Starts serving <paramref name="session"/> (already health-checked) from <paramref name="content"/>.</summary>
    public void Activate(SlotContent content, InferenceSession session)
    {
        var model = Describe(content);
        lock (_lock) _current = new Loaded(content, session, model);
    }

    public static InstalledModel Describe(SlotContent content) => new()
    {
        ModelName = content.Manifest.ModelName,
        Version = content.Manifest.Version,
        VariantId = content.Manifest.VariantId,
        ArtifactSha256 = content.Manifest.ArtifactSha256,
    };

    /// <summary>
    /// The health check: loads the model with the engine and runs it once on zero inputs (symbolic dimensions
    /// bound to 1); every floating-point output must be finite. Throws with the reason otherwise.
    /// </summary>
    public static InferenceSession LoadAndCheck(string modelPath)
    {
        InferenceSession session;
        try { session = InferenceSession.Load(modelPath); }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new AgentException($"health check: the model does not load: {e.Message}", inner: e);
        }
        var feed = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var input in session.Inputs)
        {
            if (!input.Type.IsSupported() || input.Shape is null)
                throw new AgentException($"health check: input '{input.Name}' ({input}) has no runnable type or shape");
            var shape = new int[input.Shape.Length];
            for (int d = 0; d < shape.Length; d++) shape[d] = input.Shape[d].IsKnown ? checked((int)input.Shape[d].Value) : 1;
            feed[input.Name] = Tensor.Zeros(input.Type, shape);
        }
        Dictionary<string, Tensor> outputs;
        try { outputs = session.Run(feed); }
        catch (Exception e) when (e is not OutOfMemoryException) { throw new AgentException($"health check: the model does not run on zero inputs: {e.Message}", inner: e); }
        foreach (var (name, t) in outputs)
        {
            if (t.Type != DataType.Float32) continue;
            var s = t.ReadOnlySpan<float>();
            for (int i = 0; i < s.Length; i++)
                if (!float.IsFinite(s[i]))
                    throw new AgentException($"health check: output '{name}' has a non-finite value ({s[i]}) at index {i} on zero inputs");
        }
        return session;
    }

    /// <summary>Runs the active model on named inputs.</summary>
    public InferenceResult Run(IReadOnlyDictionary<string, Tensor> inputs, double latencyScale)
    {
        lock (_lock)
        {
            var current = _current ?? throw new AgentException("no model is installed yet; the device serves once a deployment reaches it");
            long start = Stopwatch.GetTimestamp();
            var outputs = current.Session.Run(inputs);
            double us = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
            return new InferenceResult(outputs, ArgMax(outputs, current.Session), us, us * latencyScale, current.Model);
        }
    }

    /// <summary>Runs the active model on its first input given as floats; a null shape means the input's declared shape with symbolic dimensions bound to 1.</summary>
    public InferenceResult Run(float[] data, int[]? shape, double latencyScale)
    {
        Dictionary<string, Tensor> feed;
        lock (_lock)
        {
            var current = _current ?? throw new AgentException("no model is installed yet; the device serves once a deployment reaches it");
            var inputs = current.Session.Inputs;
            if (inputs.Count != 1)
                throw new InferenceInputException($"the model takes {inputs.Count} inputs ({string.Join(", ", inputs.Select(i => i.Name))}); give them by name");
            var info = inputs[0];
            shape ??= info.Shape?.Select(d => d.IsKnown ? checked((int)d.Value) : 1).ToArray()
                ?? throw new InferenceInputException($"input '{info.Name}' has no declared shape; give the shape");
            long count = 1;
            foreach (var d in shape)
            {
                if (d < 0) throw new InferenceInputException($"input '{info.Name}': shape [{string.Join(",", shape)}] has a negative dimension");
                count *= d;
            }
            if (count != data.Length)
                throw new InferenceInputException($"input '{info.Name}': shape [{string.Join(",", shape)}] needs {count} values, got {data.Length}");
            feed = new Dictionary<string, Tensor>(StringComparer.Ordinal) { [info.Name] = Tensor.FromArray(data, shape) };
        }
        return Run(feed, latencyScale);
    }

    private static int ArgMax(Dictionary<string, Tensor> outputs, InferenceSession session)
    {
        if (session.Outputs.Count == 0 || !outputs.TryGetValue(session.Outputs[0].Name, out var t)) return -1;
        if (t.Type != DataType.Float32 || t.Length < 2) return -1;
        // The first row's class: the last dimension of the first item of a batch.
        var s = t.ReadOnlySpan<float>();
        if (t.Rank >= 1 && t.Shape[^1] > 1) s = s[..t.Shape[^1]];
        int best = 0;
        for (int i = 1; i < s.Length; i++) if (s[i] > s[best]) best = i;
        return best;
    }
}
