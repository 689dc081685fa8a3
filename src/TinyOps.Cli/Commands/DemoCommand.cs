using System.CommandLine;
using System.Diagnostics;
using Spectre.Console;
using TinyOps.Engine.Conformance;
using TinyOps.Engine.Data;
using TinyOps.Engine.Onnx;
using TinyOps.Engine.Profiling;
using TinyOps.Engine.Runtime;
using TinyOps.Engine.Tensors;
using TinyOps.Protocol.Management;

namespace TinyOps.Cli.Commands;

/// <summary>
/// `tinyops demo`: the main job on the embedded defaults. First the on-device engine end to end on the embedded
/// Fashion-MNIST CNN (inspect, plan, run against PyTorch's expected outputs, write ONNX back, measure), then the
/// whole loop (<see cref="Demo.FleetDemo"/>): recipe, variants, a simulated fleet, staged rollout, telemetry.
/// </summary>
internal static class DemoCommand
{
    public static Command Create()
    {
        var iterations = new Option<int>("--iterations") { Description = "timed runs for the latency figure", DefaultValueFactory = _ => 200 };
        var devices = new Option<int>("--devices") { Description = "simulated devices in the fleet", DefaultValueFactory = _ => 300 };
        var data = new Option<string?>("--data") { Description = "data directory for the demo's control plane (default: a new temporary folder)" };
        var serve = new Option<bool>("--serve") { Description = "keep the control plane running after the demo, until Ctrl+C, to browse the dashboard" };
        var engineOnly = new Option<bool>("--engine-only") { Description = "only the on-device engine part" };
        var cmd = new Command("demo", "Run the whole TinyOps loop on the embedded sample model: engine, registry, recipe and variants, fleet, staged rollout, inference, telemetry");
        cmd.Options.Add(iterations);
        cmd.Options.Add(devices);
        cmd.Options.Add(data);
        cmd.Options.Add(serve);
        cmd.Options.Add(engineOnly);
        cmd.SetAction(r => CliErrors.Guard(async () =>
        {
            int code = Run(Math.Max(1, r.GetValue(iterations)));
            if (code != 0 || r.GetValue(engineOnly)) return code;
            return await RunFleetAsync(r.GetValue(devices), r.GetValue(data), r.GetValue(serve));
        }));
        return cmd;
    }

    private static async Task<int> RunFleetAsync(int devices, string? data, bool serve)
    {
        var console = AnsiConsole.Console;
        console.Write(new Rule("[bold]TinyOps demo: the control plane and a simulated fleet[/]").LeftJustified());
        var result = await Demo.FleetDemo.RunAsync(new Demo.FleetDemo.Options
        {
            Model = Resource("samples/fmnist_cnn/model.onnx"),
            Samples = Demo.SampleBatch.Read(Resource("samples/fmnist_cnn/input_0.pb"), Resource("samples/fmnist_cnn/output_0.pb")),
            Devices = devices,
            DataDirectory = data,
            Serve = serve ? async s =>
            {
                console.MarkupLine("serving until Ctrl+C");
                var stop = new TaskCompletionSource();
                Console.CancelKeyPress += (_, e) => { e.Cancel = true; stop.TrySetResult(); };
                await stop.Task;
            } : null,
        }, console);
        bool ok = result.Job.State == JobStates.Succeeded && result.Deployment.Status == "completed" && result.Deployment.Installed > 0 && result.Telemetry.Inferences == result.Inferences;
        console.MarkupLine(!ok ? "[red]demo finished with problems (see above)[/]"
            : result.Deployment.Incompatible == 0 ? $"[green]demo finished: the recipe's variants reached all {result.Deployment.Installed} devices, each class the variant that fits it, and their telemetry arrived[/]"
            : $"[green]demo finished: the model reached every device that can run it ({result.Deployment.Incompatible} refused, see above), and their telemetry arrived[/]");
        return ok ? 0 : 1;
    }

    private static byte[] Resource(string name)
    {
        using var s = typeof(DemoCommand).Assembly.GetManifestResourceStream(name) ?? throw new FileNotFoundException($"embedded resource {name} is missing from this build");
        using var m = new MemoryStream();
        s.CopyTo(m);
        return m.ToArray();
    }

