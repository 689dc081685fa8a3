using System.Net.Http.Json;
using System.Text;
using TinyOps.Engine.Data;
using TinyOps.Engine.Onnx;
using TinyOps.Engine.Tensors;
using TinyOps.Protocol;
using TinyOps.Protocol.Management;
using Xunit;

namespace TinyOps.Server.Tests.Optimization;

/// <summary>Calls of the optimization API shared by its tests.</summary>
internal static class OptimizationApi
{
    public const string P = "default";
    public static readonly string Project = ApiRoutes.Project(P);

    public static Task<HttpResponseMessage> PutRecipeAsync(HttpClient client, string model, string text, string contentType = "application/yaml") =>
        client.PutAsync($"{Project}/models/{model}/recipe", new StringContent(text, Encoding.UTF8, contentType));

    public static async Task<ProblemDetailsDto> ProblemAsync(HttpResponseMessage r) =>
        (await r.Content.ReadFromJsonAsync<ProblemDetailsDto>(ProtocolJsonOptions.Options))!;

    public static Task<HttpResponseMessage> CreateSetAsync(HttpClient client, CreateEvaluationSetRequest req) =>
        client.PostAsJsonAsync($"{Project}/evaluation-sets", req, ProtocolJsonOptions.Options);

    /// <summary>The first <paramref name="n"/> Fashion-MNIST test images as uploaded tensors (inputs [n,1,28,28] float32, labels [n] int64).</summary>
    public static CreateEvaluationSetRequest FashionMnistTensors(string name, int n)
    {
        var test = FashionMnist.LoadTest();
        var inputs = Tensor.FromArray(test.Images.AsSpan(0, n * test.ImageSize).ToArray(), n, 1, test.Rows, test.Cols);
        var labels = Tensor.FromArray(test.Labels.Take(n).Select(l => (long)l).ToArray(), n);
        return new CreateEvaluationSetRequest
        {
            Name = name,
            Kind = EvaluationSetKinds.Tensors,
            Description = $"the first {n} Fashion-MNIST test images, uploaded",
            Inputs = Convert.ToBase64String(OnnxTensors.WritePb(inputs, "inputs")),
            Labels = Convert.ToBase64String(OnnxTensors.WritePb(labels, "labels")),
        };
    }

    /// <summary>Polls a job until it has finished.</summary>
    public static async Task<JobDto> WaitForJobAsync(HttpClient client, string id, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromMinutes(3));
        while (true)
        {
            var j = await (await client.GetAsync($"{Project}/jobs/{id}")).ReadAsync<JobDto>();
            if (JobStates.IsFinished(j.State)) return j;
            if (DateTime.UtcNow > deadline) Assert.Fail($"job {id} did not finish in time; it is {j.State} at {j.Progress}%: {j.Message}");
            await Task.Delay(100);
        }
    }

    /// <summary>The jobs queued for a model version.</summary>
    public static async Task<List<JobDto>> JobsAsync(HttpClient client, string model, string version) =>
        await (await client.GetAsync($"{Project}/jobs?model={model}&version={version}")).ReadAsync<List<JobDto>>();
}
