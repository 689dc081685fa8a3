using System.CommandLine;
using System.Runtime.InteropServices;
using TinyOps.Engine;
using TinyOps.Engine.Onnx;
using TinyOps.Engine.Runtime;
using TinyOps.Engine.Tensors;

namespace TinyOps.Cli.Commands;

/// <summary>`tinyops run MODEL --input FILE...`: runs a model on TensorProto (.pb) or raw float32 inputs.</summary>
internal static class RunCommand
{
    public static Command Create()
    {
        var model = new Argument<string>("model") { Description = "an ONNX model file" };
        var inputs = new Option<string[]>("--input", "-i") { Description = "an input per model input, in order: a TensorProto .pb file, or NAME=FILE; any other file is read as raw little-endian float32 in the input's declared shape (symbolic dimensions from the file size)", AllowMultipleArgumentsPerToken = true };
        var save = new Option<string?>("--save") { Description = "folder to write output_<j>.pb files into" };
        var cmd = new Command("run", "Run a model once and print its outputs");
        cmd.Arguments.Add(model);
        cmd.Options.Add(inputs);
        cmd.Options.Add(save);
        cmd.SetAction(r => CliErrors.Guard(() => Run(r.GetValue(model)!, r.GetValue(inputs) ?? [], r.GetValue(save))));
        return cmd;
    }

    private static int Run(string path, string[] inputFiles, string? saveDir)
    {
        var session = InferenceSession.Load(path);
        if (inputFiles.Length != session.Inputs.Count)
            throw new InferenceInputException($"the model takes {session.Inputs.Count} inputs ({string.Join(", ", session.Inputs)}); {inputFiles.Length} given with --input");
        var feed = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        for (int i = 0; i < inputFiles.Length; i++)
        {
            string spec = inputFiles[i];
            var info = session.Inputs[i];
            int eq = spec.IndexOf('=');
            if (eq > 0 && session.Inputs.Any(x => x.Name == spec[..eq])) { info = session.Inputs.First(x => x.Name == spec[..eq]); spec = spec[(eq + 1)..]; }
            feed[info.Name] = ReadInput(spec, info);
        }
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var outputs = session.Run(feed);
        sw.Stop();
        int j = 0;
        foreach (var o in session.Outputs)
        {
            var t = outputs[o.Name];
            Console.WriteLine($"{o.Name}: {t}");
            Console.WriteLine("  " + Preview(t));
            if (t.Type == DataType.Float32 && t.Length > 1)
            {
                var s = t.Span<float>();
                int arg = 0;
                for (int k = 1; k < s.Length && k < 1000; k++) if (s[k] > s[arg]) arg = k;
                if (t.Shape.Length <= 2 && t.Shape[0] <= 1) Console.WriteLine($"  argmax: {arg}");
            }
            if (saveDir is not null)
            {
                Directory.CreateDirectory(saveDir);
                File.WriteAllBytes(Path.Combine(saveDir, $"output_{j}.pb"), OnnxTensors.WritePb(t, o.Name));
            }
            j++;
        }
        Console.WriteLine($"time: {sw.Elapsed.TotalMilliseconds:F2} ms (first run, includes planning)");
        return 0;
    }

    private static Tensor ReadInput(string file, Engine.Ir.ValueInfo info)
    {
        var bytes = File.ReadAllBytes(file);
        if (file.EndsWith(".pb", StringComparison.OrdinalIgnoreCase)) return OnnxTensors.ReadPb(bytes, file);
        if (info.Shape is null) throw new InferenceInputException($"input '{info.Name}' has no declared shape; give it as a TensorProto .pb file");
        if (bytes.Length % 4 != 0) throw new InferenceInputException($"{file}: {bytes.Length} bytes is not a whole number of float32 values");
        int count = bytes.Length / 4;
        long known = 1;
        int unknown = 0;
        foreach (var d in info.Shape) { if (d.IsKnown) known *= d.Value; else unknown++; }
        if (unknown > 1) throw new InferenceInputException($"input '{info.Name}' {info.ShapeText} has several symbolic dimensions; give it as a .pb file");
        if (known == 0 || count % known != 0) throw new InferenceInputException($"{file}: {count} floats do not fill input '{info.Name}' {info.ShapeText}");
        var shape = info.Shape.Select(d => d.IsKnown ? (int)d.Value : (int)(count / known)).ToArray();
        if (unknown == 0 && known != count) throw new InferenceInputException($"{file}: {count} floats, input '{info.Name}' {info.ShapeText} needs {known}");
        var t = Tensor.Zeros(DataType.Float32, shape);
        MemoryMarshal.Cast<byte, float>(bytes).CopyTo(t.Span<float>());
        return t;
    }

    private static string Preview(Tensor t)
    {
        int n = Math.Min(t.Length, 10);
        var parts = new string[n];
        for (int i = 0; i < n; i++) parts[i] = t.Type == DataType.Float32 ? t.Span<float>()[i].ToString("G6") : t.GetInt64(i).ToString();
        return "[" + string.Join(", ", parts) + (t.Length > n ? ", ..." : "") + "]";
    }
}
