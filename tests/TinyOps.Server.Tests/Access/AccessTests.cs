using System.Net;
using System.Net.Http.Json;
using TinyOps.Protocol;
using TinyOps.Protocol.Management;
using Xunit;

namespace TinyOps.Server.Tests.Access;

public sealed class AccessTests
{
    [Theory]
    [MemberData(nameof(TestServer.Backends), MemberType = typeof(TestServer))]
    public async Task AdminTokenWorksAndIsStoredHashed(string backend)
    {
        await using var s = await TestServer.StartAsync(backend);
        var me = await (await s.Admin.GetAsync(ApiRoutes.Whoami)).ReadAsync<WhoamiDto>();
        Assert.Equal(Roles.Admin, me.Role);
        if (backend == "sqlite")
        {
            var dbBytes = await File.ReadAllBytesAsync(Path.Combine(s.DataDirectory, "tinyops.db"));
            Assert.DoesNotContain(s.Server.AdminToken!, System.Text.Encoding.UTF8.GetString(dbBytes));
        }
    }

    [Theory]
    [MemberData(nameof(TestServer.Backends), MemberType = typeof(TestServer))]
    public async Task MissingOrWrongTokenIsUnauthorized(string backend)
    {
        await using var s = await TestServer.StartAsync(backend);
        Assert.Equal(HttpStatusCode.Unauthorized, (await s.Client(null).GetAsync(ApiRoutes.Projects)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await s.Client("tops_nope").GetAsync(ApiRoutes.Projects)).StatusCode);
    }

    [Theory]
    [MemberData(nameof(TestServer.Backends), MemberType = typeof(TestServer))]
    public async Task ViewerCannotMutateAndRevokedTokenStops(string backend)
    {
        await using var s = await TestServer.StartAsync(backend);
        var created = await (await s.Admin.PostAsJsonAsync(ApiRoutes.Tokens, new CreateTokenRequest("v", Roles.Viewer, "default"), ProtocolJsonOptions.Options)).ReadAsync<CreatedTokenDto>();
        var viewer = s.Client(created.Secret);
        Assert.Equal(HttpStatusCode.OK, (await viewer.GetAsync(ApiRoutes.Projects)).StatusCode);
        var denied = await viewer.PostAsJsonAsync(ApiRoutes.Projects, new CreateProjectRequest("p2"), ProtocolJsonOptions.Options);
        Assert.Equal(HttpStatusCode.Forbidden, denied.StatusCode);
        Assert.Contains("viewer", await denied.Content.ReadAsStringAsync());

        (await s.Admin.PostAsync($"{ApiRoutes.Tokens}/{created.Token.Id}/revoke", null)).EnsureSuccessStatusCode();
        Assert.Equal(HttpStatusCode.Unauthorized, (await viewer.GetAsync(ApiRoutes.Projects)).StatusCode);

        var audit = await (await s.Admin.GetAsync(ApiRoutes.Audit)).ReadAsync<List<AuditEntryDto>>();
        Assert.Contains(audit, a => a.Action == "token.revoke" && a.Target == created.Token.Id);
        Assert.Contains(audit, a => a.Action == "token.create" && a.Target == created.Token.Id);
    }

    [Theory]
    [MemberData(nameof(TestServer.Backends), MemberType = typeof(TestServer))]
    public async Task ProjectScopedTokenCannotReadOtherProjects(string backend)
    {
        await using var s = await TestServer.StartAsync(backend);
        (await s.Admin.PostAsJsonAsync(ApiRoutes.Projects, new CreateProjectRequest("other"), ProtocolJsonOptions.Options)).EnsureSuccessStatusCode();
        var dev = await (await s.Admin.PostAsJsonAsync(ApiRoutes.Tokens, new CreateTokenRequest("d", Roles.Developer, "default"), ProtocolJsonOptions.Options)).ReadAsync<CreatedTokenDto>();
        var projects = await (await s.Client(dev.Secret).GetAsync(ApiRoutes.Projects)).ReadAsync<List<ProjectDto>>();
        Assert.Equal(["default"], projects.Select(p => p.Name));
        Assert.Equal(HttpStatusCode.Forbidden, (await s.Client(dev.Secret).GetAsync($"{ApiRoutes.Audit}?project=other")).StatusCode);
    }

    [Fact]
    public async Task OpenApiDocumentIsServed()
    {
        await using var s = await TestServer.StartAsync("sqlite");
        var doc = await s.Client(null).GetStringAsync("/openapi/v1.json");
        Assert.Contains(ApiRoutes.Projects, doc);
    }

    [Fact]
    public async Task JsonIsGzippedForClientsThatAskForIt()
    {
        await using var s = await TestServer.StartAsync("sqlite");
        using var req = new HttpRequestMessage(HttpMethod.Get, ApiRoutes.Audit);
        req.Headers.AcceptEncoding.ParseAdd("gzip");
        using var r = await s.Admin.SendAsync(req);
        r.EnsureSuccessStatusCode();
        Assert.Contains("gzip", r.Content.Headers.ContentEncoding);
    }
}
