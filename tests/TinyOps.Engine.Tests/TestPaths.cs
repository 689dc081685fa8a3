namespace TinyOps.Engine.Tests;

/// <summary>Where the repository and the shared test data (../shared beside the clone) are.</summary>
internal static class TestPaths
{
    public static string RepoRoot { get; } = FindRepoRoot();

    public static string Shared { get; } = Environment.GetEnvironmentVariable("TINYOPS_SHARED") is { Length: > 0 } s
        ? s
        : Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared"));

    public static string OnnxTests => Path.Combine(Shared, "onnx");
    public static string ReferenceModels => Path.Combine(Shared, "models");
    public static string TorchvisionModels => Path.Combine(RepoRoot, "tests", "models");

    private static string FindRepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "TinyOps.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("cannot find the repository root (TinyOps.sln) above " + AppContext.BaseDirectory);
    }
}
