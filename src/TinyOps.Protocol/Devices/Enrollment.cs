namespace TinyOps.Protocol.Devices;

/// <summary>A device registers the public half of a key pair it generated, with a one-time enrollment token.</summary>
public sealed record EnrollRequest
{
    public string EnrollmentToken { get; init; } = "";
    /// <summary>The device's own name (serial number, hostname); unique within the project.</summary>
    public string Name { get; init; } = "";
    /// <summary>ECDSA P-256 public key, SubjectPublicKeyInfo DER, base64.</summary>
    public string PublicKey { get; init; } = "";
    public DeviceCapabilities Capabilities { get; init; } = new();
    public IReadOnlyList<string> Tags { get; init; } = [];
}

public sealed record EnrollResponse
{
    public string DeviceId { get; init; } = "";
    public string Project { get; init; } = "";
    /// <summary>The keys manifests are signed with; the device trusts these from now on.</summary>
    public IReadOnlyList<Manifests.SigningKeyInfo> SigningKeys { get; init; } = [];
    public int PollSeconds { get; init; } = 60;
}
