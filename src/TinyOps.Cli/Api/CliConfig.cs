using System.Text.Json;
using System.Text.Json.Serialization;

namespace TinyOps.Cli.Api;

/// <summary>Where the CLI talks to: $TINYOPS_URL / $TINYOPS_TOKEN, else the file written by 'tinyops login'.</summary>
public sealed class CliConfig
{
    public string Url { get; set; } = "http://127.0.0.1:8080";
    public string? Token { get; set; }
    public string Project { get; set; } = "default";

    public static string Path => Environment.GetEnvironmentVariable("TINYOPS_CONFIG") is { Length: > 0 } p
        ? p
        : System.IO.Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".config", "tinyops", "config.json");

    public static CliConfig Load()
    {
        var c = new CliConfig();
        if (File.Exists(Path))
        {
            try { c = JsonSerializer.Deserialize(File.ReadAllText(Path), CliConfigJson.Default.CliConfig) ?? c; }
            catch (JsonException e) { throw new InvalidDataException($"{Path}: not a valid TinyOps CLI config ({e.Message}); run 'tinyops login' again"); }
        }
        if (Environment.GetEnvironmentVariable("TINYOPS_URL") is { Length: > 0 } url) c.Url = url;
        if (Environment.GetEnvironmentVariable("TINYOPS_TOKEN") is { Length: > 0 } token) c.Token = token;
        if (Environment.GetEnvironmentVariable("TINYOPS_PROJECT") is { Length: > 0 } project) c.Project = project;
        return c;
    }

    public void Save()
    {
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(Path)!);
        string tmp = Path + ".tmp";
        File.WriteAllText(tmp, JsonSerializer.Serialize(this, CliConfigJson.Default.CliConfig));
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(tmp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.Move(tmp, Path, overwrite: true);
    }

    public TinyOpsClient Client()
    {
        if (Token is null) throw new InvalidOperationException("not logged in: run 'tinyops login --url URL --token TOKEN' or set TINYOPS_URL and TINYOPS_TOKEN");
        return new TinyOpsClient(Url, Token);
    }
}

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(CliConfig))]
internal sealed partial class CliConfigJson : JsonSerializerContext;
