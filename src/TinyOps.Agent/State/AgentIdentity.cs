namespace TinyOps.Agent.State;

/// <summary>Who the device is, as persisted in identity.json after enrollment.</summary>
public sealed record AgentIdentity
{
    public string DeviceId { get; init; } = "";
    public string Project { get; init; } = "";
    public string Name { get; init; } = "";
    /// <summary>The device's ECDSA P-256 private key, PKCS#8 DER, base64. It never leaves the device.</summary>
    public string PrivateKey { get; init; } = "";
    /// <summary>The public half (SubjectPublicKeyInfo DER, base64) as registered with the server.</summary>
    public string PublicKey { get; init; } = "";
    public DateTimeOffset EnrolledAt { get; init; }
}
