namespace TinyOps.Server.Deployments;

/// <summary>Where a deployment stands ("status" column).</summary>
public static class DeploymentStatus
{
    /// <summary>Stage 1 (the canary devices) assigned; waiting for them to settle.</summary>
    public const string Canary = "canary";
    /// <summary>All compatible devices assigned; waiting for them to settle.</summary>
    public const string Rolling = "rolling";
    /// <summary>Skipped by the rollout worker: no new assignments until resumed.</summary>
    public const string Paused = "paused";
    public const string Completed = "completed";
    public const string Aborted = "aborted";
    /// <summary>Stopped by itself because failures exceeded its MaxFailurePercent.</summary>
    public const string Halted = "halted";

    public static bool IsActive(string status) => status is Canary or Rolling;
}

/// <summary>Where one device stands in a deployment ("state" column of deployment_targets).</summary>
public static class TargetState
{
    /// <summary>Compatible, in a stage not yet assigned.</summary>
    public const string Pending = "pending";
    /// <summary>The device's desired state points at this deployment; waiting for its report.</summary>
    public const string Assigned = "assigned";
    public const string Installed = "installed";
    public const string Failed = "failed";
    /// <summary>No variant of the version fits the device; the reason says why.</summary>
    public const string Incompatible = "incompatible";
    /// <summary>A newer deployment assigned the device before this one settled.</summary>
    public const string Superseded = "superseded";
    /// <summary>The deployment was halted or aborted (or the device revoked) before the device installed.</summary>
    public const string Cancelled = "cancelled";

    /// <summary>Nothing more will happen to the target.</summary>
    public static bool IsSettled(string state) => state is Installed or Failed or Superseded or Cancelled or Incompatible;
}
