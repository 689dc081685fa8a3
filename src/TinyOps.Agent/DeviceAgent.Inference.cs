using TinyOps.Agent.Inference;
using TinyOps.Engine;
using TinyOps.Engine.Tensors;
using TinyOps.Protocol.Telemetry;

namespace TinyOps.Agent;

public sealed partial class DeviceAgent
{
    /// <summary>Runs the active model on its single input (floats; a null shape means the declared one) and records telemetry.</summary>
    public InferenceResult Infer(float[] input, int[]? shape = null) => Recorded(() => Models.Run(input, shape, Options.LatencyScale));

    /// <summary>Runs the active model on named inputs and records telemetry.</summary>
    public InferenceResult Infer(IReadOnlyDictionary<string, Tensor> inputs) => Recorded(() => Models.Run(inputs, Options.LatencyScale));

    public Task<InferenceResult> InferAsync(float[] input, int[]? shape = null, CancellationToken ct = default) =>
        Task.Run(() => Infer(input, shape), ct);

    public Task<InferenceResult> InferAsync(IReadOnlyDictionary<string, Tensor> inputs, CancellationToken ct = default) =>
        Task.Run(() => Infer(inputs), ct);

    private InferenceResult Recorded(Func<InferenceResult> run)
    {
        try
        {
            var r = run();
            if (Options.RecordTelemetry)
            {
                Telemetry.Add(new InferenceRecord
                {
                    At = Options.Clock.GetUtcNow(),
                    ModelName = r.Model.ModelName,
                    Version = r.Model.Version,
                    VariantId = r.Model.VariantId,
                    LatencyUs = r.LatencyUs,
                    DeviceLatencyUs = r.DeviceLatencyUs,
                    Outcome = "ok",
                    PredictedClass = r.PredictedClass,
                });
            }
            return r;
        }
        catch (EngineException) when (Options.RecordTelemetry && Models.ActiveModel is { } m)
        {
            Telemetry.Add(new InferenceRecord
            {
                At = Options.Clock.GetUtcNow(),
                ModelName = m.ModelName,
                Version = m.Version,
                VariantId = m.VariantId,
                Outcome = "error",
            });
            throw;
        }
    }
}
