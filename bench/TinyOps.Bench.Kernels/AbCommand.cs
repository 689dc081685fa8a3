using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using TinyOps.Engine.Ir;
using TinyOps.Engine.Onnx;
using TinyOps.Engine.Runtime;
using TinyOps.Engine.Tensors;

namespace TinyOps.Bench.Kernels;

/// <summary>
/// <c>ab MODEL ROUNDS SPEC_A SPEC_B [THREADS]</c>: times one model under two settings in one process, alternating A
/// and B run by run, so both see the same clock phases (the host's clock swings too much for timings taken minutes
/// apart to be compared). The engine's static toggles (e.g. <c>TinyOps.Engine.Kernels.Nn.SGemm.UseDotRows8</c>)
/// exist for these comparisons.
/// <para>
/// A SPEC is <c>-</c> (defaults) or comma-separated settings: <c>Namespace.Type.Member=value</c> sets a static field
/// or settable static property of the engine (public or not; bool, integer, floating-point or enum values, or
/// <c>null</c> for a nullable one), <c>opt:Property=value</c> a <see cref="SessionOptions"/> property of that side's
/// session. SPEC_B may instead be <c>model:OTHER.onnx</c>: B runs another model (same inputs) with default settings.
/// A static member named by either side is set before each of A's runs to A's value and before each of B's to B's,
/// the side that does not name it getting the value it had at start, so a <c>-</c> side really runs the defaults.
/// The settings are also in force while each side's session is created.
/// </para>
/// <para>
/// After 1.5 s of alternating warm-up, each round runs A once untimed and three times timed, then B the same way;
/// p50, p25 and min of each side's timed runs are printed, in microseconds. The inputs are a fixed pattern (float32,
/// uint8 or int8; unknown dimensions are 1).
/// </para>
/// </summary>
internal static class AbCommand
{
    public const string Usage = "usage: ab MODEL ROUNDS SPEC_A SPEC_B [THREADS]   (SPEC: - | Namespace.Type.Member=value,...,opt:SessionOptionProperty=value,...; SPEC_B may be model:OTHER.onnx)";

    private static readonly Assembly Engine = typeof(InferenceSession).Assembly;

    /// <summary>Runs the command on its arguments (after "ab"); returns the process exit code.</summary>
    public static int Run(string[] args)
    {
        try
        {
            return RunChecked(args);
        }
        catch (Exception e) when (e is SpecException or TinyOps.Engine.ModelFormatException)
        {
            Console.Error.WriteLine("ab: " + e.Message);
            return 2;
        }
    }

    private sealed class SpecException(string message) : Exception(message);

