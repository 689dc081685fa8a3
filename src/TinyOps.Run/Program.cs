using System.Diagnostics;
using System.Globalization;
using TinyOps.Engine;
using TinyOps.Engine.Onnx;
using TinyOps.Engine.Runtime;
using TinyOps.Engine.Tensors;

namespace TinyOps.Run;

/// <summary>
/// `tinyops-run MODEL [--input FILE.pb]... [--iterations N] [--batch B] [--threads T]`: the smallest useful
/// on-device program. Loads a model with the engine alone, runs it on TensorProto inputs or on the deterministic
/// input the benchmarks use, prints each output's shape, first values and argmax, and the latency.
/// Plain argument parsing and formatting only: nothing here needs reflection, so the trimmed build is safe.
/// </summary>
public static class Program
{
    private const string Usage = """
        usage: tinyops-run MODEL [--input FILE.pb]... [--iterations N] [--batch B] [--threads T]
          MODEL          an ONNX model file
          --input FILE   a TensorProto .pb file per model input, in order (default: deterministic values
                         ((i*2654435761) % 1000)/1000, symbolic dimensions bound to --batch on axis 0 and 1 elsewhere)
          --iterations N timed runs after the first (default 10)
          --batch B      value for a symbolic first dimension when no --input is given (default 1)
          --threads T    threads an operator may use (default 1)
        """;

    public static int Main(string[] args)
    {
        Options opts;
        try
        {
            opts = Options.Parse(args);
        }
        catch (UsageException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            Console.Error.WriteLine(Usage);
            return 1;
        }
        if (opts.Help)
        {
            Console.WriteLine(Usage);
            return 0;
        }
        try
        {
            return Run(opts);
        }
        catch (Exception e) when (e is EngineException or IOException or UnauthorizedAccessException or InvalidDataException or ArgumentException or InvalidOperationException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 2;
        }
    }

    private static int Run(Options o)
    {
        if (!File.Exists(o.Model)) throw new FileNotFoundException($"model file '{o.Model}' does not exist");
        long t0 = Stopwatch.GetTimestamp();
        var session = InferenceSession.Load(o.Model, new SessionOptions { Threads = o.Threads });
        double loadMs = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        Console.WriteLine($"model: {o.Model} (engine {EngineInfo.Version}); loaded in {Ms(loadMs)} ms");

        var inputs = new Tensor[session.Inputs.Count];
        if (o.Inputs.Count > 0)
        {
            if (o.Inputs.Count != inputs.Length)
                throw new InferenceInputException($"the model takes {inputs.Length} input(s) ({Names(session)}); {o.Inputs.Count} given with --input");
            for (int i = 0; i < inputs.Length; i++)
            {
                if (!File.Exists(o.Inputs[i])) throw new FileNotFoundException($"input file '{o.Inputs[i]}' does not exist");
                inputs[i] = OnnxTensors.ReadPb(File.ReadAllBytes(o.Inputs[i]), o.Inputs[i]);
            }
        }
        else
        {
            for (int i = 0; i < inputs.Length; i++) inputs[i] = DeterministicInput(session.Inputs[i].Name, session.Inputs[i].Type, session.Inputs[i].Shape, o.Batch);
        }
        for (int i = 0; i < inputs.Length; i++)
            Console.WriteLine($"input {session.Inputs[i].Name}: {inputs[i]}{(o.Inputs.Count > 0 ? " from " + o.Inputs[i] : " (deterministic)")}");

        var outputs = new Tensor[session.Outputs.Count];
        t0 = Stopwatch.GetTimestamp();
        session.Run(inputs, outputs);
        double firstMs = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;

        var ticks = new long[o.Iterations];
        for (int i = 0; i < ticks.Length; i++)
        {
            long s = Stopwatch.GetTimestamp();
            session.Run(inputs, outputs);
            ticks[i] = Stopwatch.GetTimestamp() - s;
        }

        for (int j = 0; j < outputs.Length; j++) PrintOutput(session.Outputs[j].Name, outputs[j]);

        Console.Write($"latency: first run {Ms(firstMs)} ms (plans memory)");
        if (ticks.Length > 0)
        {
            Array.Sort(ticks);
            double us(long t) => t * 1e6 / Stopwatch.Frequency;
            double sum = 0;
            foreach (var t in ticks) sum += us(t);
            Console.Write($"; {ticks.Length} runs: p50 {Us(us(ticks[ticks.Length / 2]))} us, min {Us(us(ticks[0]))} us, mean {Us(sum / ticks.Length)} us");
        }
        Console.WriteLine($"; arena {session.PlannedArenaBytes} bytes");
        return 0;
    }

