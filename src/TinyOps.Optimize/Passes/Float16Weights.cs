using TinyOps.Engine.Ir;
using TinyOps.Engine.Tensors;

namespace TinyOps.Optimize.Passes;

/// <summary>
/// Float16 weight storage: every float32 initializer of at least <see cref="MinElements"/> elements is stored as
/// float16 (round to nearest even) and read through a Cast to float32, so the file holds half the weight bytes. Runtimes
/// compute in float32 as before (the engine folds the Cast once at load, so inference costs nothing extra); the
/// outputs change by the float16 rounding of the weights (relative 2^-11 per weight). A tensor with a value beyond
/// float16's range (|x| > 65504) stays float32 and is reported.
/// </summary>
public sealed class Float16Weights : IModelPass
{
    public string Name => "float16-weights";

    /// <summary>Smaller initializers (scales, shapes, small biases) stay float32: the Cast would cost more than it saves.</summary>
    public int MinElements { get; init; } = 16;

    public PassOutcome Run(Model model, PassContext context)
    {
        var edit = new GraphEdit(model);
        var g = edit.Graph;
        var casts = new List<Node>();
        var details = new List<string>();
        long saved = 0;
        foreach (var name in g.Initializers.Keys.ToList())
        {
            if (!edit.TryFloatConstant(name, out var t) || t.Length < MinElements) continue;
            var src = t.ReadOnlySpan<float>();
            var half = new Half[src.Length];
            bool fits = true;
            for (int i = 0; i < src.Length && fits; i++)
            {
                half[i] = (Half)src[i];
                fits = !Half.IsInfinity(half[i]) || float.IsInfinity(src[i]);
            }
            if (!fits)
            {
                details.Add($"{name}: kept float32, a value is beyond float16's range (65504)");
                continue;
            }
            string stored = edit.AddInitializer(name + "_fp16", Tensor.FromArray(half, (int[])t.Shape.Clone()));
            g.Initializers.Remove(name);
            var cast = new Node { Name = edit.Unique(name + "_Cast"), OpType = "Cast", Inputs = [stored], Outputs = [name] };
            cast.Attributes["to"] = AttributeValue.Of("to", (long)DataType.Float32);
            casts.Add(cast);
            saved += 2L * t.Length;
        }
        g.Nodes.InsertRange(0, casts);
        return edit.Finish(Name, casts.Count, $"{casts.Count} weight tensors stored as float16 ({saved:N0} bytes saved)", details);
    }
}
