using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using TinyOps.Protocol;
using TinyOps.Protocol.Manifests;

namespace TinyOps.Trust.Signing;

/// <summary>Why a manifest or key was refused.</summary>
public sealed class TrustException(string message) : Exception(message);

/// <summary>
/// The device side of signing: the registry keys a device trusts, extended only by keys endorsed by a key it
/// already trusts, and verification of manifests and artifact signatures against them.
/// </summary>
public sealed class TrustStore
{
    private readonly Dictionary<string, SigningKeyInfo> _keys = new(StringComparer.Ordinal);

    public TrustStore(IEnumerable<SigningKeyInfo> initial)
    {
        foreach (var k in initial)
        {
            if (SigningKey.KeyIdOf(k.PublicKey) != k.KeyId) throw new TrustException($"key '{k.KeyId}' does not match its public key");
            _keys[k.KeyId] = k;
        }
    }

    public IReadOnlyCollection<SigningKeyInfo> Keys => _keys.Values;

    /// <summary>Adds keys endorsed (directly or through a chain) by trusted keys; returns how many were added.</summary>
    public int Accept(IEnumerable<SigningKeyInfo> offered)
    {
        var pending = offered.Where(k => !_keys.ContainsKey(k.KeyId)).ToList();
        int added = 0;
        bool progress = true;
        while (progress && pending.Count > 0)
        {
            progress = false;
            foreach (var k in pending.ToList())
            {
                if (k.EndorsedBy is null || k.Endorsement is null || !_keys.TryGetValue(k.EndorsedBy, out var endorser)) continue;
                if (SigningKey.KeyIdOf(k.PublicKey) != k.KeyId) { pending.Remove(k); continue; }
                if (!VerifyWith(endorser.PublicKey, Encoding.UTF8.GetBytes(SigningKey.EndorsementStatement(k.KeyId, k.PublicKey)), k.Endorsement))
                {
                    pending.Remove(k);
                    continue;
                }
                _keys[k.KeyId] = k;
                pending.Remove(k);
                added++;
                progress = true;
            }
        }
        return added;
    }

    /// <summary>Verifies the signature and returns the manifest; throws <see cref="TrustException"/> if it does not verify.</summary>
    public Manifest Verify(SignedManifest signed)
    {
        if (!_keys.TryGetValue(signed.KeyId, out var key))
            throw new TrustException($"manifest signed with unknown key '{signed.KeyId}'");
        byte[] payload;
        try { payload = Convert.FromBase64String(signed.Payload); }
        catch (FormatException) { throw new TrustException("manifest payload is not base64"); }
        if (!VerifyWith(key.PublicKey, payload, signed.Signature))
            throw new TrustException($"manifest signature does not verify with key '{signed.KeyId}'");
        try
        {
            return JsonSerializer.Deserialize(payload, ProtocolJson.Default.Manifest) ?? throw new TrustException("manifest payload is empty");
        }
        catch (JsonException e)
        {
            throw new TrustException($"manifest payload is not a manifest: {e.Message}");
        }
    }

    public bool VerifyArtifact(string sha256, string keyId, string signature) =>
        _keys.TryGetValue(keyId, out var key) && VerifyWith(key.PublicKey, Encoding.UTF8.GetBytes(SigningKey.ArtifactStatement(sha256)), signature);

    private static bool VerifyWith(string publicKeyBase64, byte[] data, string signatureBase64)
    {
        try
        {
            using var ec = ECDsa.Create();
            ec.ImportSubjectPublicKeyInfo(Convert.FromBase64String(publicKeyBase64), out _);
            return ec.VerifyData(data, Convert.FromBase64String(signatureBase64), HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
        }
        catch (Exception e) when (e is FormatException or CryptographicException)
        {
            return false;
        }
    }
}
