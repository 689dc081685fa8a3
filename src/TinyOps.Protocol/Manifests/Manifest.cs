namespace TinyOps.Protocol.Manifests;

/// <summary>What a device is told to install: one immutable artifact and what it is. Signed by the registry.</summary>
public sealed record Manifest
{
    public string Project { get; init; } = "";
    public string ModelName { get; init; } = "";
    public string Version { get; init; } = "";
    public string VariantId { get; init; } = "";
    /// <summary>Lower-case hex SHA-256 of the artifact bytes; also its address.</summary>
    public string ArtifactSha256 { get; init; } = "";
    public long ArtifactSize { get; init; }
    /// <summary>"onnx".</summary>
    public string Format { get; init; } = "onnx";
    public long PlannedPeakBytes { get; init; }
    public IReadOnlyList<string> Operators { get; init; } = [];
    public DateTimeOffset IssuedAt { get; init; }
}

/// <summary>A manifest as signed bytes: the device verifies the signature over exactly these bytes, then parses them.</summary>
public sealed record SignedManifest
{
    /// <summary>Base64 of the manifest's UTF-8 JSON.</summary>
    public string Payload { get; init; } = "";
    public string KeyId { get; init; } = "";
    /// <summary>Base64 ECDSA P-256 SHA-256 signature (IEEE P1363) over the payload bytes.</summary>
    public string Signature { get; init; } = "";
}

/// <summary>
/// A registry signing key. A key after the first carries an endorsement: the signature, by the key named in
/// EndorsedBy, over "tinyops-key-endorsement\n{KeyId}\n{PublicKey}". Devices accept a new key only through such a chain.
/// </summary>
public sealed record SigningKeyInfo
{
    public string KeyId { get; init; } = "";
    /// <summary>SubjectPublicKeyInfo DER, base64.</summary>
    public string PublicKey { get; init; } = "";
    public DateTimeOffset CreatedAt { get; init; }
    public bool Retired { get; init; }
    public string? EndorsedBy { get; init; }
    public string? Endorsement { get; init; }
}
