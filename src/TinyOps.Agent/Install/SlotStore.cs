using System.Security.Cryptography;
using System.Text.Json;
using TinyOps.Agent.State;
using TinyOps.Protocol.Manifests;
using TinyOps.Trust.Signing;

namespace TinyOps.Agent.Install;

/// <summary>What a slot holds: the verified manifest and the path of its model file.</summary>
public sealed record SlotContent(string Slot, Manifest Manifest, SignedManifest Signed, string ModelPath);

/// <summary>
/// The two model slots, slots/A and slots/B, each with model.onnx and manifest.json (the signed manifest as
/// received). Files in a slot are replaced atomically; the active slot is never written.
/// </summary>
public sealed class SlotStore(string stateDirectory)
{
    public const string ModelFile = "model.onnx";
    public const string ManifestFile = "manifest.json";
    public static readonly string[] Slots = ["A", "B"];

    public string SlotDirectory(string slot) => Path.Combine(stateDirectory, "slots", slot);

    public static string Other(string slot) => slot == "A" ? "B" : "A";

    /// <summary>
    /// Reads a slot: its manifest must verify with <paramref name="trust"/> and the model file must match the
    /// manifest's size and SHA-256. Returns null with a reason when the slot is empty or not usable.
    /// </summary>
    public SlotContent? Read(string slot, TrustStore trust, out string? reason)
    {
        string dir = SlotDirectory(slot);
        string modelPath = Path.Combine(dir, ModelFile);
        string manifestPath = Path.Combine(dir, ManifestFile);
        if (!File.Exists(manifestPath) || !File.Exists(modelPath))
        {
            reason = $"slot {slot} is empty";
            return null;
        }
        try
        {
            var signed = JsonSerializer.Deserialize(File.ReadAllBytes(manifestPath), AgentJson.Default.SignedManifest)
                ?? throw new TrustException("manifest.json is empty");
            var manifest = trust.Verify(signed);
            var (sha, size) = Digest(modelPath);
            if (size != manifest.ArtifactSize || sha != manifest.ArtifactSha256)
            {
                reason = $"slot {slot}: model.onnx ({size} bytes, sha256 {sha[..12]}) does not match its manifest ({manifest.ArtifactSize} bytes, sha256 {Short(manifest.ArtifactSha256)})";
                return null;
            }
            reason = null;
            return new SlotContent(slot, manifest, signed, modelPath);
        }
        catch (Exception e) when (e is JsonException or TrustException or IOException)
        {
            reason = $"slot {slot}: {e.Message}";
            return null;
        }
    }

    /// <summary>Installs a verified artifact into <paramref name="slot"/> (which must not be the active one).</summary>
    public SlotContent Install(string slot, string artifactPath, SignedManifest signed, Manifest manifest, Action<InstallStep> reached)
    {
        string dir = SlotDirectory(slot);
        Directory.CreateDirectory(dir);
        string modelPath = Path.Combine(dir, ModelFile);
        string manifestPath = Path.Combine(dir, ManifestFile);
        // Old files go first; Read needs both files and checks the model's digest, so a half-written slot never looks usable.
        AtomicFile.Delete(manifestPath);
        AtomicFile.Delete(modelPath);
        reached(InstallStep.SlotCleared);

        string tmp = modelPath + ".tmp";
        using (var src = new FileStream(artifactPath, FileMode.Open, FileAccess.Read, FileShare.Read))
        using (var dst = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            src.CopyTo(dst);
            dst.Flush(flushToDisk: true);
        }
        reached(InstallStep.ModelTempWritten);
        File.Move(tmp, modelPath, overwrite: true);
        reached(InstallStep.ModelWritten);

        AtomicFile.WriteAllBytes(manifestPath, JsonSerializer.SerializeToUtf8Bytes(signed, AgentJson.Default.SignedManifest));
        reached(InstallStep.ManifestWritten);
        return new SlotContent(slot, manifest, signed, modelPath);
    }

    public static (string Sha256, long Size) Digest(string path)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        return (Convert.ToHexStringLower(SHA256.HashData(fs)), fs.Length);
    }

    internal static string Short(string sha) => sha.Length > 12 ? sha[..12] : sha;
}
