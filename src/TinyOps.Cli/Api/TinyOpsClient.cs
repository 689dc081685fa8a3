using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using TinyOps.Protocol;
using TinyOps.Protocol.Management;

namespace TinyOps.Cli.Api;

/// <summary>An error answer of the control plane, with its problem details.</summary>
public sealed class ApiCallException(int status, string message, string? field = null) : Exception(message)
{
    public int Status { get; } = status;
    /// <summary>The request field the server named (problem details' "field"), if any.</summary>
    public string? Field { get; } = field;
}

/// <summary>A typed client of the management API (/api/v1) for the CLI and the demo.</summary>
public sealed class TinyOpsClient : IDisposable
{
    private static readonly JsonSerializerOptions Json = new(ProtocolJson.Default.Options);
    private readonly HttpClient _http;

    public TinyOpsClient(string baseUrl, string? token, HttpMessageHandler? handler = null)
    {
        _http = handler is null ? new HttpClient(new SocketsHttpHandler { AutomaticDecompression = System.Net.DecompressionMethods.All }) : new HttpClient(handler);
        _http.BaseAddress = new Uri(baseUrl.TrimEnd('/') + "/");
        _http.Timeout = TimeSpan.FromMinutes(5);
        if (token is not null) _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
    }

    public string BaseUrl => _http.BaseAddress!.ToString().TrimEnd('/');

    private static string P(string project) => ApiRoutes.Project(project);
    private static string E(string s) => Uri.EscapeDataString(s);

    public Task<WhoamiDto> WhoamiAsync() => GetAsync<WhoamiDto>(ApiRoutes.Whoami);
    public Task<List<ProjectDto>> ProjectsAsync() => GetAsync<List<ProjectDto>>(ApiRoutes.Projects);
    public Task<ProjectDto> CreateProjectAsync(string name, string description = "") => SendAsync<ProjectDto>(HttpMethod.Post, ApiRoutes.Projects, new CreateProjectRequest(name, description));
    public Task<CreatedTokenDto> CreateTokenAsync(string name, string role, string? project) => SendAsync<CreatedTokenDto>(HttpMethod.Post, ApiRoutes.Tokens, new CreateTokenRequest(name, role, project));
    public Task<List<AuditEntryDto>> AuditAsync(string? project, int limit = 50) => GetAsync<List<AuditEntryDto>>($"{ApiRoutes.Audit}?limit={limit}" + (project is null ? "" : $"&project={E(project)}"));

    public Task<List<ModelDto>> ModelsAsync(string project) => GetAsync<List<ModelDto>>($"{P(project)}/models");
    public Task<ModelDto> CreateModelAsync(string project, string model, string description = "") => SendAsync<ModelDto>(HttpMethod.Post, $"{P(project)}/models", new CreateModelRequest(model, description));
    public Task<ModelDto> ModelAsync(string project, string model) => GetAsync<ModelDto>($"{P(project)}/models/{E(model)}");
    public Task<List<VersionDto>> VersionsAsync(string project, string model) => GetAsync<List<VersionDto>>($"{P(project)}/models/{E(model)}/versions");
    public Task<VersionDto> VersionAsync(string project, string model, string version) => GetAsync<VersionDto>($"{P(project)}/models/{E(model)}/versions/{E(version)}");

    public async Task<VersionDto> PushVersionAsync(string project, string model, byte[] onnx, string? version = null, string? alias = null, string? notes = null)
    {
        var query = new List<string>();
        if (version is not null) query.Add("version=" + E(version));
        if (alias is not null) query.Add("alias=" + E(alias));
        if (notes is not null) query.Add("notes=" + E(notes));
        var content = new ByteArrayContent(onnx);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        using var r = await _http.PostAsync($"{P(project).TrimStart('/')}/models/{E(model)}/versions" + (query.Count > 0 ? "?" + string.Join("&", query) : ""), content);
        return await ReadAsync<VersionDto>(r);
    }

    public Task SetAliasAsync(string project, string model, string alias, string version) => SendAsync<object?>(HttpMethod.Put, $"{P(project)}/models/{E(model)}/aliases/{E(alias)}", new SetAliasRequest(version));

    public Task<EnrollmentTokenDto> CreateEnrollmentTokenAsync(string project, int uses, IReadOnlyList<string>? tags = null, int validHours = 24) =>
        SendAsync<EnrollmentTokenDto>(HttpMethod.Post, $"{P(project)}/enrollment-tokens", new CreateEnrollmentTokenRequest(uses, validHours, tags));

    public Task<List<DeviceDto>> DevicesAsync(string project, IEnumerable<string>? tags = null) =>
        GetAsync<List<DeviceDto>>($"{P(project)}/devices" + (tags is null || !tags.Any() ? "" : "?" + string.Join("&", tags.Select(t => "tag=" + E(t)))));
    public Task<DeviceDto> DeviceAsync(string project, string id) => GetAsync<DeviceDto>($"{P(project)}/devices/{E(id)}");
    public Task<CompatibilityDto> CompatibilityAsync(string project, string device, string variant) => GetAsync<CompatibilityDto>($"{P(project)}/devices/{E(device)}/compatibility?variant={E(variant)}");

