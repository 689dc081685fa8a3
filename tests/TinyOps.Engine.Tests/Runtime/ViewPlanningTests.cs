using TinyOps.Engine.Ir;
using TinyOps.Engine.Runtime;
using TinyOps.Engine.Tensors;
using Xunit;

namespace TinyOps.Engine.Tests.Runtime;

/// <summary>
/// Copy-only nodes (Flatten, Reshape, Squeeze, Unsqueeze, Identity) between planned values become views of their
/// input's arena bytes and are not run; the input's buffer must then stay live for every view.
/// </summary>
public class ViewPlanningTests
{
    private static Node N(string op, string[] inputs, string output) => new() { Name = output, OpType = op, Inputs = [.. inputs], Outputs = [output] };

    private static float[] Input(int n) => Enumerable.Range(0, n).Select(i => (float)Math.Sin(i * 1.7) * 3).ToArray();

    private static (Dictionary<string, Tensor> Outputs, IReadOnlyList<NodeTime> Profile) Run(Graph g, float[] x, int[] shape)
    {
        var s = new InferenceSession(new Model { Graph = g, Opsets = { [""] = 13 } }, new SessionOptions { ProfileNodes = true });
        var r = s.Run(new Dictionary<string, Tensor> { ["X"] = Tensor.FromArray(x, shape) });
        return (r, s.NodeProfile());
    }

    [Fact]
    public void ViewChainKeepsItsRootAliveWhileLaterNodesAllocate()
    {
        // B = Flatten(Relu(X)) is read only at the end; C, D, E are computed in between and would reuse A's bytes if
        // A died at the Flatten.
        var g = new Graph
        {
            Nodes =
            [
                N("Relu", ["X"], "A"),
                N("Flatten", ["A"], "B"),
                N("Neg", ["X"], "C"),
                N("Neg", ["C"], "D"),
                N("Neg", ["D"], "E"),
                N("Flatten", ["E"], "F"),
                N("Reshape", ["B", "shape"], "G"),
                N("Identity", ["G"], "H"),
                N("Reshape", ["F", "shape"], "I"),
                N("Add", ["H", "I"], "Y"),
            ],
            Inputs = [new ValueInfo("X", DataType.Float32, [Dim.Of(2), Dim.Of(3), Dim.Of(4)])],
            Outputs = [new ValueInfo("Y", DataType.Float32, null), new ValueInfo("G", DataType.Float32, null)],
        };
        g.Initializers["shape"] = Tensor.FromArray(new long[] { 4, 6 }, 2);
        var x = Input(24);
        var (outs, profile) = Run(g, x, [2, 3, 4]);
        var y = outs["Y"].ToArray<float>();
        var gv = outs["G"].ToArray<float>();
        Assert.Equal([4, 6], outs["Y"].Shape);
        Assert.Equal([4, 6], outs["G"].Shape);
        for (int i = 0; i < 24; i++)
        {
            Assert.Equal(Math.Max(x[i], 0f) - x[i], y[i]);
            Assert.Equal(Math.Max(x[i], 0f), gv[i]);
        }
        foreach (var name in new[] { "B", "F", "G", "H", "I" }) Assert.Equal(0, profile.Single(p => p.Name == name).Runs);
        Assert.All(profile.Where(p => p.OpType is "Relu" or "Neg" or "Add"), p => Assert.True(p.Runs > 0));
    }

    [Fact]
    public void CopyOfAGraphInputStillRuns()
    {
        var g = new Graph
        {
            Nodes = [N("Flatten", ["X"], "Y")],
            Inputs = [new ValueInfo("X", DataType.Float32, [Dim.Of(2), Dim.Of(3), Dim.Of(4)])],
            Outputs = [new ValueInfo("Y", DataType.Float32, null)],
        };
        var x = Input(24);
        var (outs, profile) = Run(g, x, [2, 3, 4]);
        Assert.Equal(x, outs["Y"].ToArray<float>());
        Assert.Equal(1, profile.Single().Runs);
    }

    [Fact]
    public void ViewsAllocateNothingPerRun()
    {
        var g = new Graph
        {
            Nodes = [N("Relu", ["X"], "A"), N("Flatten", ["A"], "B"), N("Neg", ["B"], "Y")],
            Inputs = [new ValueInfo("X", DataType.Float32, [Dim.Of(2), Dim.Of(8)])],
            Outputs = [new ValueInfo("Y", DataType.Float32, null)],
        };
        var s = new InferenceSession(new Model { Graph = g, Opsets = { [""] = 13 } });
        var inputs = new[] { Tensor.FromArray(Input(16), 2, 8) };
        var outputs = new Tensor[1];
        s.Run(inputs, outputs);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10; i++) s.Run(inputs, outputs);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        var y = outputs[0].ToArray<float>();
        var x = inputs[0].ToArray<float>();
        for (int i = 0; i < 16; i++) Assert.Equal(-Math.Max(x[i], 0f), y[i]);
    }
}
