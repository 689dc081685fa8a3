namespace TinyOps.Optimize.Tests;

/// <summary>Where the repository and the shared test data (../shared beside the clone, or $TINYOPS_SHARED) are.</summary>
internal static class TestPaths
{
    public static string RepoRoot { get; } = FindRepoRoot();

    public static string Shared { get; } = Environment.GetEnvironmentVariable("TINYOPS_SHARED") is { Length: > 0 } s
        ? s
        : Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared"));

    public static string FmnistCnn => Path.Combine(Shared, "models", "fmnist_cnn.onnx");
    public static string FmnistMlp => Path.Combine(Shared, "models", "fmnist_mlp.onnx");
    public static string MobileNetV2 => Path.Combine(RepoRoot, "tests", "models", "mobilenet_v2", "model.onnx");

    private static string FindRepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "TinyOps.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("cannot find the repository root (TinyOps.sln) above " + AppContext.BaseDirectory);
    }
}
