using System.Text.Json;
using Dapper;
using TinyOps.Protocol;
using TinyOps.Protocol.Management;
using TinyOps.Server.Access;
using TinyOps.Server.Storage;

namespace TinyOps.Server.Hosting;

/// <summary>The control plane: builds, starts and stops the ASP.NET Core application.</summary>
public sealed class TinyOpsServer : IAsyncDisposable
{
    private TinyOpsServer(WebApplication app, ServerOptions options, string baseUrl, string? adminToken)
    {
        App = app;
        Options = options;
        BaseUrl = baseUrl;
        AdminToken = adminToken;
    }

    public WebApplication App { get; }
    public ServerOptions Options { get; }

    /// <summary>The first URL Kestrel listens on, e.g. http://127.0.0.1:41234.</summary>
    public string BaseUrl { get; }

    /// <summary>The admin token created by this start (first start on an empty data directory), else null.</summary>
    public string? AdminToken { get; }

    public Database Database => App.Services.GetRequiredService<Database>();

    public static async Task<TinyOpsServer> StartAsync(ServerOptions options, CancellationToken ct = default)
    {
        Directory.CreateDirectory(options.DataDirectory);
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ContentRootPath = options.DataDirectory });
        builder.WebHost.UseUrls(options.Urls);
        builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = options.MaxArtifactBytes);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Services.ConfigureHttpJsonOptions(o => o.SerializerOptions.TypeInfoResolverChain.Insert(0, ProtocolJson.Default));
        builder.Services.AddOpenApi();
        builder.Services.AddResponseCompression(o =>
        {
            o.EnableForHttps = true;
            o.MimeTypes = ["application/json", "application/problem+json", "text/html", "text/javascript", "text/css"];
        });
        builder.Services.AddSingleton(options);
        Database db = options.PostgresConnectionString is { Length: > 0 } pg
            ? new PostgresDatabase(pg)
            : new SqliteDatabase(Path.Combine(options.DataDirectory, "tinyops.db"));
        builder.Services.AddSingleton(db);
        builder.Services.AddSingleton(new BlobStore(Path.Combine(options.DataDirectory, "blobs")));
        builder.Services.AddSingleton<ApiTokens>();
        builder.Services.AddSingleton<AuditLog>();
        Features.AddServices(builder.Services);

        var app = builder.Build();
        app.UseResponseCompression();
        app.UseMiddleware<ErrorMiddleware>();
        app.UseMiddleware<BearerAuthMiddleware>();
        app.MapOpenApi();
        app.MapGet(ApiRoutes.Health, () => Results.Ok(new Dictionary<string, string> { ["status"] = "ok" })).WithTags("health");
        AccessEndpoints.Map(app);
        Features.Map(app);

        await db.MigrateAsync(ct);
        string? adminToken = await BootstrapAsync(app.Services, ct);
        await Features.StartAsync(app.Services, ct);
        await app.StartAsync(ct);
        string url = app.Urls.First();
        if (adminToken is not null) options.Announce($"admin token: {adminToken}");
        return new TinyOpsServer(app, options, url, adminToken);
    }

    /// <summary>On an empty store: a default project and an admin token, shown once.</summary>
    private static async Task<string?> BootstrapAsync(IServiceProvider services, CancellationToken ct)
    {
        var db = services.GetRequiredService<Database>();
        var tokens = services.GetRequiredService<ApiTokens>();
        await using var c = await db.OpenAsync(ct);
        if (await c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM projects") == 0)
            await c.ExecuteAsync("INSERT INTO projects (name, description, created_at) VALUES ('default', 'created at first start', @now)", new { now = Database.Now() });
        if (await tokens.AnyAsync(ct)) return null;
        var created = await tokens.CreateAsync("admin", Roles.Admin, null, ct);
        await services.GetRequiredService<AuditLog>().RecordAsync("server", "token.create", created.Token.Id, null, "initial admin token");
        return created.Secret;
    }

    public async Task StopAsync()
    {
        await App.StopAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await App.StopAsync();
        await App.DisposeAsync();
    }
}

/// <summary>Turns <see cref="ApiException"/> and bad JSON into problem details; never leaks a stack trace.</summary>
internal sealed class ErrorMiddleware(RequestDelegate next, ILogger<ErrorMiddleware> log)
{
    public async Task InvokeAsync(HttpContext http)
    {
        try
        {
            await next(http);
        }
        catch (ApiException e)
        {
            await WriteAsync(http, e.Status, e.Title, e.Message, e.Field);
        }
        catch (BadHttpRequestException e)
        {
            await WriteAsync(http, e.StatusCode, "bad request", e.Message);
        }
        catch (JsonException e)
        {
            await WriteAsync(http, 400, "bad request", $"the JSON body is malformed: {e.Message}");
        }
        catch (Exception e) when (!http.RequestAborted.IsCancellationRequested)
        {
            log.LogError(e, "unhandled error on {Path}", http.Request.Path);
            await WriteAsync(http, 500, "internal error", $"the server failed: {e.GetType().Name}: {e.Message}");
        }
    }

    private static async Task WriteAsync(HttpContext http, int status, string title, string detail, string? field = null)
    {
        if (http.Response.HasStarted) return;
        http.Response.Clear();
        http.Response.StatusCode = status;
        http.Response.ContentType = "application/problem+json";
        await JsonSerializer.SerializeAsync(http.Response.Body, new ProblemDetailsDto { Title = title, Status = status, Detail = detail, Field = field }, ProtocolJson.Default.ProblemDetailsDto);
    }
}

/// <summary>Resolves "Authorization: Bearer" on management paths into a <see cref="UserContext"/>; device paths use device signatures.</summary>
internal sealed class BearerAuthMiddleware(RequestDelegate next, ApiTokens tokens)
{
    public async Task InvokeAsync(HttpContext http)
    {
        var path = http.Request.Path.Value ?? "";
        bool management = path.StartsWith(ApiRoutes.Prefix, StringComparison.Ordinal)
            && !path.StartsWith(ApiRoutes.Prefix + "/device/", StringComparison.Ordinal)
            && path != ApiRoutes.Health;
        if (management)
        {
            string? header = http.Request.Headers.Authorization;
            if (header is null || !header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
                throw ApiException.Unauthorized("an API token is required (Authorization: Bearer <token>)");
            var user = await tokens.AuthenticateAsync(header["Bearer ".Length..].Trim(), http.RequestAborted)
                ?? throw ApiException.Unauthorized("the API token is unknown or revoked");
            http.Items[UserContext.ItemKey] = user;
            if (!HttpMethods.IsGet(http.Request.Method) && !HttpMethods.IsHead(http.Request.Method) && user.Role == Roles.Viewer)
                throw ApiException.Forbidden($"token '{user.Name}' has role viewer, which cannot change anything");
        }
        await next(http);
    }
}
