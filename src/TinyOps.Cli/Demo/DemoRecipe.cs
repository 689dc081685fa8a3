using System.Globalization;
using TinyOps.Cli.Api;
using TinyOps.Protocol.Management;

namespace TinyOps.Cli.Demo;

/// <summary>
/// The recipe the demo sets on its model before the first push, and the evaluation set its accuracy gate uses: the
/// first <see cref="FashionMnistCount"/> Fashion-MNIST test images when the server has Fashion-MNIST (calibration on
/// its training images), else the embedded test batch uploaded as tensors (calibration on the same images: the only
/// real images there are).
/// </summary>
public static class DemoRecipe
{
    public const string Name = "fmnist-demo";
    public const int FashionMnistCount = 1000;
    public const string FashionMnistSet = "fmnist-test-1000";
    public const string BatchSet = "demo-batch";

    /// <summary>
    /// int8 for the microcontrollers (a quarter of the fp32 activation memory: the Cortex-M0's 16 KiB hold it),
    /// float16 weights for phones and gateways (half the bytes, computed in float32), and a 90 % layer-wise pruning
    /// without fine-tuning that the accuracy gate is expected to reject.
    /// </summary>
    public static string Text(EvaluationSetDto evaluation)
    {
        string calibration = evaluation.Kind == EvaluationSetKinds.FashionMnist ? "fashion-mnist" : evaluation.Name;
        return string.Create(CultureInfo.InvariantCulture, $$"""
            name: {{Name}}
            evaluation: {{evaluation.Name}}
            latency_runs: 100
            variants:
              - name: int8
                targets: [cortex-m0, cortex-m4]
                max_accuracy_drop: 1.0
                passes:
                  - fold-constants
                  - quantize: { mode: static-int8, calibration: {{calibration}}, samples: 200, per_channel: true }
              - name: fp16-weights
                targets: [phone, gateway]
                passes: [fold-constants, float16-weights]
              - name: pruned-90
                targets: [gateway]
                passes:
                  - prune: { sparsity: 0.9, scope: layer }

            """);
    }

    /// <summary>
    /// Registers the evaluation set: a reference to the server's Fashion-MNIST test images, or, when the server has
    /// none (422), the embedded batch. Returns the set and, for the fallback, the server's refusal (its first clause).
    /// </summary>
    public static async Task<(EvaluationSetDto Set, string? Fallback)> RegisterEvaluationSetAsync(TinyOpsClient client, string project, SampleBatch batch)
    {
        try
        {
            return (await client.CreateEvaluationSetAsync(project, new CreateEvaluationSetRequest
            {
                Name = FashionMnistSet,
                Kind = EvaluationSetKinds.FashionMnist,
                Count = FashionMnistCount,
                Description = $"the first {FashionMnistCount} Fashion-MNIST test images",
            }), null);
        }
        catch (ApiCallException e) when (e.Status == 422)
        {
            var set = await client.CreateEvaluationSetAsync(project, batch.ToEvaluationSet(BatchSet,
                $"the demo's {batch.Count} embedded test images, labelled with PyTorch's predictions"));
            return (set, e.Message.Split("; ")[0]);
        }
    }
}
