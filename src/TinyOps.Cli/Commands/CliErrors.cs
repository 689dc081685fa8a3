using TinyOps.Engine;

namespace TinyOps.Cli.Commands;

/// <summary>Turns engine and I/O errors into one clear line on stderr and a non-zero exit code.</summary>
internal static class CliErrors
{
    public static int Guard(Func<Task<int>> action) => Guard(() => action().GetAwaiter().GetResult());

    public static int Guard(Func<int> action)
    {
        try
        {
            return action();
        }
        catch (Exception e) when (e is EngineException or IOException or UnauthorizedAccessException or InvalidDataException or FormatException or ArgumentException
            or Api.ApiCallException or HttpRequestException or InvalidOperationException or TaskCanceledException or Optimize.Quantization.QuantizationException
            or Optimize.Recipes.RecipeException or Optimize.Passes.PassException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 2;
        }
    }
}
