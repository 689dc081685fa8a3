using System.Globalization;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Net.Http.Headers;
using TinyOps.Protocol;
using TinyOps.Protocol.Management;
using TinyOps.Server.Access;
using TinyOps.Server.Hosting;
using TinyOps.Server.Storage;

namespace TinyOps.Server.Registry;

/// <summary>The registry's management API: models, versions, variants, aliases, artifacts and signing keys.</summary>
public static class RegistryEndpoints
{
    public static void Map(WebApplication app)
    {
        var g = app.MapGroup(ApiRoutes.Projects + "/{project}").WithTags("registry");

        g.MapGet("/models", async (HttpContext http, string project, RegistryService reg) =>
        {
            UserContext.From(http).RequireRead(project);
            return await reg.ListModelsAsync(project, http.RequestAborted);
        });

        g.MapPost("/models", async (HttpContext http, string project, CreateModelRequest req, RegistryService reg) =>
        {
            var u = UserContext.From(http);
            u.RequireWrite(project);
            var dto = await reg.CreateModelAsync(u, project, req, http.RequestAborted);
            return Results.Created($"{ApiRoutes.Project(project)}/models/{Uri.EscapeDataString(dto.Name)}", dto);
        });

        g.MapGet("/models/{model}", async (HttpContext http, string project, string model, RegistryService reg) =>
        {
            UserContext.From(http).RequireRead(project);
            return await reg.GetModelAsync(project, model, http.RequestAborted);
        });

        g.MapPost("/models/{model}/versions", async (HttpContext http, string project, string model, string? version, string? notes, string? alias, string? description,
            RegistryService reg, ServerOptions options) =>
        {
            var u = UserContext.From(http);
            u.RequireWrite(project);
            byte[] bytes = await ReadBodyAsync(http, options.MaxArtifactBytes);
            var dto = await reg.PushVersionAsync(u, project, model, Empty(version), notes, Empty(alias), description, bytes, http.RequestAborted);
            return Results.Created($"{ApiRoutes.Project(project)}/models/{Uri.EscapeDataString(model)}/versions/{Uri.EscapeDataString(dto.Version)}", dto);
        }).Accepts<byte[]>("application/octet-stream").Produces<VersionDto>(StatusCodes.Status201Created);

        g.MapGet("/models/{model}/versions", async (HttpContext http, string project, string model, RegistryService reg) =>
        {
            UserContext.From(http).RequireRead(project);
            return await reg.ListVersionsAsync(project, model, http.RequestAborted);
        });

        g.MapGet("/models/{model}/versions/{versionOrAlias}", async (HttpContext http, string project, string model, string versionOrAlias, RegistryService reg) =>
        {
            UserContext.From(http).RequireRead(project);
            return await reg.GetVersionAsync(project, model, versionOrAlias, http.RequestAborted);
        });

        g.MapPost("/models/{model}/versions/{version}/variants", async (HttpContext http, string project, string model, string version,
            string? name, string? parent, string? recipe, [FromQuery] string[]? param, [FromQuery] string[]? metric, string? status, string? reason,
            RegistryService reg, ServerOptions options) =>
        {
            var u = UserContext.From(http);
            u.RequireWrite(project);
            if (Empty(recipe) is null) throw ApiException.BadRequest("?recipe= is required: how the variant was made (e.g. int8, pruned-50)");
            var parameters = new SortedDictionary<string, string>(StringComparer.Ordinal);
            foreach (var p in param ?? [])
            {
                var (k, v) = SplitPair(p, "param");
                parameters[k] = v;
            }
            var metrics = new SortedDictionary<string, double>(StringComparer.Ordinal);
            foreach (var m in metric ?? [])
            {
                var (k, v) = SplitPair(m, "metric");
                if (!double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) || !double.IsFinite(d))
                    throw ApiException.BadRequest($"metric '{m}': '{v}' is not a number; use metric=name=value, e.g. metric=accuracy=0.91");
                metrics[k] = d;
            }
            byte[] bytes = await ReadBodyAsync(http, options.MaxArtifactBytes);
            var upload = new VariantUpload(Empty(name) ?? recipe!, Empty(parent), recipe!, new Dictionary<string, string>(parameters), new Dictionary<string, double>(metrics),
                Empty(status) ?? "accepted", Empty(reason));
            var dto = await reg.AddVariantAsync(u.Actor, project, model, version, upload, bytes, http.RequestAborted);
            return Results.Created($"{ApiRoutes.Project(project)}/variants/{dto.Id}", dto);
        }).Accepts<byte[]>("application/octet-stream").Produces<VariantDto>(StatusCodes.Status201Created);

