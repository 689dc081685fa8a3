using System.IO.Compression;

namespace TinyOps.Engine.Data;

/// <summary>A labelled image set in memory: images as float32 in [0,1], shape [count, 1, rows, cols].</summary>
public sealed record ImageDataset(float[] Images, byte[] Labels, int Count, int Rows, int Cols)
{
    public int ImageSize => Rows * Cols;
    public ReadOnlySpan<float> Image(int i) => Images.AsSpan(i * ImageSize, ImageSize);
}

/// <summary>Reads the IDX files of Fashion-MNIST (as shipped by Debian's dataset-fashion-mnist), gzipped or not.</summary>
public static class FashionMnist
{
    public const string DebianDirectory = "/usr/share/datasets/fashion-mnist";

    public static readonly string[] ClassNames = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    /// <summary>The folder holding the IDX files: the given one, $TINYOPS_FASHION_MNIST, or Debian's.</summary>
    public static string ResolveDirectory(string? dir)
    {
        dir ??= Environment.GetEnvironmentVariable("TINYOPS_FASHION_MNIST") ?? DebianDirectory;
        if (!Directory.Exists(dir))
            throw new DirectoryNotFoundException($"Fashion-MNIST not found at {dir}; install Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist) or pass the folder holding the IDX files");
        return dir;
    }

    public static ImageDataset LoadTest(string? dir = null) => Load(ResolveDirectory(dir), "t10k");

    public static ImageDataset LoadTrain(string? dir = null) => Load(ResolveDirectory(dir), "train");

    public static ImageDataset Load(string dir, string prefix)
    {
        var images = ReadIdx(FindFile(dir, $"{prefix}-images-idx3-ubyte"), 0x00000803, out var idims);
        var labels = ReadIdx(FindFile(dir, $"{prefix}-labels-idx1-ubyte"), 0x00000801, out var ldims);
        if (idims[0] != ldims[0]) throw new InvalidDataException($"{dir}: {idims[0]} images but {ldims[0]} labels");
        var floats = new float[images.Length];
        for (int i = 0; i < images.Length; i++) floats[i] = images[i] / 255f;
        return new ImageDataset(floats, labels, idims[0], idims[1], idims[2]);
    }

    private static string FindFile(string dir, string stem)
    {
        foreach (var candidate in new[] { stem + ".gz", stem })
        {
            var p = Path.Combine(dir, candidate);
            if (File.Exists(p)) return p;
        }
        throw new FileNotFoundException($"{dir}: missing {stem}(.gz)");
    }

    /// <summary>Reads one IDX file: big-endian magic, dimension counts, then unsigned bytes.</summary>
    public static byte[] ReadIdx(string path, int expectedMagic, out int[] dims)
    {
        using var file = File.OpenRead(path);
        using Stream s = path.EndsWith(".gz", StringComparison.Ordinal) ? new GZipStream(file, CompressionMode.Decompress) : file;
        using var r = new BinaryReader(s);
        int magic = ReadBigEndian(r);
        if (magic != expectedMagic) throw new InvalidDataException($"{path}: IDX magic 0x{magic:x8}, expected 0x{expectedMagic:x8}");
        int ndim = magic & 0xff;
        dims = new int[ndim];
        long total = 1;
        for (int i = 0; i < ndim; i++)
        {
            dims[i] = ReadBigEndian(r);
            if (dims[i] < 0) throw new InvalidDataException($"{path}: negative dimension");
            total *= dims[i];
            if (total > int.MaxValue) throw new InvalidDataException($"{path}: dimensions too large");
        }
        var data = r.ReadBytes((int)total);
        if (data.Length != total) throw new InvalidDataException($"{path}: truncated, {data.Length} of {total} bytes");
        return data;
    }

    private static int ReadBigEndian(BinaryReader r)
    {
        var b = r.ReadBytes(4);
        if (b.Length != 4) throw new EndOfStreamException("IDX header truncated");
        return (b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3];
    }
}
