using System.CommandLine;
using TinyOps.Engine.Conformance;

namespace TinyOps.Cli.Commands;

/// <summary>`tinyops onnx test DIR...`: runs ONNX backend-layout test folders.</summary>
internal static class OnnxCommands
{
    public static Command Create()
    {
        var dirs = new Argument<string[]>("dir") { Description = "test folders (model.onnx + test_data_set_N) or folders containing them", Arity = ArgumentArity.OneOrMore };
        var rtol = new Option<double>("--rtol") { Description = "relative tolerance", DefaultValueFactory = _ => OnnxTestRunner.DefaultRtol };
        var atol = new Option<double>("--atol") { Description = "absolute tolerance", DefaultValueFactory = _ => OnnxTestRunner.DefaultAtol };
        var quiet = new Option<bool>("--failures-only") { Description = "print only failed tests and the summary" };
        var test = new Command("test", "Run ONNX conformance test folders; prints a line per test and 'N passed, M failed, K skipped'");
        test.Arguments.Add(dirs);
        test.Options.Add(rtol);
        test.Options.Add(atol);
        test.Options.Add(quiet);
        test.SetAction(r =>
        {
            List<string> tests;
            try { tests = OnnxTestRunner.FindTests(r.GetValue(dirs)!); }
            catch (DirectoryNotFoundException e) { Console.Error.WriteLine($"error: {e.Message}"); return 2; }
            int passed = 0, failed = 0, skipped = 0;
            bool failuresOnly = r.GetValue(quiet);
            foreach (var dir in tests)
            {
                var res = OnnxTestRunner.Run(dir, r.GetValue(rtol), r.GetValue(atol));
                switch (res.Status)
                {
                    case ConformanceStatus.Passed: passed++; break;
                    case ConformanceStatus.Failed: failed++; break;
                    default: skipped++; break;
                }
                if (!failuresOnly || res.Status == ConformanceStatus.Failed)
                    Console.WriteLine(res.Detail.Length > 0 ? $"{res.Status.ToString().ToLowerInvariant(),-7} {res.Name}: {res.Detail}" : $"{res.Status.ToString().ToLowerInvariant(),-7} {res.Name}");
            }
            Console.WriteLine($"{passed} passed, {failed} failed, {skipped} skipped");
            return failed > 0 ? 1 : 0;
        });
        var onnx = new Command("onnx", "ONNX tools");
        onnx.Subcommands.Add(test);
        return onnx;
    }
}
