using TinyOps.Protocol.Devices;

namespace TinyOps.Protocol.Management;

public sealed record DeviceDto
{
    public string Id { get; init; } = "";
    public string Project { get; init; } = "";
    public string Name { get; init; } = "";
    public IReadOnlyList<string> Tags { get; init; } = [];
    public DeviceCapabilities Capabilities { get; init; } = new();
    public ReportedState? Reported { get; init; }
    public DateTimeOffset EnrolledAt { get; init; }
    public DateTimeOffset? LastSeenAt { get; init; }
    public bool Revoked { get; init; }
    /// <summary>The deployment currently assigning this device, and what it assigns.</summary>
    public string? DesiredDeploymentId { get; init; }
    public string? DesiredVariantId { get; init; }
}

public sealed record SetTagsRequest(IReadOnlyList<string> Tags);

/// <summary>Whether a variant can run on a device, and why not.</summary>
public sealed record CompatibilityDto(string DeviceId, string VariantId, bool Compatible, IReadOnlyList<string> Reasons);
