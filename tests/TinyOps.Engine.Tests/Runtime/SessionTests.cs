using TinyOps.Engine.Runtime;
using TinyOps.Engine.Tensors;
using Xunit;

namespace TinyOps.Engine.Tests.Runtime;

public sealed class SessionTests
{
    /// <summary>After the first run with a shape, a run allocates nothing on the managed heap.</summary>
    [Theory]
    [InlineData("fmnist_cnn.onnx", 1)]
    [InlineData("fmnist_cnn.onnx", 8)]
    [InlineData("fmnist_mlp.onnx", 1)]
    public void RunsAllocateNothingAfterWarmUp(string file, int batch)
    {
        var session = InferenceSession.Load(Path.Combine(TestPaths.ReferenceModels, file));
        var input = Tensor.Zeros(DataType.Float32, batch, 1, 28, 28);
        var outputs = new Tensor[1];
        // Warm-up long enough for tiered compilation: an on-stack replacement compiles on this thread and may run
        // a class constructor there, which is a one-time allocation, not a per-run one.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        for (int i = 0; i < 30 || clock.ElapsedMilliseconds < 400; i++) session.Run([input], outputs);
        Thread.Sleep(150);
        for (int i = 0; i < 5; i++) session.Run([input], outputs);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10; i++) session.Run([input], outputs);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, allocated);
    }

    [Fact]
    public void BatchDimensionIsSymbolicAndPlansPerShape()
    {
        var session = InferenceSession.Load(Path.Combine(TestPaths.ReferenceModels, "fmnist_cnn.onnx"));
        var outputs = new Tensor[1];
        session.Run([Tensor.Zeros(DataType.Float32, 3, 1, 28, 28)], outputs);
        Assert.Equal([3, 10], outputs[0].Shape);
        session.Run([Tensor.Zeros(DataType.Float32, 5, 1, 28, 28)], outputs);
        Assert.Equal([5, 10], outputs[0].Shape);
    }

    [Fact]
    public void ProfileShowsSymbolicBatchAndCounts()
    {
        var session = InferenceSession.Load(Path.Combine(TestPaths.ReferenceModels, "fmnist_cnn.onnx"));
        var p = TinyOps.Engine.Profiling.ModelProfiler.Profile(session);
        Assert.Equal(52138, p.TotalParameters);
        Assert.True(p.TotalMacs > 0);
        Assert.Contains(p.Nodes, n => n.OutputShapes.StartsWith("[batch,", StringComparison.Ordinal));
    }
}
