using System.Security.Cryptography;
using System.Text;
using TinyOps.Protocol.Manifests;

namespace TinyOps.Trust.Signing;

/// <summary>An ECDSA P-256 key of the registry: its id is derived from its public key.</summary>
public sealed class SigningKey : IDisposable
{
    private readonly ECDsa _key;

    private SigningKey(ECDsa key, DateTimeOffset createdAt)
    {
        _key = key;
        PublicKey = Convert.ToBase64String(key.ExportSubjectPublicKeyInfo());
        KeyId = KeyIdOf(PublicKey);
        CreatedAt = createdAt;
    }

    public string KeyId { get; }
    public string PublicKey { get; }
    public DateTimeOffset CreatedAt { get; }

    public static SigningKey Generate(DateTimeOffset now) => new(ECDsa.Create(ECCurve.NamedCurves.nistP256), now);

    /// <summary>Restores a key from its PKCS#8 DER (base64).</summary>
    public static SigningKey Import(string pkcs8Base64, DateTimeOffset createdAt)
    {
        var key = ECDsa.Create();
        key.ImportPkcs8PrivateKey(Convert.FromBase64String(pkcs8Base64), out _);
        return new SigningKey(key, createdAt);
    }

    public string ExportPkcs8() => Convert.ToBase64String(_key.ExportPkcs8PrivateKey());

    /// <summary>Key ids are the first 16 hex digits of SHA-256 over the public key's DER.</summary>
    public static string KeyIdOf(string publicKeyBase64) =>
        Convert.ToHexStringLower(SHA256.HashData(Convert.FromBase64String(publicKeyBase64)))[..16];

    public byte[] Sign(ReadOnlySpan<byte> data) => _key.SignData(data, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);

    public SignedManifest SignManifest(byte[] manifestJson) => new()
    {
        Payload = Convert.ToBase64String(manifestJson),
        KeyId = KeyId,
        Signature = Convert.ToBase64String(Sign(manifestJson)),
    };

    /// <summary>Signs an artifact digest: "tinyops-artifact\n{sha256}".</summary>
    public string SignArtifact(string sha256) => Convert.ToBase64String(Sign(Encoding.UTF8.GetBytes(ArtifactStatement(sha256))));

    /// <summary>Endorses <paramref name="next"/> with this key, for rotation.</summary>
    public string Endorse(SigningKey next) => Convert.ToBase64String(Sign(Encoding.UTF8.GetBytes(EndorsementStatement(next.KeyId, next.PublicKey))));

    public static string ArtifactStatement(string sha256) => $"tinyops-artifact\n{sha256}";

    public static string EndorsementStatement(string keyId, string publicKey) => $"tinyops-key-endorsement\n{keyId}\n{publicKey}";

    public void Dispose() => _key.Dispose();
}
