using TinyOps.Engine;
using TinyOps.Engine.Ir;
using TinyOps.Engine.Runtime;
using TinyOps.Engine.Tensors;

namespace TinyOps.Optimize.Quantization;

/// <summary>What calibration learned: a range per float activation, and each activation's element type and shape.</summary>
public sealed class CalibrationResult(ICalibrator calibrator, IReadOnlyDictionary<string, DataType> types, IReadOnlyDictionary<string, int[]> shapes, int samples)
{
    public ICalibrator Calibrator { get; } = calibrator;
    public IReadOnlyDictionary<string, DataType> Types { get; } = types;
    /// <summary>Shape of each value in the first calibration run (dimension 0 is that run's batch).</summary>
    public IReadOnlyDictionary<string, int[]> Shapes { get; } = shapes;
    public int Samples { get; } = samples;
    public TensorRange Range(string name) => Calibrator.Range(name);
}

/// <summary>Runs a float model in the engine over a calibration set and feeds every float activation to a calibrator.</summary>
public static class ActivationCalibration
{
    public static CalibrationResult Run(Model prepared, CalibrationSet data, ICalibrator calibrator, int batch = 16)
    {
        var g = prepared.Graph;
        var runtimeInputs = g.RuntimeInputs.ToList();
        if (runtimeInputs.Count != 1)
            throw new QuantizationException($"graph '{g.Name}' takes {runtimeInputs.Count} inputs ({string.Join(", ", runtimeInputs.Select(i => i.Name))}); static calibration supports models with one float input");
        var input = runtimeInputs[0];
        if (input.Type is not (DataType.Float32 or DataType.Undefined))
            throw new QuantizationException($"input '{input.Name}' is {input.Type.OnnxName()}; static calibration needs a float32 input");
        CheckShape(input, data);
        if (batch < 1) throw new QuantizationException($"the calibration batch must be at least 1, it is {batch}");
        if (input.Shape![0].IsKnown) batch = (int)input.Shape[0].Value;

        // Every node output that depends on the input becomes a graph output, so one run shows all activations.
        var dynamicValues = new HashSet<string>(StringComparer.Ordinal) { input.Name };
        var observed = new List<string>();
        foreach (var n in g.Nodes)
        {
            if (!n.Inputs.Any(dynamicValues.Contains)) continue;
            foreach (var o in n.Outputs)
                if (o.Length > 0 && dynamicValues.Add(o)) observed.Add(o);
        }
        var outputs = new List<ValueInfo>(g.Outputs);
        var outputNames = new HashSet<string>(g.Outputs.Select(o => o.Name), StringComparer.Ordinal);
        foreach (var name in observed) if (outputNames.Add(name)) outputs.Add(new ValueInfo(name, DataType.Undefined, null));
        outputs.Insert(0, new ValueInfo(input.Name, DataType.Float32, input.Shape));
        var calibModel = new Model { IrVersion = prepared.IrVersion, Graph = new Graph { Name = g.Name, Nodes = g.Nodes, Inputs = g.Inputs, Initializers = g.Initializers, Outputs = outputs } };
        foreach (var (k, v) in prepared.Opsets) calibModel.Opsets[k] = v;

        InferenceSession session;
        try { session = new InferenceSession(calibModel, new SessionOptions { FuseActivations = false }); }
        catch (EngineException e) { throw new QuantizationException($"the float model cannot be run for calibration: {e.Message}", e); }

        var types = new Dictionary<string, DataType>(StringComparer.Ordinal);
        var shapes = new Dictionary<string, int[]>(StringComparer.Ordinal);
        var results = new Tensor[outputs.Count];
        int size = data.SampleSize;
        Tensor? x = null;
        for (int start = 0; start < data.Count; start += batch)
        {
            int b = Math.Min(batch, data.Count - start);
            if (input.Shape[0].IsKnown) b = batch;
            if (x is null || x.Shape[0] != b) x = Tensor.Zeros(DataType.Float32, [b, .. data.SampleShape]);
            if (start + b > data.Count) { x.Span<float>().Clear(); data.Fill(start, data.Count - start, x.Span<float>()); }
            else data.Fill(start, b, x.Span<float>());
            try { session.Run([x], results); }
            catch (EngineException e) { throw new QuantizationException($"calibration run on samples {start}..{start + b - 1} failed: {e.Message}", e); }
            for (int i = 0; i < outputs.Count; i++)
            {
                var t = results[i];
                string name = outputs[i].Name;
                if (!types.ContainsKey(name)) { types[name] = t.Type; shapes[name] = (int[])t.Shape.Clone(); }
                if (t.Type == DataType.Float32) calibrator.Observe(name, t.ReadOnlySpan<float>());
            }
        }
        return new CalibrationResult(calibrator, types, shapes, data.Count);
    }

    private static void CheckShape(ValueInfo input, CalibrationSet data)
    {
        var s = input.Shape;
        var sample = data.SampleShape;
        string want = input.ShapeText;
        if (s is null) throw new QuantizationException($"input '{input.Name}' has no declared shape; calibration needs it to check the calibration set");
        if (s.Length != sample.Length + 1)
            throw new QuantizationException($"the calibration set ({data.Description}) has samples of shape [{string.Join(",", sample)}] but input '{input.Name}' has shape {want}: expected samples of rank {s.Length - 1}; choose a calibration set that matches the model");
        for (int d = 0; d < sample.Length; d++)
            if (s[d + 1].IsKnown && s[d + 1].Value != sample[d])
                throw new QuantizationException($"the calibration set ({data.Description}) has samples of shape [{string.Join(",", sample)}] but input '{input.Name}' has shape {want} (dimension {d + 1} differs); choose a calibration set that matches the model");
    }
}
