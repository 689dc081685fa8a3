using TinyOps.Optimize.Evaluation;

namespace TinyOps.Optimize.Passes;

/// <summary>
/// What a pass may need from its caller: named data sets (calibration), a progress sink and cancellation.
/// </summary>
public sealed class PassContext
{
    public static PassContext Default { get; } = new();

    /// <summary>Resolves data set names (fashion-mnist, random) for calibration and evaluation.</summary>
    public DataSets DataSets { get; init; } = new();

    /// <summary>Receives short progress messages ("calibrating on 500 images...").</summary>
    public Action<string>? Log { get; init; }

    public CancellationToken Cancellation { get; init; }

    public void Report(string message) => Log?.Invoke(message);
}
