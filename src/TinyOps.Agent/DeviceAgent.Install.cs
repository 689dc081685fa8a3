using System.Net;
using System.Net.Http.Headers;
using TinyOps.Agent.Inference;
using TinyOps.Agent.Install;
using TinyOps.Engine.Runtime;
using TinyOps.Protocol;
using TinyOps.Protocol.Devices;
using TinyOps.Protocol.Manifests;
using TinyOps.Trust.Signing;

namespace TinyOps.Agent;

public sealed partial class DeviceAgent
{
    private void Reached(InstallStep step) => CrashPoints.Reached(step, Options.Log);

    /// <summary>
    /// Acts on an assignment: verify the signed manifest, download the artifact (resuming a partial file), verify
    /// its size and digest, install it into the inactive slot, health-check it, and only then switch the active
    /// slot by an atomic write of state.json. A refusal leaves the current model serving and reports Failed.
    /// </summary>
    private async Task ApplyAssignmentAsync(Assignment assignment, CancellationToken ct)
    {
        string key = assignment.Manifest.Signature;
        if (_state.FailedManifestSignature == key && _state.FailedAttempts >= Options.MaxInstallAttempts) return;

        Manifest manifest;
        try
        {
            manifest = _trust!.Verify(assignment.Manifest);
            Validate(manifest);
        }
        catch (Exception e) when (e is TrustException or AgentException)
        {
            Fail(assignment, $"manifest refused: {e.Message}");
            return;
        }

        if (Models.Active is { } serving && SameModel(serving.Manifest, manifest))
        {
            if (_state.Phase != InstallPhase.Installed || _state.DeploymentId != assignment.DeploymentId)
                WriteState(_state with { Phase = InstallPhase.Installed, DeploymentId = assignment.DeploymentId, LastError = null, FailedManifestSignature = null, FailedAttempts = 0 });
            return;
        }
        Reached(InstallStep.ManifestVerified);
        Log($"deployment {assignment.DeploymentId}: installing {manifest.ModelName} {manifest.Version} ({manifest.VariantId}, {manifest.ArtifactSize} bytes)");

        string target = Models.Active is { } active ? SlotStore.Other(active.Slot) : "A";
        string? part = null;
        // A rollback to what the standby slot already holds needs no download.
        SlotContent? content = _slots.Read(target, _trust, out _) is { } existing && SameModel(existing.Manifest, manifest) ? existing : null;
        if (content is null)
        {
            SetTransient(InstallPhase.Downloading, assignment.DeploymentId);
            try
            {
                part = await DownloadAsync(manifest, ct);
            }
            catch (Exception e) when (e is HttpRequestException or IOException or AgentException || (e is TaskCanceledException && !ct.IsCancellationRequested))
            {
                SetTransient(InstallPhase.Downloading, assignment.DeploymentId, $"download interrupted at {_downloaded} of {manifest.ArtifactSize} bytes: {e.Message}");
                Log($"deployment {assignment.DeploymentId}: download interrupted ({e.Message}); it resumes at the next sync");
                return;
            }
            Reached(InstallStep.Downloaded);

            SetTransient(InstallPhase.Verifying, assignment.DeploymentId);
            var (sha, size) = SlotStore.Digest(part);
            if (size != manifest.ArtifactSize || sha != manifest.ArtifactSha256)
            {
                File.Delete(part);
                _downloaded = 0;
                Fail(assignment, $"artifact refused: the downloaded bytes ({size} bytes, sha256 {sha}) do not match the signed manifest ({manifest.ArtifactSize} bytes, sha256 {manifest.ArtifactSha256})");
                return;
            }
            Reached(InstallStep.DigestVerified);

            SetTransient(InstallPhase.Installing, assignment.DeploymentId);
            content = _slots.Install(target, part, assignment.Manifest, manifest, Reached);
        }

        SetTransient(InstallPhase.HealthCheck, assignment.DeploymentId);
        InferenceSession session;
        try
        {
            session = ModelHost.LoadAndCheck(content.ModelPath);
        }
        catch (AgentException e)
        {
            RefreshStandby();
            Fail(assignment, e.Message);
            return;
        }
        Reached(InstallStep.HealthChecked);

        WriteState(_state with
        {
            ActiveSlot = target,
            DeploymentId = assignment.DeploymentId,
            Phase = InstallPhase.Installed,
            LastError = null,
            FailedManifestSignature = null,
            FailedAttempts = 0,
        }, () => Reached(InstallStep.StateTempWritten));
        Reached(InstallStep.Switched);
        // The served model and the standby description change together, so /status never pairs the new active
        // model with the stale standby (which, until now, was the very slot being activated).
        lock (_stateLock)
        {
            Models.Activate(content, session);
            RefreshStandby();
        }
        if (part is not null) File.Delete(part);
        Reached(InstallStep.Activated);
        Log($"deployment {assignment.DeploymentId}: now serving {Describe(Models.ActiveModel)} from slot {target}");
    }