    private static void PrintOutput(string name, Tensor t)
    {
        Console.WriteLine($"output {name}: {t}");
        bool integral = t.Type is DataType.Int64 or DataType.Int32 or DataType.Int8 or DataType.UInt8 or DataType.Bool;
        if (t.Type != DataType.Float32 && !integral) return; // no preview for other element types
        int n = Math.Min(t.Length, 10);
        var parts = new string[n];
        for (int i = 0; i < n; i++)
            parts[i] = t.Type == DataType.Float32
                ? t.GetFloat(i).ToString("G6", CultureInfo.InvariantCulture)
                : t.GetInt64(i).ToString(CultureInfo.InvariantCulture);
        Console.WriteLine("  [" + string.Join(", ", parts) + (t.Length > n ? ", ..." : "") + "]");
        if (t.Type != DataType.Float32 || t.Rank == 0 || t.Length == 0) return;
        // argmax over the last axis, per row (a classifier's [batch, classes] output).
        int cols = t.Shape[^1];
        int rows = t.Length / Math.Max(cols, 1);
        if (cols < 2 || rows > 64) return;
        var span = t.ReadOnlySpan<float>();
        var arg = new string[rows];
        for (int r = 0; r < rows; r++)
        {
            var row = span.Slice(r * cols, cols);
            int best = 0;
            for (int k = 1; k < row.Length; k++) if (row[k] > row[best]) best = k;
            arg[r] = best.ToString(CultureInfo.InvariantCulture);
        }
        Console.WriteLine("  argmax: " + string.Join(" ", arg));
    }

    /// <summary>The benchmarks' input (same as `tinyops bench` and the ORT peer's bench.mjs).</summary>
    private static Tensor DeterministicInput(string name, DataType type, Engine.Ir.Dim[]? dims, int batch)
    {
        if (dims is null) throw new InferenceInputException($"input '{name}' has no declared rank; give it with --input FILE.pb");
        var shape = new int[dims.Length];
        for (int d = 0; d < shape.Length; d++) shape[d] = dims[d].IsKnown ? checked((int)dims[d].Value) : (d == 0 ? batch : 1);
        var t = Tensor.Zeros(type == DataType.Undefined ? DataType.Float32 : type, shape);
        if (t.Type == DataType.Float32)
        {
            var span = t.Span<float>();
            for (int i = 0; i < span.Length; i++) span[i] = (float)((double)((ulong)i * 2654435761UL % 1000UL) / 1000.0);
        }
        return t;
    }

    private static string Names(InferenceSession s)
    {
        var names = new string[s.Inputs.Count];
        for (int i = 0; i < names.Length; i++) names[i] = s.Inputs[i].Name;
        return string.Join(", ", names);
    }

    private static string Ms(double v) => v.ToString("F2", CultureInfo.InvariantCulture);
    private static string Us(double v) => v.ToString("F1", CultureInfo.InvariantCulture);

    private sealed class UsageException(string message) : Exception(message);

    private sealed class Options
    {
        public string Model { get; private set; } = "";
        public List<string> Inputs { get; } = [];
        public int Iterations { get; private set; } = 10;
        public int Batch { get; private set; } = 1;
        public int Threads { get; private set; } = 1;
        public bool Help { get; private set; }

        public static Options Parse(string[] args)
        {
            var o = new Options();
            for (int i = 0; i < args.Length; i++)
            {
                string a = args[i];
                switch (a)
                {
                    case "-h" or "--help": o.Help = true; return o;
                    case "--input" or "-i": o.Inputs.Add(Value(args, ref i)); break;
                    case "--iterations" or "-n": o.Iterations = Int(args, ref i, 0); break;
                    case "--batch" or "-b": o.Batch = Int(args, ref i, 1); break;
                    case "--threads" or "-t": o.Threads = Int(args, ref i, 1); break;
                    default:
                        if (a.StartsWith('-')) throw new UsageException($"unknown option '{a}'");
                        if (o.Model.Length > 0) throw new UsageException($"one model only; '{a}' is extra");
                        o.Model = a;
                        break;
                }
            }
            if (o.Model.Length == 0) throw new UsageException("no model given");
            return o;
        }

        private static string Value(string[] args, ref int i)
        {
            if (i + 1 >= args.Length) throw new UsageException($"{args[i]} needs a value");
            return args[++i];
        }

        private static int Int(string[] args, ref int i, int min)
        {
            string name = args[i];
            string v = Value(args, ref i);
            if (!int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out int n) || n < min)
                throw new UsageException($"{name} must be a whole number of at least {min}, got '{v}'");
            return n;
        }
    }
}
