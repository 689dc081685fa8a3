using TinyOps.Engine.Ir;
using TinyOps.Engine.Tensors;

namespace TinyOps.Engine.Kernels;

/// <summary>What a kernel sees while inferring its outputs: input types, concrete shapes, and values when known.</summary>
public sealed class InferContext
{
    private DataType[] _inTypes = [];
    private int[][] _inShapes = [];
    private Tensor?[] _inValues = [];
    private readonly List<(DataType Type, int[] Shape)?> _outputs = [];
    private readonly List<Tensor?> _outputValues = [];

    internal InferContext() { }

    public Node Node { get; private set; } = null!;

    internal void Reset(Node node, DataType[] types, int[][] shapes, Tensor?[] values)
    {
        Node = node;
        _inTypes = types;
        _inShapes = shapes;
        _inValues = values;
        _outputs.Clear();
        _outputValues.Clear();
        for (int i = 0; i < node.Outputs.Count; i++) { _outputs.Add(null); _outputValues.Add(null); }
    }

    public int InputCount => Node.Inputs.Count;
    public int OutputCount => Node.Outputs.Count;
    public bool HasInput(int i) => Node.HasInput(i);
    public bool HasOutput(int i) => i < Node.Outputs.Count && Node.Outputs[i].Length > 0;

    public DataType InputType(int i)
    {
        CheckInput(i);
        return _inTypes[i];
    }

    public int[] InputShape(int i)
    {
        CheckInput(i);
        return _inShapes[i];
    }

    public int InputRank(int i) => InputShape(i).Length;

    /// <summary>The input's value if it is known now (an initializer, a folded constant, or any input at run time).</summary>
    public Tensor? InputValue(int i) => HasInput(i) ? _inValues[i] : null;

    /// <summary>The input's value; if it is only known at run time the node is planned dynamically.</summary>
    public Tensor RequireValue(int i)
    {
        CheckInput(i);
        return _inValues[i] ?? throw new ValueNotKnownException(Node.Inputs[i]);
    }

    public void SetOutput(int i, DataType type, int[] shape)
    {
        if (i >= _outputs.Count) return; // the model did not ask for this optional output
        _outputs[i] = (type, shape);
    }

    /// <summary>
    /// For outputs whose value follows from input shapes alone (Shape, Size): gives the value at planning time, so
    /// the node is folded into a constant for this plan. Set the output's type and shape too.
    /// </summary>
    public void SetOutputValue(int i, Tensor value)
    {
        if (i >= _outputValues.Count) return;
        _outputValues[i] = value;
    }

    internal Tensor? GetOutputValue(int i) => _outputValues[i];

    /// <summary>Sets every output to the same type and shape as input <paramref name="input"/>.</summary>
    public void SetOutputLike(int output, int input) => SetOutput(output, InputType(input), InputShape(input));

    internal (DataType Type, int[] Shape)? GetOutput(int i) => _outputs[i];

    /// <summary>Throws unless input <paramref name="i"/> has one of <paramref name="allowed"/> element types.</summary>
    public DataType ExpectType(int i, params DataType[] allowed)
    {
        var t = InputType(i);
        if (Array.IndexOf(allowed, t) < 0)
        {
            string list = string.Join(", ", allowed.Select(a => a.OnnxName()));
            if (!t.IsSupported())
                throw new UnsupportedTypeException($"{Node.DisplayName}: input {i} ('{Node.Inputs[i]}') has type {t.OnnxName()}, which this engine does not support");
            throw new ModelValidationException($"{Node.DisplayName}: input {i} ('{Node.Inputs[i]}') has type {t.OnnxName()}; this operator takes {list}");
        }
        return t;
    }

    public ModelValidationException Error(string message) => new($"{Node.DisplayName}: {message}");

    private void CheckInput(int i)
    {
        if (!HasInput(i))
            throw new ModelValidationException($"{Node.DisplayName}: required input {i} is missing");
    }
}

/// <summary>Raised inside inference when an output shape depends on a value only known at run time.</summary>
internal sealed class ValueNotKnownException(string valueName) : Exception($"value '{valueName}' is only known at run time");