    private static bool SameModel(Manifest a, Manifest b) =>
        a.ArtifactSha256 == b.ArtifactSha256 && a.ModelName == b.ModelName && a.Version == b.Version && a.VariantId == b.VariantId;

    private void Validate(Manifest m)
    {
        if (m.ArtifactSha256.Length != 64 || !m.ArtifactSha256.All(char.IsAsciiHexDigitLower))
            throw new AgentException($"artifact digest '{m.ArtifactSha256}' is not 64 lower-case hex digits");
        if (m.ArtifactSize <= 0) throw new AgentException($"artifact size {m.ArtifactSize} is not positive");
        if (!string.Equals(m.Format, "onnx", StringComparison.OrdinalIgnoreCase))
            throw new AgentException($"artifact format '{m.Format}' is not supported; this agent runs onnx");
        if (Project is { Length: > 0 } p && m.Project.Length > 0 && m.Project != p)
            throw new AgentException($"the manifest is for project '{m.Project}'; this device belongs to '{p}'");
    }

    private void Fail(Assignment assignment, string reason)
    {
        string key = assignment.Manifest.Signature;
        int attempts = _state.FailedManifestSignature == key ? _state.FailedAttempts + 1 : 1;
        WriteState(_state with
        {
            ActiveSlot = Models.Active?.Slot ?? "",
            DeploymentId = assignment.DeploymentId,
            Phase = InstallPhase.Failed,
            LastError = reason,
            FailedManifestSignature = key,
            FailedAttempts = attempts,
        });
        Log($"deployment {assignment.DeploymentId}: {reason} (attempt {attempts}); still serving {Describe(Models.ActiveModel)}");
    }

    /// <summary>Downloads into download/&lt;sha&gt;.part, resuming from the bytes already there with an HTTP Range request.</summary>
    private async Task<string> DownloadAsync(Manifest m, CancellationToken ct)
    {
        string dir = PathOf("download");
        Directory.CreateDirectory(dir);
        string part = Path.Combine(dir, m.ArtifactSha256 + ".part");
        foreach (var stale in Directory.EnumerateFiles(dir))
            if (stale != part) File.Delete(stale);
        bool started = false, halfway = false;
        for (int attempt = 1; ; attempt++)
        {
            long have = File.Exists(part) ? new FileInfo(part).Length : 0;
            if (have > m.ArtifactSize) { File.Delete(part); have = 0; }
            _downloaded = have;
            if (have == m.ArtifactSize) return part;
            long before = have;
            try
            {
                var range = have > 0 ? new RangeHeaderValue(have, null) : null;
                using var response = await _client.GetAsync($"{ApiRoutes.Artifact}/{m.ArtifactSha256}", range, ct);
                if (have > 0)
                {
                    if (response.StatusCode != HttpStatusCode.PartialContent)
                    {
                        Log($"the server ignored the range request (status {(int)response.StatusCode}); downloading from the start");
                        have = 0;
                    }
                    else if (response.Content.Headers.ContentRange?.From != have)
                    {
                        throw new AgentException($"asked for bytes from {have}, the server sent a range from {response.Content.Headers.ContentRange?.From}");
                    }
                    else
                    {
                        Log($"resuming the download of {SlotStore.Short(m.ArtifactSha256)} at byte {have} of {m.ArtifactSize}");
                    }
                }
                await using var body = await response.Content.ReadAsStreamAsync(ct);
                await using var fs = new FileStream(part, have > 0 ? FileMode.Append : FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 0);
                var buffer = new byte[Options.DownloadChunkBytes];
                while (true)
                {
                    int n = await body.ReadAsync(buffer, ct);
                    if (n == 0) break;
                    if (have + n > m.ArtifactSize)
                    {
                        fs.Close();
                        File.Delete(part);
                        throw new AgentException($"the server sent more than the manifest's {m.ArtifactSize} bytes");
                    }
                    fs.Write(buffer, 0, n);
                    have += n;
                    _downloaded = have;
                    if (!started) { started = true; Reached(InstallStep.DownloadStarted); }
                    if (!halfway && have * 2 >= m.ArtifactSize) { halfway = true; Reached(InstallStep.DownloadHalfway); }
                }
                fs.Flush(flushToDisk: true);
                if (have < m.ArtifactSize) throw new IOException($"the response ended at byte {have} of {m.ArtifactSize}");
            }
            catch (Exception e) when (e is HttpRequestException or IOException || (e is TaskCanceledException && !ct.IsCancellationRequested))
            {
                long now = File.Exists(part) ? new FileInfo(part).Length : 0;
                _downloaded = now;
                if (now > before && attempt < 8)
                {
                    Log($"download cut at byte {now} of {m.ArtifactSize} ({e.Message}); resuming");
                    continue;
                }
                throw;
            }
        }
    }
}
