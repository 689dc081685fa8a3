using TinyOps.Engine.Tensors;
using TinyOps.Protocol.Devices;

namespace TinyOps.Agent.Inference;

/// <summary>One inference: the outputs (copies), the argmax of the first float output, the latency and the model used.</summary>
public sealed record InferenceResult(
    IReadOnlyDictionary<string, Tensor> Outputs,
    int PredictedClass,
    double LatencyUs,
    double DeviceLatencyUs,
    InstalledModel Model);
