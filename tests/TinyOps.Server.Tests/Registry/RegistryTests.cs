using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using TinyOps.Protocol;
using TinyOps.Protocol.Management;
using TinyOps.Protocol.Manifests;
using TinyOps.Trust.Signing;
using Xunit;

namespace TinyOps.Server.Tests.Registry;

public sealed class RegistryTests
{
    private static readonly string Models = ApiRoutes.Project("default") + "/models";

    /// <summary>The Fashion-MNIST CNN shipped in samples/ (the same file as /work/shared/models/fmnist_cnn.onnx).</summary>
    internal static byte[] FmnistCnn()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "samples", "fmnist_cnn", "model.onnx");
            if (File.Exists(candidate)) return File.ReadAllBytes(candidate);
        }
        return File.ReadAllBytes("/work/shared/models/fmnist_cnn.onnx");
    }

    internal static Task<HttpResponseMessage> PushAsync(HttpClient client, string model, byte[] bytes, string query = "", string project = "default")
    {
        var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        return client.PostAsync($"{ApiRoutes.Project(project)}/models/{model}/versions{query}", content);
    }

    private static Task<HttpResponseMessage> AddVariantAsync(HttpClient client, string model, string version, byte[] bytes, string query)
    {
        var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        return client.PostAsync($"{Models}/{model}/versions/{version}/variants{query}", content);
    }

    private static async Task<HttpClient> TokenAsync(TestServer s, string role, string? project)
    {
        var created = await (await s.Admin.PostAsJsonAsync(ApiRoutes.Tokens, new CreateTokenRequest($"{role}-{project ?? "all"}", role, project), ProtocolJsonOptions.Options)).ReadAsync<CreatedTokenDto>();
        return s.Client(created.Secret);
    }

    private static async Task<string> DetailAsync(HttpResponseMessage r) =>
        (await r.Content.ReadFromJsonAsync<ProblemDetailsDto>(ProtocolJsonOptions.Options))!.Detail;

    [Theory]
    [MemberData(nameof(TestServer.Backends), MemberType = typeof(TestServer))]
    public async Task PushExtractsMetadataAutoNumbersAndResolvesAliases(string backend)
    {
        await using var s = await TestServer.StartAsync(backend);
        byte[] bytes = FmnistCnn();

        var r1 = await PushAsync(s.Admin, "fmnist", bytes, "?notes=first");
        Assert.Equal(HttpStatusCode.Created, r1.StatusCode);
        var v1 = await r1.ReadAsync<VersionDto>();
        Assert.Equal("1", v1.Version);
        Assert.Equal("first", v1.Notes);
        Assert.Equal("token:admin", v1.CreatedBy);
        var baseVariant = Assert.Single(v1.Variants);
        Assert.Equal("base", baseVariant.Name);
        Assert.Equal("base", baseVariant.Recipe);
        Assert.Null(baseVariant.ParentId);
        Assert.Equal("accepted", baseVariant.Status);
        Assert.Matches("^var_[0-9a-f]{12}$", baseVariant.Id);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(bytes)), baseVariant.ArtifactSha256);
        Assert.Equal(bytes.Length, baseVariant.ArtifactSize);
        var m = baseVariant.Metadata;
        Assert.Equal(52_138, m.Parameters);
        Assert.Equal(["Conv", "Flatten", "Gemm", "MaxPool", "Relu"], m.Operators);
        Assert.True(m.PlannedPeakBytes > 0);
        Assert.True(m.Macs > 0);
        Assert.True(m.WeightBytes >= 52_138 * 4);
        Assert.True(m.Opset > 0);
        var input = Assert.Single(m.Inputs);
        Assert.Contains(": float32 [", input);
        Assert.Single(m.Outputs);

        var v2 = await (await PushAsync(s.Admin, "fmnist", bytes, "?alias=production")).ReadAsync<VersionDto>();
        Assert.Equal("2", v2.Version);
        var v7 = await (await PushAsync(s.Admin, "fmnist", bytes, "?version=7")).ReadAsync<VersionDto>();
        Assert.Equal("7", v7.Version);
        Assert.Equal("8", (await (await PushAsync(s.Admin, "fmnist", bytes)).ReadAsync<VersionDto>()).Version);

        var model = await (await s.Admin.GetAsync($"{Models}/fmnist")).ReadAsync<ModelDto>();
        Assert.Equal(4, model.VersionCount);
        Assert.Equal("2", model.Aliases["production"]);
        Assert.Equal("2", (await (await s.Admin.GetAsync($"{Models}/fmnist/versions/production")).ReadAsync<VersionDto>()).Version);
        var versions = await (await s.Admin.GetAsync($"{Models}/fmnist/versions")).ReadAsync<List<VersionDto>>();
        Assert.Equal(["1", "2", "7", "8"], versions.Select(v => v.Version));
        Assert.All(versions, v => Assert.Single(v.Variants));

        var moved = await (await s.Admin.PutAsJsonAsync($"{Models}/fmnist/aliases/production", new SetAliasRequest("1"), ProtocolJsonOptions.Options)).ReadAsync<ModelDto>();
        Assert.Equal("1", moved.Aliases["production"]);
        Assert.Equal("1", (await (await s.Admin.GetAsync($"{Models}/fmnist/versions/production")).ReadAsync<VersionDto>()).Version);
        var badAlias = await s.Admin.PutAsJsonAsync($"{Models}/fmnist/aliases/staging", new SetAliasRequest("99"), ProtocolJsonOptions.Options);
        Assert.Equal(HttpStatusCode.NotFound, badAlias.StatusCode);
        Assert.Contains("versions: 1, 2, 7, 8", await DetailAsync(badAlias));

        Assert.Equal(HttpStatusCode.NoContent, (await s.Admin.DeleteAsync($"{Models}/fmnist/aliases/production")).StatusCode);
        var gone = await s.Admin.GetAsync($"{Models}/fmnist/versions/production");
        Assert.Equal(HttpStatusCode.NotFound, gone.StatusCode);
        Assert.Contains("production", await DetailAsync(gone));
        Assert.Equal(HttpStatusCode.NotFound, (await s.Admin.DeleteAsync($"{Models}/fmnist/aliases/production")).StatusCode);

        var created = await s.Admin.PostAsJsonAsync(Models, new CreateModelRequest("empty", "no versions yet"), ProtocolJsonOptions.Options);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Equal(HttpStatusCode.Conflict, (await s.Admin.PostAsJsonAsync(Models, new CreateModelRequest("empty"), ProtocolJsonOptions.Options)).StatusCode);
        var list = await (await s.Admin.GetAsync(Models)).ReadAsync<List<ModelDto>>();
        Assert.Equal(["empty", "fmnist"], list.Select(x => x.Name));
        Assert.Equal(0, list[0].VersionCount);
        Assert.Equal("no versions yet", list[0].Description);
    }

    [Theory]
    [MemberData(nameof(TestServer.Backends), MemberType = typeof(TestServer))]
    public async Task BadUploadsAreRefusedAndStoreNothing(string backend)
    {
        await using var s = await TestServer.StartAsync(backend);
        var garbage = await PushAsync(s.Admin, "junk", "this is not an onnx model at all"u8.ToArray());
        Assert.Equal(HttpStatusCode.UnprocessableEntity, garbage.StatusCode);
        string detail = await DetailAsync(garbage);
        Assert.Contains("not a model the engine can run", detail);
        Assert.Contains("not a valid ONNX model", detail);
        Assert.Contains("'junk'", detail);
        Assert.Equal(HttpStatusCode.NotFound, (await s.Admin.GetAsync($"{Models}/junk")).StatusCode);

        byte[] bytes = FmnistCnn();
        var truncated = await PushAsync(s.Admin, "junk", bytes[..(bytes.Length / 2)]);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, truncated.StatusCode);
        Assert.Contains("truncated", await DetailAsync(truncated));

        var empty = await PushAsync(s.Admin, "junk", []);
        Assert.Equal(HttpStatusCode.BadRequest, empty.StatusCode);
        Assert.Contains("empty", await DetailAsync(empty));

        Assert.Equal(HttpStatusCode.BadRequest, (await PushAsync(s.Admin, "bad name", bytes)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await PushAsync(s.Admin, "m", bytes, project: "nope")).StatusCode);

        Assert.Equal(HttpStatusCode.Created, (await PushAsync(s.Admin, "m", bytes, "?version=1.0")).StatusCode);
        var dup = await PushAsync(s.Admin, "m", bytes, "?version=1.0");
        Assert.Equal(HttpStatusCode.Conflict, dup.StatusCode);
        Assert.Contains("already has version '1.0'", await DetailAsync(dup));
        var versions = await (await s.Admin.GetAsync($"{Models}/m/versions")).ReadAsync<List<VersionDto>>();
        Assert.Single(versions);
        Assert.Single(versions[0].Variants);
    }

    [Theory]
    [MemberData(nameof(TestServer.Backends), MemberType = typeof(TestServer))]
    public async Task ViewersAndOtherProjectsAreRefused(string backend)
    {
        await using var s = await TestServer.StartAsync(backend);
        (await s.Admin.PostAsJsonAsync(ApiRoutes.Projects, new CreateProjectRequest("other"), ProtocolJsonOptions.Options)).EnsureSuccessStatusCode();
        byte[] bytes = FmnistCnn();
        var v1 = await (await PushAsync(s.Admin, "fmnist", bytes)).ReadAsync<VersionDto>();

        var viewer = await TokenAsync(s, Roles.Viewer, "default");
        Assert.Equal(HttpStatusCode.OK, (await viewer.GetAsync($"{Models}/fmnist/versions/1")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await PushAsync(viewer, "fmnist", bytes)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await viewer.PutAsJsonAsync($"{Models}/fmnist/aliases/prod", new SetAliasRequest("1"), ProtocolJsonOptions.Options)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await viewer.PostAsJsonAsync(Models, new CreateModelRequest("x"), ProtocolJsonOptions.Options)).StatusCode);

        var outsider = await TokenAsync(s, Roles.Developer, "other");
        Assert.Equal(HttpStatusCode.Forbidden, (await outsider.GetAsync(Models)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await outsider.GetAsync($"{Models}/fmnist/versions/1")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await outsider.GetAsync($"{ApiRoutes.Project("default")}/variants/{v1.Variants[0].Id}")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await outsider.GetAsync($"{ApiRoutes.Project("default")}/artifacts/{v1.Variants[0].ArtifactSha256}")).StatusCode);
        var denied = await PushAsync(outsider, "fmnist", bytes);
        Assert.Equal(HttpStatusCode.Forbidden, denied.StatusCode);
        Assert.Contains("other", await DetailAsync(denied));
        // Its own project works, and does not see the artifact of project default through its own path.
        Assert.Equal(HttpStatusCode.OK, (await outsider.GetAsync(ApiRoutes.Project("other") + "/models")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await outsider.GetAsync($"{ApiRoutes.Project("other")}/artifacts/{v1.Variants[0].ArtifactSha256}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await outsider.GetAsync($"{ApiRoutes.Project("other")}/variants/{v1.Variants[0].Id}")).StatusCode);

        var developer = await TokenAsync(s, Roles.Developer, "default");
        Assert.Equal(HttpStatusCode.Created, (await PushAsync(developer, "fmnist", bytes)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await developer.PostAsync(ApiRoutes.SigningKeys + "/rotate", null)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await viewer.GetAsync(ApiRoutes.SigningKeys)).StatusCode);
    }

    [Theory]
    [MemberData(nameof(TestServer.Backends), MemberType = typeof(TestServer))]
    public async Task DerivedVariantsKeepLineageParametersAndMetrics(string backend)
    {
        await using var s = await TestServer.StartAsync(backend);
        byte[] bytes = FmnistCnn();
        var v1 = await (await PushAsync(s.Admin, "fmnist", bytes)).ReadAsync<VersionDto>();
        string baseId = v1.Variants[0].Id;

        var r = await AddVariantAsync(s.Admin, "fmnist", "1", bytes, "?name=folded&recipe=fold&param=passes=fold,fuse&param=level=2&metric=accuracy=0.873&metric=latency_us=812.5");
        Assert.Equal(HttpStatusCode.Created, r.StatusCode);
        var folded = await r.ReadAsync<VariantDto>();
        Assert.Equal(baseId, folded.ParentId);
        Assert.Equal("folded", folded.Name);
        Assert.Equal("fold", folded.Recipe);
        Assert.Equal("fold,fuse", folded.Parameters["passes"]);
        Assert.Equal("2", folded.Parameters["level"]);
        Assert.Equal(0.873, folded.Metrics["accuracy"]);
        Assert.Equal(812.5, folded.Metrics["latency_us"]);
        Assert.Equal(52_138, folded.Metadata.Parameters);
        Assert.False(string.IsNullOrEmpty(folded.ArtifactSignature));

        var child = await (await AddVariantAsync(s.Admin, "fmnist", "1", bytes, $"?name=int8&recipe=quantize&parent={folded.Id}&status=rejected&reason=accuracy%20drop")).ReadAsync<VariantDto>();
        Assert.Equal(folded.Id, child.ParentId);
        Assert.Equal("rejected", child.Status);
        Assert.Equal("accuracy drop", child.StatusReason);

        var fetched = await (await s.Admin.GetAsync($"{ApiRoutes.Project("default")}/variants/{child.Id}")).ReadAsync<VariantDto>();
        Assert.Equal(child.Id, fetched.Id);
        Assert.Equal(folded.Id, fetched.ParentId);
        var version = await (await s.Admin.GetAsync($"{Models}/fmnist/versions/1")).ReadAsync<VersionDto>();
        Assert.Equal(["base", "folded", "int8"], version.Variants.Select(v => v.Name).Order());

        // A parent from another version is refused, so are duplicates, garbage and unknown versions.
        var v2 = await (await PushAsync(s.Admin, "fmnist", bytes)).ReadAsync<VersionDto>();
        var wrongParent = await AddVariantAsync(s.Admin, "fmnist", "1", bytes, $"?name=x&recipe=r&parent={v2.Variants[0].Id}");
        Assert.Equal(HttpStatusCode.BadRequest, wrongParent.StatusCode);
        Assert.Contains("is not a variant of version '1'", await DetailAsync(wrongParent));
        Assert.Equal(HttpStatusCode.Conflict, (await AddVariantAsync(s.Admin, "fmnist", "1", bytes, "?name=folded&recipe=fold")).StatusCode);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, (await AddVariantAsync(s.Admin, "fmnist", "1", [1, 2, 3, 4], "?name=y&recipe=r")).StatusCode);
        var noVersion = await AddVariantAsync(s.Admin, "fmnist", "9", bytes, "?name=y&recipe=r");
        Assert.Equal(HttpStatusCode.NotFound, noVersion.StatusCode);
        Assert.Contains("versions: 1, 2", await DetailAsync(noVersion));
        Assert.Equal(HttpStatusCode.BadRequest, (await AddVariantAsync(s.Admin, "fmnist", "1", bytes, "?name=y")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await AddVariantAsync(s.Admin, "fmnist", "1", bytes, "?name=y&recipe=r&metric=accuracy=high")).StatusCode);
        version = await (await s.Admin.GetAsync($"{Models}/fmnist/versions/1")).ReadAsync<VersionDto>();
        Assert.Equal(3, version.Variants.Count);
    }

    [Theory]
    [MemberData(nameof(TestServer.Backends), MemberType = typeof(TestServer))]
    public async Task ArtifactDownloadMatchesDigestAndSupportsRange(string backend)
    {
        await using var s = await TestServer.StartAsync(backend);
        byte[] bytes = FmnistCnn();
        var v1 = await (await PushAsync(s.Admin, "fmnist", bytes)).ReadAsync<VersionDto>();
        string sha = v1.Variants[0].ArtifactSha256;
        string url = $"{ApiRoutes.Project("default")}/artifacts/{sha}";

        var full = await s.Admin.GetAsync(url);
        Assert.Equal(HttpStatusCode.OK, full.StatusCode);
        var body = await full.Content.ReadAsByteArrayAsync();
        Assert.Equal(sha, Convert.ToHexStringLower(SHA256.HashData(body)));
        Assert.Equal("bytes", full.Headers.AcceptRanges.Single());

        var req = new HttpRequestMessage(HttpMethod.Get, url);
        req.Headers.Range = new RangeHeaderValue(1000, null);
        var part = await s.Admin.SendAsync(req);
        Assert.Equal(HttpStatusCode.PartialContent, part.StatusCode);
        var tail = await part.Content.ReadAsByteArrayAsync();
        Assert.Equal(bytes[1000..], tail);
        Assert.Equal(bytes.Length, part.Content.Headers.ContentRange!.Length);

        Assert.Equal(HttpStatusCode.NotFound, (await s.Admin.GetAsync($"{ApiRoutes.Project("default")}/artifacts/{new string('0', 64)}")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await s.Admin.GetAsync($"{ApiRoutes.Project("default")}/artifacts/not-a-digest")).StatusCode);
    }

    [Theory]
    [MemberData(nameof(TestServer.Backends), MemberType = typeof(TestServer))]
    public async Task RotatedKeyKeepsOldSignaturesVerifiable(string backend)
    {
        await using var s = await TestServer.StartAsync(backend);
        byte[] bytes = FmnistCnn();
        var before = await (await PushAsync(s.Admin, "fmnist", bytes)).ReadAsync<VersionDto>();
        var firstKeys = await (await s.Admin.GetAsync(ApiRoutes.SigningKeys)).ReadAsync<List<SigningKeyInfo>>();
        var first = Assert.Single(firstKeys);
        Assert.Equal(first.KeyId, before.Variants[0].SigningKeyId);
        var trust = new TrustStore([first]);
        Assert.True(trust.VerifyArtifact(before.Variants[0].ArtifactSha256, before.Variants[0].SigningKeyId, before.Variants[0].ArtifactSignature));

        var rotated = await (await s.Admin.PostAsync(ApiRoutes.SigningKeys + "/rotate", null)).ReadAsync<SigningKeyInfo>();
        Assert.NotEqual(first.KeyId, rotated.KeyId);
        Assert.Equal(first.KeyId, rotated.EndorsedBy);

        var after = await (await PushAsync(s.Admin, "fmnist", bytes)).ReadAsync<VersionDto>();
        var derived = await (await AddVariantAsync(s.Admin, "fmnist", "1", bytes, "?name=late&recipe=fold")).ReadAsync<VariantDto>();
        Assert.Equal(rotated.KeyId, after.Variants[0].SigningKeyId);
        Assert.Equal(rotated.KeyId, derived.SigningKeyId);
        Assert.False(trust.VerifyArtifact(after.Variants[0].ArtifactSha256, rotated.KeyId, after.Variants[0].ArtifactSignature));

        var published = await (await s.Admin.GetAsync(ApiRoutes.SigningKeys)).ReadAsync<List<SigningKeyInfo>>();
        Assert.Equal([first.KeyId, rotated.KeyId], published.Select(k => k.KeyId));
        Assert.Equal(1, trust.Accept(published));
        var old = await (await s.Admin.GetAsync($"{ApiRoutes.Project("default")}/variants/{before.Variants[0].Id}")).ReadAsync<VariantDto>();
        Assert.True(trust.VerifyArtifact(old.ArtifactSha256, old.SigningKeyId, old.ArtifactSignature));
        Assert.True(trust.VerifyArtifact(after.Variants[0].ArtifactSha256, after.Variants[0].SigningKeyId, after.Variants[0].ArtifactSignature));
        Assert.True(trust.VerifyArtifact(derived.ArtifactSha256, derived.SigningKeyId, derived.ArtifactSignature));
        Assert.False(trust.VerifyArtifact(new string('a', 64), old.SigningKeyId, old.ArtifactSignature));

        // A forged key that nobody endorsed is not accepted.
        using var forged = SigningKey.Generate(DateTimeOffset.UtcNow);
        Assert.Equal(0, trust.Accept([new SigningKeyInfo { KeyId = forged.KeyId, PublicKey = forged.PublicKey, EndorsedBy = first.KeyId, Endorsement = forged.Endorse(forged) }]));
    }

    [Theory]
    [MemberData(nameof(TestServer.Backends), MemberType = typeof(TestServer))]
    public async Task MutationsAreAudited(string backend)
    {
        await using var s = await TestServer.StartAsync(backend);
        byte[] bytes = FmnistCnn();
        var v1 = await (await PushAsync(s.Admin, "fmnist", bytes, "?alias=production")).ReadAsync<VersionDto>();
        var variant = await (await AddVariantAsync(s.Admin, "fmnist", "1", bytes, "?name=folded&recipe=fold")).ReadAsync<VariantDto>();
        (await s.Admin.PutAsJsonAsync($"{Models}/fmnist/aliases/staging", new SetAliasRequest("1"), ProtocolJsonOptions.Options)).EnsureSuccessStatusCode();
        (await s.Admin.DeleteAsync($"{Models}/fmnist/aliases/staging")).EnsureSuccessStatusCode();
        (await s.Admin.PostAsJsonAsync(Models, new CreateModelRequest("other-model"), ProtocolJsonOptions.Options)).EnsureSuccessStatusCode();
        var rotated = await (await s.Admin.PostAsync(ApiRoutes.SigningKeys + "/rotate", null)).ReadAsync<SigningKeyInfo>();
        await PushAsync(s.Admin, "refused", [9, 9, 9]);

        var audit = await (await s.Admin.GetAsync($"{ApiRoutes.Audit}?project=default")).ReadAsync<List<AuditEntryDto>>();
        Assert.Contains(audit, a => a.Action == "model.create" && a.Target == "fmnist");
        Assert.Contains(audit, a => a.Action == "version.push" && a.Target == "fmnist:1" && a.Detail.Contains(v1.Variants[0].Id) && a.Actor == "token:admin");
        Assert.Contains(audit, a => a.Action == "alias.set" && a.Target == "fmnist@production");
        Assert.Contains(audit, a => a.Action == "variant.register" && a.Target == variant.Id);
        Assert.Contains(audit, a => a.Action == "alias.set" && a.Target == "fmnist@staging");
        Assert.Contains(audit, a => a.Action == "alias.delete" && a.Target == "fmnist@staging");
        Assert.Contains(audit, a => a.Action == "model.create" && a.Target == "other-model");
        Assert.DoesNotContain(audit, a => a.Target.Contains("refused"));
        var all = await (await s.Admin.GetAsync(ApiRoutes.Audit)).ReadAsync<List<AuditEntryDto>>();
        Assert.Contains(all, a => a.Action == "signing-key.rotate" && a.Target == rotated.KeyId);
    }

    [Theory]
    [MemberData(nameof(TestServer.Backends), MemberType = typeof(TestServer))]
    public async Task ConcurrentPushesTakeDistinctVersions(string backend)
    {
        await using var s = await TestServer.StartAsync(backend);
        byte[] bytes = FmnistCnn();
        var responses = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => PushAsync(s.Admin, "race", bytes)));
        var versions = new List<string>();
        foreach (var r in responses) versions.Add((await r.ReadAsync<VersionDto>()).Version);
        Assert.Equal(["1", "2", "3", "4"], versions.Order());
        var model = await (await s.Admin.GetAsync($"{Models}/race")).ReadAsync<ModelDto>();
        Assert.Equal(4, model.VersionCount);
    }

    [Fact]
    public async Task OpenApiDocumentListsRegistryEndpoints()
    {
        await using var s = await TestServer.StartAsync("sqlite");
        var doc = await s.Client(null).GetStringAsync("/openapi/v1.json");
        Assert.Contains("/api/v1/projects/{project}/models/{model}/versions", doc);
        Assert.Contains("/api/v1/signing-keys/rotate", doc);
        Assert.Contains("application/octet-stream", doc);
    }
}
