namespace TinyOps.Agent.Install;

/// <summary>
/// Fault injection for crash-safety tests: when the environment variable <see cref="Variable"/> names an
/// <see cref="InstallStep"/> (kebab-case or the enum name), the process dies with Environment.FailFast as soon
/// as an install reaches that step. Nothing is flushed or cleaned up, as in a power cut.
/// </summary>
public static class CrashPoints
{
    public const string Variable = "TINYOPS_AGENT_CRASH_AT";

    /// <summary>The step to crash at, read from the environment at start; null when not set.</summary>
    public static InstallStep? Configured { get; } = Parse(Environment.GetEnvironmentVariable(Variable));

    public static InstallStep? Parse(string? value)
    {
        if (string.IsNullOrWhiteSpace(value)) return null;
        string compact = value.Replace("-", "", StringComparison.Ordinal).Replace("_", "", StringComparison.Ordinal);
        foreach (var step in Enum.GetValues<InstallStep>())
            if (string.Equals(step.ToString(), compact, StringComparison.OrdinalIgnoreCase)) return step;
        throw new ArgumentException($"{Variable}='{value}' is not an install step; steps: {string.Join(", ", Enum.GetValues<InstallStep>().Select(Name))}");
    }

    /// <summary>The kebab-case name of a step, e.g. "model-temp-written".</summary>
    public static string Name(InstallStep step)
    {
        var s = step.ToString();
        var sb = new System.Text.StringBuilder(s.Length + 4);
        for (int i = 0; i < s.Length; i++)
        {
            if (char.IsUpper(s[i]) && i > 0) sb.Append('-');
            sb.Append(char.ToLowerInvariant(s[i]));
        }
        return sb.ToString();
    }

    /// <summary>Marks that an install reached <paramref name="step"/>; dies here if so configured.</summary>
    public static void Reached(InstallStep step, Action<string>? log)
    {
        log?.Invoke($"install step: {Name(step)}");
        if (Configured == step)
        {
            Console.Error.WriteLine($"crash injected at install step {Name(step)}");
            Console.Error.Flush();
            Environment.FailFast($"TinyOps agent: crash injected at install step '{Name(step)}' ({Variable})");
        }
    }
}