    private static int RunChecked(string[] args)
    {
        if (args.Length is < 4 or > 5) throw new SpecException(Usage);
        if (!int.TryParse(args[1], out int rounds) || rounds < 1) throw new SpecException($"ROUNDS must be a positive integer, not '{args[1]}'");
        int threads = 1;
        // runs per side and round: AB_UNTIMED untimed then AB_TIMED timed (default 1 and 3); longer blocks let a
        // side's worker threads settle (a thread-count comparison needs them: see docs/engine.md, Measuring)
        int untimedRuns = EnvCount("AB_UNTIMED", 1, 0), timedRuns = EnvCount("AB_TIMED", 3, 1);
        if (args.Length == 5 && (!int.TryParse(args[4], out threads) || threads < 1)) throw new SpecException($"THREADS must be a positive integer, not '{args[4]}'");
        string specA = args[2], specB = args[3];
        var model = OnnxLoader.LoadFile(args[0]);
        Model modelB = model;
        if (specB.StartsWith("model:", StringComparison.Ordinal))
        {
            modelB = OnnxLoader.LoadFile(specB["model:".Length..]);
            specB = "-";
        }

        var (staticA, optA) = Parse(specA, threads);
        var (staticB, optB) = Parse(specB, threads);
        // every member either side names, each side's value for it (the start value where that side does not name it)
        var members = staticA.Keys.Concat(staticB.Keys).Distinct().ToArray();
        var defaults = members.ToDictionary(m => m, Get);
        var settingsA = members.Select(m => (m, staticA.TryGetValue(m, out var v) ? v : defaults[m])).ToArray();
        var settingsB = members.Select(m => (m, staticB.TryGetValue(m, out var v) ? v : defaults[m])).ToArray();

        Apply(settingsA);
        var sessionA = new InferenceSession(model, optA);
        Apply(settingsB);
        var sessionB = new InferenceSession(modelB, optB);
        var inputs = Inputs(model);
        var outA = new Tensor[sessionA.Outputs.Count];
        var outB = new Tensor[sessionB.Outputs.Count];

        var warm = Stopwatch.StartNew();
        while (warm.ElapsedMilliseconds < 1500)
        {
            Apply(settingsA); sessionA.Run(inputs, outA);
            Apply(settingsB); sessionB.Run(inputs, outB);
        }
        var timesA = new List<double>();
        var timesB = new List<double>();
        for (int r = 0; r < rounds; r++)
        {
            Side(settingsA, sessionA, outA, timesA);
            Side(settingsB, sessionB, outB, timesB);
        }
        Console.WriteLine($"A {args[2]}: {Stat(timesA)}");
        Console.WriteLine($"B {args[3]}: {Stat(timesB)}");
        return 0;

        void Side((MemberInfo, object?)[] settings, InferenceSession session, Tensor[] outs, List<double> times)
        {
            Apply(settings);
            for (int i = 0; i < untimedRuns; i++) session.Run(inputs, outs);
            for (int i = 0; i < timedRuns; i++)
            {
                long t0 = Stopwatch.GetTimestamp();
                session.Run(inputs, outs);
                times.Add(Stopwatch.GetElapsedTime(t0).TotalMicroseconds);
            }
        }
    }

    private static int EnvCount(string name, int fallback, int least)
    {
        var text = Environment.GetEnvironmentVariable(name);
        if (string.IsNullOrEmpty(text)) return fallback;
        if (!int.TryParse(text, out int n) || n < least) throw new SpecException($"{name} must be an integer of at least {least}, not '{text}'");
        return n;
    }

    private static string Stat(List<double> times)
    {
        times.Sort();
        return $"p50 {times[times.Count / 2]:F1} us, p25 {times[times.Count / 4]:F1}, min {times[0]:F1} ({times.Count} runs)";
    }

    /// <summary>The static settings of a SPEC (member → value) and the session options it describes.</summary>
    private static (Dictionary<MemberInfo, object?> Statics, SessionOptions Options) Parse(string spec, int threads)
    {
        var statics = new Dictionary<MemberInfo, object?>();
        var options = new SessionOptions { Threads = threads };
        if (spec == "-") return (statics, options);
        foreach (var raw in spec.Split(','))
        {
            string item = raw.Trim();
            int eq = item.IndexOf('=');
            if (eq <= 0) throw new SpecException($"'{item}' is not NAME=value (in '{spec}')");
            string name = item[..eq], text = item[(eq + 1)..];
            if (name.StartsWith("opt:", StringComparison.Ordinal))
            {
                string propName = name["opt:".Length..];
                var prop = typeof(SessionOptions).GetProperty(propName, BindingFlags.Public | BindingFlags.Instance);
                if (prop is null || !prop.CanWrite)
                    throw new SpecException($"SessionOptions has no settable property '{propName}'; it has: "
                        + string.Join(", ", typeof(SessionOptions).GetProperties().Where(p => p.CanWrite).Select(p => p.Name)));
                prop.SetValue(options, Convert(text, prop.PropertyType, name));
                continue;
            }
            var member = StaticMember(name);
            statics[member] = Convert(text, TypeOf(member), name);
        }
        return (statics, options);
    }

