using System.Security.Cryptography;
using System.Text;

namespace TinyOps.Protocol.Devices;

/// <summary>
/// How a device authenticates each request after enrollment: headers carrying its id, a timestamp, a random
/// nonce and an ECDSA P-256 (SHA-256, IEEE P1363) signature over the canonical string
/// "METHOD\nPATH\nTIMESTAMP\nNONCE\nhex(SHA-256(body))". The server rejects stale timestamps and reused nonces.
/// </summary>
public static class DeviceAuth
{
    public const string DeviceHeader = "X-TinyOps-Device";
    public const string TimestampHeader = "X-TinyOps-Timestamp";
    public const string NonceHeader = "X-TinyOps-Nonce";
    public const string SignatureHeader = "X-TinyOps-Signature";

    /// <summary>How far a request's timestamp may be from the server's clock.</summary>
    public static readonly TimeSpan MaxClockSkew = TimeSpan.FromMinutes(5);

    public static string CanonicalString(string method, string pathAndQuery, long timestampMs, string nonce, ReadOnlySpan<byte> body)
    {
        var hash = Convert.ToHexStringLower(SHA256.HashData(body));
        return $"{method.ToUpperInvariant()}\n{pathAndQuery}\n{timestampMs}\n{nonce}\n{hash}";
    }

    public static string Sign(ECDsa key, string canonical) =>
        Convert.ToBase64String(key.SignData(Encoding.UTF8.GetBytes(canonical), HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation));

    public static bool Verify(ECDsa publicKey, string canonical, string signatureBase64)
    {
        byte[] sig;
        try { sig = Convert.FromBase64String(signatureBase64); }
        catch (FormatException) { return false; }
        return publicKey.VerifyData(Encoding.UTF8.GetBytes(canonical), sig, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
    }
}