        g.MapPut("/models/{model}/aliases/{alias}", async (HttpContext http, string project, string model, string alias, SetAliasRequest req, RegistryService reg) =>
        {
            var u = UserContext.From(http);
            u.RequireWrite(project);
            return await reg.SetAliasAsync(u, project, model, alias, req.Version, http.RequestAborted);
        });

        g.MapDelete("/models/{model}/aliases/{alias}", async (HttpContext http, string project, string model, string alias, RegistryService reg) =>
        {
            var u = UserContext.From(http);
            u.RequireWrite(project);
            await reg.DeleteAliasAsync(u, project, model, alias, http.RequestAborted);
            return Results.NoContent();
        });

        g.MapGet("/variants/{variantId}", async (HttpContext http, string project, string variantId, RegistryService reg) =>
        {
            UserContext.From(http).RequireRead(project);
            return await reg.GetVariantAsync(project, variantId, http.RequestAborted);
        });

        g.MapGet("/artifacts/{sha256}", async (HttpContext http, string project, string sha256, RegistryService reg, BlobStore blobs) =>
        {
            UserContext.From(http).RequireRead(project);
            if (!BlobStore.IsDigest(sha256)) throw ApiException.BadRequest($"'{sha256}' is not a lower-case hex SHA-256 digest");
            if (!await reg.ArtifactBelongsAsync(project, sha256, http.RequestAborted) || !blobs.Exists(sha256))
                throw ApiException.NotFound($"project '{project}' has no artifact {sha256}");
            return Results.File(blobs.OpenRead(sha256), "application/octet-stream", fileDownloadName: sha256 + ".onnx",
                entityTag: new EntityTagHeaderValue($"\"{sha256}\""), enableRangeProcessing: true);
        }).Produces(StatusCodes.Status200OK, contentType: "application/octet-stream");

        var keys = app.MapGroup(ApiRoutes.SigningKeys).WithTags("registry");
        keys.MapGet("", async (HttpContext http, SigningKeyRing ring) =>
        {
            _ = UserContext.From(http);
            return await ring.PublishedAsync(http.RequestAborted);
        });
        keys.MapPost("/rotate", async (HttpContext http, SigningKeyRing ring, AuditLog audit) =>
        {
            var u = UserContext.From(http);
            u.RequireAdmin();
            var before = await ring.CurrentAsync(http.RequestAborted);
            var next = await ring.RotateAsync(http.RequestAborted);
            await audit.RecordAsync(u.Actor, "signing-key.rotate", next.KeyId, null, $"endorsed by {before.KeyId}");
            return next;
        });
    }

    private static string? Empty(string? s) => string.IsNullOrWhiteSpace(s) ? null : s;

    private static (string Key, string Value) SplitPair(string text, string what)
    {
        int eq = text.IndexOf('=');
        if (eq <= 0) throw ApiException.BadRequest($"{what} '{text}' is not of the form name=value");
        return (text[..eq], text[(eq + 1)..]);
    }

    /// <summary>Reads the raw request body (the artifact bytes).</summary>
    private static async Task<byte[]> ReadBodyAsync(HttpContext http, long limit)
    {
        var type = http.Request.ContentType;
        if (type is not null && (type.StartsWith("multipart/", StringComparison.OrdinalIgnoreCase) || type.StartsWith("application/x-www-form-urlencoded", StringComparison.OrdinalIgnoreCase)))
            throw ApiException.BadRequest($"send the ONNX file's raw bytes as the body (Content-Type: application/octet-stream), not {type}");
        if (http.Request.ContentLength > limit)
            throw new ApiException(413, "payload too large", $"the artifact is {http.Request.ContentLength} bytes; this server accepts at most {limit}");
        using var ms = new MemoryStream();
        await http.Request.Body.CopyToAsync(ms, http.RequestAborted);
        if (ms.Length == 0) throw ApiException.BadRequest("the body is empty; send the ONNX file's bytes (Content-Type: application/octet-stream)");
        return ms.ToArray();
    }
}
