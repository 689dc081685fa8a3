using TinyOps.Engine.Data;
using TinyOps.Engine.Ir;
using TinyOps.Engine.Onnx;
using TinyOps.Engine.Runtime;
using TinyOps.Engine.Tensors;
using TinyOps.Optimize.Passes;
using TinyOps.Optimize.Quantization;

namespace TinyOps.Optimize.Tests;

/// <summary>Helpers the pass tests share: run a model, write and reload it, compare outputs, accuracy.</summary>
internal static class TestModels
{
    public static readonly Lazy<ImageDataset> Test = new(() => FashionMnist.LoadTest());
    public static readonly Lazy<ImageDataset> Train = new(() => FashionMnist.LoadTrain());

    public static CalibrationSet Calibration(int n = 500) => CalibrationSet.FromImages(Train.Value, n, "the Fashion-MNIST training set");

    /// <summary>Applies a pass, writes the result as ONNX and reads it back (so every test also checks the file is valid).</summary>
    public static Model ApplyAndReload(IModelPass pass, Model model)
    {
        var outcome = pass.Run(model, PassContext.Default);
        return OnnxLoader.Load(OnnxWriter.Write(outcome.Model), pass.Name + " output");
    }

    /// <summary>The model's first output on <paramref name="x"/> (a copy).</summary>
    public static float[] Run(Model model, Tensor x, bool fuse = true)
    {
        var session = new InferenceSession(model, new SessionOptions { FuseActivations = fuse });
        var outputs = new Tensor[session.Outputs.Count];
        session.Run([x], outputs);
        return outputs[0].ToArray<float>();
    }

    /// <summary>A batch of pseudo-random inputs of the model input's shape, batch dimension <paramref name="batch"/>.</summary>
    public static Tensor RandomInput(Model model, int batch, int firstSample = 0)
    {
        var input = model.Graph.RuntimeInputs.First();
        int[] shape = [batch, .. input.Shape!.Skip(1).Select(d => (int)d.Value)];
        var x = Tensor.Zeros(DataType.Float32, shape);
        PseudoRandomInputs.Fill(firstSample, x.Length / batch, x.Span<float>());
        return x;
    }

    public static Tensor FashionBatch(int count)
    {
        var d = Test.Value;
        var x = Tensor.Zeros(DataType.Float32, count, 1, d.Rows, d.Cols);
        d.Images.AsSpan(0, count * d.ImageSize).CopyTo(x.Span<float>());
        return x;
    }

    public static double Accuracy(Model model) => Evaluator.Accuracy(new InferenceSession(model), Test.Value, Test.Value.Count, 200).Accuracy;

    /// <summary>Largest |a − b| relative to the largest |a|.</summary>
    public static double RelativeMaxDiff(float[] a, float[] b)
    {
        double diff = 0, scale = 0;
        for (int i = 0; i < a.Length; i++)
        {
            diff = Math.Max(diff, Math.Abs((double)a[i] - b[i]));
            scale = Math.Max(scale, Math.Abs((double)a[i]));
        }
        return scale == 0 ? diff : diff / scale;
    }

    /// <summary>
    /// The model with a BatchNormalization (pseudo-random scale, shift, mean and variance, as a trained network's)
    /// inserted after every Conv and Gemm: the unfolded form BatchNormalization folding undoes.
    /// </summary>
    public static Model WithBatchNorms(Model model)
    {
        var edit = new GraphEdit(model);
        var g = edit.Graph;
        var rng = new Random(1234);
        foreach (var n in g.Nodes.ToList())
        {
            if (n.OpType is not ("Conv" or "Gemm") || !edit.TryFloatConstant(n.Inputs[1], out var w)) continue;
            int c = n.OpType == "Conv" ? w.Shape[0] : n.GetInt("transB", 0) != 0 ? w.Shape[0] : w.Shape[1];
            float[] Make(double lo, double hi) => Enumerable.Range(0, c).Select(_ => (float)(lo + rng.NextDouble() * (hi - lo))).ToArray();
            string o = n.Outputs[0];
            string mid = edit.Unique(o + "_prebn");
            n.Outputs[0] = mid;
            var bn = new Node { Name = edit.Unique(o + "_bn"), OpType = "BatchNormalization" };
            bn.Inputs.Add(mid);
            bn.Inputs.Add(edit.AddInitializer(o + "_gamma", Tensor.FromArray(Make(0.5, 1.5), c)));
            bn.Inputs.Add(edit.AddInitializer(o + "_beta", Tensor.FromArray(Make(-0.5, 0.5), c)));
            bn.Inputs.Add(edit.AddInitializer(o + "_mean", Tensor.FromArray(Make(-1, 1), c)));
            bn.Inputs.Add(edit.AddInitializer(o + "_var", Tensor.FromArray(Make(0.25, 4), c)));
            bn.Outputs.Add(o);
            g.Nodes.Insert(g.Nodes.IndexOf(n) + 1, bn);
        }
        return OnnxLoader.Load(OnnxWriter.Write(edit.ToModel()), "with batch norms");
    }
}
