using FsCheck;
using FsCheck.Fluent;
using TinyOps.Engine.Onnx;
using TinyOps.Engine.Runtime;
using TinyOps.Engine.Tensors;
using Xunit;

namespace TinyOps.Engine.Tests.Robustness;

/// <summary>
/// Mutates real model bytes thousands of times. Loading, planning and running a mutant either succeeds or throws
/// an <see cref="EngineException"/>: never another exception type, a crash, a hang or an unbounded allocation.
/// </summary>
public sealed class MutationPropertyTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private readonly Xunit.Abstractions.ITestOutputHelper _output = output;

    private static readonly SessionOptions Bounded = new() { MaxArenaBytes = 64L << 20, MaxFoldElements = 1 << 20 };

    public static IEnumerable<object[]> Seeds() =>
    [
        [Path.Combine(TestPaths.ReferenceModels, "fmnist_mlp_test", "model.onnx")],
        [Path.Combine(TestPaths.ReferenceModels, "fmnist_cnn_test", "model.onnx")],
        [Path.Combine(TestPaths.OnnxTests, "node", "test_conv_with_strides_padding", "model.onnx")],
        [Path.Combine(TestPaths.OnnxTests, "node", "test_resize_upsample_scales_linear", "model.onnx")],
        [Path.Combine(TestPaths.OnnxTests, "node", "test_lstm_with_peepholes", "model.onnx")],
        [Path.Combine(TestPaths.OnnxTests, "node", "test_qlinearconv", "model.onnx")],
        [Path.Combine(TestPaths.OnnxTests, "node", "test_if", "model.onnx")],
    ];

    [Theory]
    [MemberData(nameof(Seeds))]
    public void MutantsFailCleanly(string seedPath)
    {
        var original = File.ReadAllBytes(seedPath);
        var mutation = Gen.Choose(0, 3).SelectMany(kind => Gen.Choose(0, original.Length - 1).SelectMany(pos =>
            Gen.Choose(0, 255).SelectMany(value => Gen.Choose(1, 64).Select(len => (kind, pos, value, len)))));
        int tried = 0, ran = 0;
        int count = original.Length > 100_000 ? 600 : 1500;
        Prop.ForAll(mutation.ToArbitrary(), m =>
        {
            tried++;
            var bytes = Mutate(original, m.kind, m.pos, (byte)m.value, m.len);
            if (TryLoadAndRun(bytes)) ran++;
            return true;
        }).Check(Config.QuickThrowOnFailure.WithMaxTest(count).WithQuietOnSuccess(true).WithReplay(12345UL, 67891UL));
        _output.WriteLine($"{Path.GetFileName(Path.GetDirectoryName(seedPath))}: {tried} mutants, {ran} loaded and ran, {tried - ran} refused with an engine error");
        Assert.Equal(count, tried);
        Assert.True(ran < tried, "no mutant was refused: the mutations are not reaching the parser");
    }

    private static byte[] Mutate(byte[] original, int kind, int pos, byte value, int len)
    {
        switch (kind)
        {
            case 0: // overwrite one byte
            {
                var b = (byte[])original.Clone();
                b[pos] = value;
                return b;
            }
            case 1: // truncate
                return original[..pos];
            case 2: // delete a run
                return [.. original[..pos], .. original[Math.Min(original.Length, pos + len)..]];
            default: // insert a run of one value (often a huge varint)
                return [.. original[..pos], .. Enumerable.Repeat(value, len), .. original[pos..]];
        }
    }

    /// <summary>True if the mutant loaded and ran; false if it was refused with an engine error.</summary>
    private static bool TryLoadAndRun(byte[] bytes)
    {
        try
        {
            var session = new InferenceSession(OnnxLoader.Load(bytes, "mutant"), Bounded);
            var feed = new Dictionary<string, Tensor>();
            foreach (var input in session.Inputs)
            {
                if (input.Shape is null || !input.Type.IsSupported()) return false;
                var shape = input.Shape.Select(d => d.IsKnown ? (int)Math.Min(d.Value, 64) : 1).ToArray();
                if (ShapeUtil.SizeChecked(shape, "input") > 1 << 20) return false;
                feed[input.Name] = Tensor.Zeros(input.Type, shape);
            }
            session.Run(feed);
            return true;
        }
        catch (EngineException)
        {
            return false;
        }
    }
}
