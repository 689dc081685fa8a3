namespace TinyOps.Agent.State;

/// <summary>
/// Atomic file replacement: write a temporary file next to the target, flush it to disk, rename it over the
/// target. A reader (or a restart after a crash) sees the old content or the new one, never a mix.
/// </summary>
public static class AtomicFile
{
    public static void WriteAllBytes(string path, ReadOnlySpan<byte> data, Action? beforeRename = null)
    {
        string dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(dir);
        string tmp = path + ".tmp";
        using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            fs.Write(data);
            fs.Flush(flushToDisk: true);
        }
        beforeRename?.Invoke();
        File.Move(tmp, path, overwrite: true);
    }

    /// <summary>Copies a file atomically (temp, flush, rename).</summary>
    public static void Copy(string source, string path)
    {
        string dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(dir);
        string tmp = path + ".tmp";
        using (var src = new FileStream(source, FileMode.Open, FileAccess.Read, FileShare.Read))
        using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            src.CopyTo(fs);
            fs.Flush(flushToDisk: true);
        }
        File.Move(tmp, path, overwrite: true);
    }

    /// <summary>Deletes a file and its leftover temporary file, if any.</summary>
    public static void Delete(string path)
    {
        File.Delete(path);
        File.Delete(path + ".tmp");
    }
}