    public Task<DeploymentDto> DeployAsync(string project, CreateDeploymentRequest request) => SendAsync<DeploymentDto>(HttpMethod.Post, $"{P(project)}/deployments", request);
    public Task<List<DeploymentDto>> DeploymentsAsync(string project) => GetAsync<List<DeploymentDto>>($"{P(project)}/deployments");
    public Task<DeploymentDto> DeploymentAsync(string project, string id) => GetAsync<DeploymentDto>($"{P(project)}/deployments/{E(id)}");
    public Task DeploymentActionAsync(string project, string id, string action) => SendAsync<object?>(HttpMethod.Post, $"{P(project)}/deployments/{E(id)}/{action}", null);

    public Task<TelemetrySummaryDto> TelemetrySummaryAsync(string project) => GetAsync<TelemetrySummaryDto>($"{P(project)}/telemetry/summary");

    // optimization: recipes, evaluation sets, jobs
    public Task<RecipeDto> RecipeAsync(string project, string model) => GetAsync<RecipeDto>($"{P(project)}/models/{E(model)}/recipe");

    public async Task<RecipeDto> SetRecipeAsync(string project, string model, string text, string mediaType = "application/yaml")
    {
        using var r = await _http.PutAsync($"{P(project).TrimStart('/')}/models/{E(model)}/recipe", new StringContent(text, System.Text.Encoding.UTF8, mediaType));
        return await ReadAsync<RecipeDto>(r);
    }

    public Task DeleteRecipeAsync(string project, string model) => SendAsync<object?>(HttpMethod.Delete, $"{P(project)}/models/{E(model)}/recipe", null);
    public Task<JobDto> OptimizeAsync(string project, string model, string version) => SendAsync<JobDto>(HttpMethod.Post, $"{P(project)}/models/{E(model)}/versions/{E(version)}/optimize", null);
    public Task<List<EvaluationSetDto>> EvaluationSetsAsync(string project) => GetAsync<List<EvaluationSetDto>>($"{P(project)}/evaluation-sets");
    public Task<EvaluationSetDto> CreateEvaluationSetAsync(string project, CreateEvaluationSetRequest request) => SendAsync<EvaluationSetDto>(HttpMethod.Post, $"{P(project)}/evaluation-sets", request);

    public Task<List<JobDto>> JobsAsync(string project, string? model = null, string? version = null, string? state = null, int limit = 50)
    {
        var query = new List<string> { $"limit={limit}" };
        if (model is not null) query.Add("model=" + E(model));
        if (version is not null) query.Add("version=" + E(version));
        if (state is not null) query.Add("state=" + E(state));
        return GetAsync<List<JobDto>>($"{P(project)}/jobs?{string.Join("&", query)}");
    }

    public Task<JobDto> JobAsync(string project, string id) => GetAsync<JobDto>($"{P(project)}/jobs/{E(id)}");
    public Task<JobDto> CancelJobAsync(string project, string id) => SendAsync<JobDto>(HttpMethod.Post, $"{P(project)}/jobs/{E(id)}/cancel", null);

    private async Task<T> GetAsync<T>(string path)
    {
        using var r = await _http.GetAsync(path.TrimStart('/'));
        return await ReadAsync<T>(r);
    }

    private async Task<T> SendAsync<T>(HttpMethod method, string path, object? body)
    {
        using var req = new HttpRequestMessage(method, path.TrimStart('/'));
        if (body is not null) req.Content = JsonContent.Create(body, body.GetType(), options: Json);
        using var r = await _http.SendAsync(req);
        return await ReadAsync<T>(r);
    }

    private static async Task<T> ReadAsync<T>(HttpResponseMessage r)
    {
        if (!r.IsSuccessStatusCode)
        {
            string text = await r.Content.ReadAsStringAsync();
            string detail = text;
            string? field = null;
            try
            {
                var p = JsonSerializer.Deserialize(text, ProtocolJson.Default.ProblemDetailsDto);
                if (p is not null && p.Detail.Length > 0) detail = p.Detail;
                field = p?.Field;
            }
            catch (JsonException) { }
            throw new ApiCallException((int)r.StatusCode, $"{(int)r.StatusCode} {r.ReasonPhrase}: {detail}" + (field is null ? "" : $" [field: {field}]"), field);
        }
        if (typeof(T) == typeof(object) || r.StatusCode == System.Net.HttpStatusCode.NoContent || r.Content.Headers.ContentLength == 0) return default!;
        return (await r.Content.ReadFromJsonAsync<T>(Json))!;
    }

    public void Dispose() => _http.Dispose();
}
