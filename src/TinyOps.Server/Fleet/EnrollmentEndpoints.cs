using System.Data.Common;
using System.Security.Cryptography;
using System.Text.Json;
using Dapper;
using TinyOps.Protocol;
using TinyOps.Protocol.Devices;
using TinyOps.Protocol.Management;
using TinyOps.Server.Access;
using TinyOps.Server.Hosting;
using TinyOps.Server.Registry;
using TinyOps.Server.Storage;

namespace TinyOps.Server.Fleet;

/// <summary>Enrollment tokens (management API) and device enrollment (device API, authenticated by the token alone).</summary>
public static class EnrollmentEndpoints
{
    public const int MaxUses = 100_000;
    public const int MaxValidHours = 24 * 366;

    public static void Map(WebApplication app)
    {
        app.MapPost(ApiRoutes.Projects + "/{project}/enrollment-tokens", CreateTokenAsync).WithTags("fleet")
            .WithSummary("Creates an enrollment token (shown once) for devices of the project");
        app.MapPost(ApiRoutes.Enroll, EnrollAsync).WithTags("fleet")
            .WithSummary("Enrolls a device: registers its public key with an enrollment token");
    }

    private static async Task<IResult> CreateTokenAsync(HttpContext http, string project, CreateEnrollmentTokenRequest req, Database db, AuditLog audit)
    {
        var u = UserContext.From(http);
        u.RequireWrite(project);
        if (req.Uses is < 1 or > MaxUses) throw ApiException.BadRequest($"uses must be between 1 and {MaxUses} ({req.Uses} given)");
        if (req.ValidHours is < 1 or > MaxValidHours) throw ApiException.BadRequest($"validHours must be between 1 and {MaxValidHours} ({req.ValidHours} given)");
        var tags = DeviceStore.NormalizeTags(req.Tags);

        string secret = ApiTokens.NewSecret("tenr_");
        long now = Database.Now();
        long expires = now + req.ValidHours * 3_600_000L;
        await using var c = await db.OpenAsync(http.RequestAborted);
        if (await c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM projects WHERE name = @project", new { project }) == 0)
            throw ApiException.NotFound($"project '{project}' does not exist");
        await using var tx = await db.BeginWriteAsync(c, http.RequestAborted);
        await c.ExecuteAsync("""
            INSERT INTO enrollment_tokens (token_hash, project, uses_left, expires_at, tags_json, created_by, created_at)
            VALUES (@hash, @project, @uses, @expires, @tags, @by, @now)
            """, new { hash = ApiTokens.Hash(secret), project, uses = req.Uses, expires, tags = DeviceStore.TagsJson(tags), by = u.Actor, now }, tx);
        string hashPrefix = ApiTokens.Hash(secret)[..12];
        await audit.RecordAsync(u.Actor, "enrollment-token.create", "enr:" + hashPrefix, project,
            $"uses {req.Uses}, valid {req.ValidHours} h, tags [{string.Join(", ", tags)}]", c, tx);
        await tx.CommitAsync(http.RequestAborted);
        return Results.Created((string?)null, new EnrollmentTokenDto(secret, project, req.Uses, Database.ToTime(expires)));
    }

    private static async Task<EnrollResponse> EnrollAsync(HttpContext http, EnrollRequest req, Database db, AuditLog audit, SigningKeyRing ring, ServerOptions options)
    {
        if (string.IsNullOrWhiteSpace(req.EnrollmentToken))
            throw ApiException.Unauthorized("an enrollment token is required (enrollmentToken); create one with POST /api/v1/projects/{project}/enrollment-tokens");
        Names.Require(req.Name, "device name");
        ValidatePublicKey(req.PublicKey);
        var requestTags = DeviceStore.NormalizeTags(req.Tags);
        string capabilities = JsonSerializer.Serialize(req.Capabilities ?? new DeviceCapabilities(), ProtocolJson.Default.DeviceCapabilities);

        string hash = ApiTokens.Hash(req.EnrollmentToken.Trim());
        long now = Database.Now();
        string id = "dev_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
        string project;
        await using (var c = await db.OpenAsync(http.RequestAborted))
        {
            await using var tx = await db.BeginWriteAsync(c, http.RequestAborted);
            // Take one use, atomically: two devices racing for the last use cannot both get it.
            int taken = await c.ExecuteAsync(
                "UPDATE enrollment_tokens SET uses_left = uses_left - 1 WHERE token_hash = @hash AND uses_left > 0 AND expires_at > @now",
                new { hash, now }, tx);
            var token = await c.QuerySingleOrDefaultAsync<TokenRow>(
                "SELECT project, uses_left, expires_at, tags_json FROM enrollment_tokens WHERE token_hash = @hash", new { hash }, tx);
            if (token is null)
                throw ApiException.Unauthorized("the enrollment token is unknown; check it was copied whole, or create a new one");
            if (taken == 0)
            {
                if (token.expires_at <= now)
                    throw ApiException.Forbidden($"the enrollment token expired at {Database.ToTime(token.expires_at):u}; create a new one");
                throw ApiException.Forbidden("the enrollment token has no uses left; create a new one");
            }
            project = token.project;
            if (await c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM devices WHERE project = @project AND name = @name", new { project, name = req.Name }, tx) > 0)
                throw NameTaken(project, req.Name);

            var tags = DeviceStore.ParseTags(token.tags_json);
            foreach (var t in requestTags) if (!tags.Contains(t)) tags.Add(t);
            try
            {
                await c.ExecuteAsync($"""
                    INSERT INTO devices (id, project, name, public_key, tags_json, capabilities_json, reported_json, enrolled_at, last_seen_at, revoked)
                    VALUES (@id, @project, @name, @pub, @tags, @caps, NULL, @now, @now, 0)
                    """, new { id, project, name = req.Name, pub = req.PublicKey, tags = DeviceStore.TagsJson(tags), caps = capabilities, now }, tx);
            }
            catch (DbException e) when (DeviceStore.IsUniqueViolation(e))
            {
                throw NameTaken(project, req.Name);
            }
            await audit.RecordAsync("device-enroll", "device.enroll", id, project,
                $"name {req.Name}, class {req.Capabilities?.DeviceClass}, tags [{string.Join(", ", tags)}], token enr:{hash[..12]}", c, tx);
            await tx.CommitAsync(http.RequestAborted);
        }
        return new EnrollResponse
        {
            DeviceId = id,
            Project = project,
            SigningKeys = await ring.PublishedAsync(http.RequestAborted),
            PollSeconds = options.DevicePollSeconds,
        };
    }

    private sealed class TokenRow
    {
        public string project { get; set; } = "";
        public long uses_left { get; set; }
        public long expires_at { get; set; }
        public string tags_json { get; set; } = "[]";
    }

    private static ApiException NameTaken(string project, string name) =>
        ApiException.Conflict($"project '{project}' already has a device named '{name}'; choose another name, or revoke and rename the old one");

    /// <summary>The device key must be an ECDSA P-256 SubjectPublicKeyInfo (DER, base64).</summary>
    public static void ValidatePublicKey(string? publicKey)
    {
        if (string.IsNullOrWhiteSpace(publicKey))
            throw ApiException.BadRequest("publicKey is required: the device's ECDSA P-256 public key as SubjectPublicKeyInfo DER, base64");
        byte[] der;
        try { der = Convert.FromBase64String(publicKey); }
        catch (FormatException) { throw ApiException.BadRequest("publicKey is not base64; send the SubjectPublicKeyInfo DER of an ECDSA P-256 key, base64"); }
        try
        {
            using var key = ECDsa.Create();
            key.ImportSubjectPublicKeyInfo(der, out int read);
            if (read != der.Length) throw ApiException.BadRequest("publicKey has trailing bytes after the SubjectPublicKeyInfo");
            var oid = key.ExportParameters(false).Curve.Oid;
            bool p256 = oid?.Value == "1.2.840.10045.3.1.7"
                || oid?.FriendlyName is "nistP256" or "ECDSA_P256" or "prime256v1" or "secp256r1";
            if (!p256)
                throw ApiException.BadRequest($"publicKey must be on curve P-256 (got {oid?.FriendlyName ?? oid?.Value ?? "an unnamed curve"}, {key.KeySize} bits)");
        }
        catch (CryptographicException e)
        {
            throw ApiException.BadRequest($"publicKey is not an ECDSA SubjectPublicKeyInfo: {e.Message}");
        }
    }
}