    /// <summary>The engine's static field or settable static property named Namespace.Type.Member (nested types as Outer+Inner).</summary>
    private static MemberInfo StaticMember(string name)
    {
        int dot = name.LastIndexOf('.');
        if (dot <= 0) throw new SpecException($"'{name}' is not Namespace.Type.Member");
        string typeName = name[..dot], memberName = name[(dot + 1)..];
        var type = Engine.GetType(typeName);
        if (type is null)
        {
            string simple = typeName[(typeName.LastIndexOfAny(['.', '+']) + 1)..];
            var near = Engine.GetTypes().Where(t => t.Name == simple).Select(t => t.FullName).ToArray();
            throw new SpecException($"no type '{typeName}' in {Engine.GetName().Name}"
                + (near.Length > 0 ? "; did you mean " + string.Join(" or ", near) + "?" : ""));
        }
        const BindingFlags flags = BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic;
        if (type.GetField(memberName, flags) is { IsLiteral: false, IsInitOnly: false } field) return field;
        if (type.GetProperty(memberName, flags) is { CanWrite: true } property) return property;
        var settable = type.GetFields(flags).Where(f => !f.IsLiteral && !f.IsInitOnly && !f.Name.Contains('<')).Select(f => f.Name)
            .Concat(type.GetProperties(flags).Where(p => p.CanWrite).Select(p => p.Name)).ToArray();
        throw new SpecException($"{typeName} has no settable static field or property '{memberName}'"
            + (settable.Length > 0 ? "; it has: " + string.Join(", ", settable) : "; it has none"));
    }

    private static Type TypeOf(MemberInfo m) => m is FieldInfo f ? f.FieldType : ((PropertyInfo)m).PropertyType;

    private static object? Get(MemberInfo m) => m is FieldInfo f ? f.GetValue(null) : ((PropertyInfo)m).GetValue(null);

    private static void Apply((MemberInfo Member, object? Value)[] settings)
    {
        foreach (var (m, v) in settings)
            if (m is FieldInfo f) f.SetValue(null, v);
            else ((PropertyInfo)m).SetValue(null, v);
    }

    private static object? Convert(string text, Type type, string name)
    {
        var under = Nullable.GetUnderlyingType(type);
        if (text == "null")
        {
            if (under is null && type.IsValueType) throw new SpecException($"{name} is a {type.Name}, which cannot be null");
            return null;
        }
        var t = under ?? type;
        try
        {
            if (t.IsEnum)
            {
                if (Enum.TryParse(t, text, ignoreCase: true, out var e) && Enum.IsDefined(t, e!)) return e;
                throw new SpecException($"{name}: '{text}' is not one of {string.Join(", ", Enum.GetNames(t))}");
            }
            if (t == typeof(bool)) return bool.Parse(text);
            if (t == typeof(int) || t == typeof(long) || t == typeof(float) || t == typeof(double))
                return System.Convert.ChangeType(text, t, CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is FormatException or OverflowException)
        {
            throw new SpecException($"{name}: '{text}' is not a {t.Name}");
        }
        throw new SpecException($"{name} has type {type.Name}, which ab cannot set");
    }

    /// <summary>A fixed input pattern for each of the model's runtime inputs.</summary>
    private static Tensor[] Inputs(Model model)
    {
        var list = new List<Tensor>();
        foreach (var input in model.Graph.RuntimeInputs)
        {
            if (input.Shape is null) throw new SpecException($"input {input.Name} has no known rank");
            var shape = input.Shape.Select(d => d.IsKnown ? (int)d.Value : 1).ToArray();
            int n = shape.Aggregate(1, (a, b) => a * b);
            switch (input.Type)
            {
                case DataType.Float32:
                {
                    var data = new float[n];
                    for (int i = 0; i < n; i++) data[i] = (float)(i * 2654435761L % 1000) / 1000f;
                    list.Add(Tensor.FromArray(data, shape));
                    break;
                }
                case DataType.UInt8:
                {
                    var data = new byte[n];
                    for (int i = 0; i < n; i++) data[i] = (byte)(i * 2654435761L % 251);
                    list.Add(Tensor.FromArray(data, shape));
                    break;
                }
                case DataType.Int8:
                {
                    var data = new sbyte[n];
                    for (int i = 0; i < n; i++) data[i] = (sbyte)(i * 2654435761L % 251 - 125);
                    list.Add(Tensor.FromArray(data, shape));
                    break;
                }
                default:
                    throw new SpecException($"input {input.Name} is {input.Type.OnnxName()}; ab makes float32, uint8 and int8 inputs only");
            }
        }
        return [.. list];
    }
}
