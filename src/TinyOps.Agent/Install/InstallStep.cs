namespace TinyOps.Agent.Install;

/// <summary>
/// The named steps of an install, in order. Each is a point where a crash (or power cut) may happen; with
/// TINYOPS_AGENT_CRASH_AT=&lt;step&gt; the process dies abruptly there (see <see cref="CrashPoints"/>).
/// </summary>
public enum InstallStep
{
    /// <summary>The assignment's manifest verified; nothing written yet.</summary>
    ManifestVerified,
    /// <summary>The first chunk of the artifact was written to download/&lt;sha&gt;.part.</summary>
    DownloadStarted,
    /// <summary>Part of the artifact is on disk (about half).</summary>
    DownloadHalfway,
    /// <summary>The whole artifact is in download/&lt;sha&gt;.part, not yet verified.</summary>
    Downloaded,
    /// <summary>Digest and size match the manifest.</summary>
    DigestVerified,
    /// <summary>The inactive slot's previous files were removed.</summary>
    SlotCleared,
    /// <summary>model.onnx.tmp in the inactive slot is written and flushed, not yet renamed.</summary>
    ModelTempWritten,
    /// <summary>model.onnx is in place in the inactive slot; manifest.json is not.</summary>
    ModelWritten,
    /// <summary>manifest.json is in place in the inactive slot.</summary>
    ManifestWritten,
    /// <summary>The new slot loaded and ran once with finite outputs.</summary>
    HealthChecked,
    /// <summary>state.json.tmp naming the new slot is written and flushed, not yet renamed.</summary>
    StateTempWritten,
    /// <summary>state.json names the new slot; the old session is still in memory.</summary>
    Switched,
    /// <summary>The new model serves; the download file was removed; not yet reported.</summary>
    Activated,
}