    private static int Run(int iterations)
    {
        var console = AnsiConsole.Console;
        console.Write(new Rule("[bold]TinyOps demo: the on-device engine[/]").LeftJustified());

        // 1. Load and inspect.
        var modelBytes = Resource("samples/fmnist_cnn/model.onnx");
        var sw = Stopwatch.StartNew();
        var session = InferenceSession.Load(modelBytes);
        double loadMs = sw.Elapsed.TotalMilliseconds;
        var profile = ModelProfiler.Profile(session);
        console.WriteLine($"1. loaded the embedded Fashion-MNIST CNN ({modelBytes.Length:N0} bytes) in {loadMs:F1} ms");
        var table = new Table().AddColumns("node", "op", "output", "MACs", "params").Border(TableBorder.Rounded);
        foreach (var n in profile.Nodes) table.AddRow(Markup.Escape(n.Node), n.OpType, Markup.Escape(n.OutputShapes), n.Macs.ToString("N0"), n.Parameters.ToString("N0"));
        console.Write(table);
        console.WriteLine($"   {profile.TotalParameters:N0} parameters, {profile.TotalMacs:N0} MACs per image, planned arena {profile.PlannedArenaBytes:N0} bytes (live bound {profile.LiveLowerBound:N0})");

        // 2. Run the PyTorch-made test set.
        var input = OnnxTensors.ReadPb(Resource("samples/fmnist_cnn/input_0.pb"), "input_0.pb");
        var expected = OnnxTensors.ReadPb(Resource("samples/fmnist_cnn/output_0.pb"), "output_0.pb");
        var output = session.Run(new Dictionary<string, Tensor> { [session.Inputs[0].Name] = input })[session.Outputs[0].Name];
        string? diff = OnnxTestRunner.Compare(output, expected, OnnxTestRunner.DefaultRtol, OnnxTestRunner.DefaultAtol);
        console.WriteLine($"2. ran a batch of {input.Shape[0]} images: outputs {(diff is null ? "match PyTorch's (rtol 1e-3, atol 1e-5)" : "DIFFER: " + diff)}");

        // 3. Write the model back as ONNX and reload it.
        var rewritten = OnnxWriter.Write(session.Model);
        var again = InferenceSession.Load(rewritten);
        var output2 = again.Run(new Dictionary<string, Tensor> { [again.Inputs[0].Name] = input })[again.Outputs[0].Name];
        bool same = output.Bytes.SequenceEqual(output2.Bytes);
        console.WriteLine($"3. wrote the model back as ONNX ({rewritten.Length:N0} bytes) and reloaded it: outputs {(same ? "identical" : "DIFFERENT")}");

        // 4. Latency at batch 1, no allocation per run.
        var one = Tensor.Zeros(DataType.Float32, 1, 1, 28, 28);
        input.Span<float>()[..784].CopyTo(one.Span<float>());
        var outs = new Tensor[1];
        for (int i = 0; i < 10; i++) session.Run([one], outs);
        var times = new double[iterations];
        long alloc0 = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < iterations; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            session.Run([one], outs);
            times[i] = Stopwatch.GetElapsedTime(t0).TotalMicroseconds;
        }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - alloc0;
        Array.Sort(times);
        console.WriteLine($"4. batch-1 latency over {iterations} runs: p50 {times[iterations / 2]:F0} us, p90 {times[(int)(iterations * 0.9)]:F0} us; {allocated} bytes allocated by those runs");

        // 5. Accuracy on the real test set when it is installed.
        try
        {
            var data = FashionMnist.LoadTest();
            var eval = Evaluator.Accuracy(session, data, data.Count, 100);
            console.WriteLine($"5. accuracy on the {eval.Count:N0} Fashion-MNIST test images: {eval.Accuracy:F4} (PyTorch: 0.8733)");
        }
        catch (DirectoryNotFoundException e)
        {
            console.WriteLine($"5. skipped the accuracy check: {e.Message}");
        }
        bool ok = diff is null && same;
        console.WriteLine(ok ? "demo finished: all checks passed" : "demo finished with failures");
        return ok ? 0 : 1;
    }
}
