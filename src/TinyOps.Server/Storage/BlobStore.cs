using System.Security.Cryptography;

namespace TinyOps.Server.Storage;

/// <summary>Content-addressed files: blobs/ab/abcdef... named by lower-case hex SHA-256. Immutable once written.</summary>
public sealed class BlobStore
{
    private readonly string _root;

    public BlobStore(string root)
    {
        _root = root;
        Directory.CreateDirectory(root);
    }

    public static bool IsDigest(string s) => s.Length == 64 && s.All(c => c is >= '0' and <= '9' or >= 'a' and <= 'f');

    public string PathOf(string sha256)
    {
        if (!IsDigest(sha256)) throw new ArgumentException($"'{sha256}' is not a lower-case hex SHA-256 digest");
        return Path.Combine(_root, sha256[..2], sha256);
    }

    public bool Exists(string sha256) => IsDigest(sha256) && File.Exists(PathOf(sha256));

    /// <summary>Stores bytes (temporary file, flush, rename) and returns their digest.</summary>
    public async Task<string> PutAsync(byte[] bytes, CancellationToken ct = default)
    {
        string sha = Convert.ToHexStringLower(SHA256.HashData(bytes));
        string path = PathOf(sha);
        if (File.Exists(path)) return sha;
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        string tmp = path + ".tmp-" + Guid.NewGuid().ToString("N");
        await using (var f = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 81920, FileOptions.WriteThrough))
        {
            await f.WriteAsync(bytes, ct);
            await f.FlushAsync(ct);
        }
        File.Move(tmp, path, overwrite: true);
        return sha;
    }

    public FileStream OpenRead(string sha256) => new(PathOf(sha256), FileMode.Open, FileAccess.Read, FileShare.Read, 81920, useAsync: true);
}
