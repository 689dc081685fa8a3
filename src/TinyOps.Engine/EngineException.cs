namespace TinyOps.Engine;

/// <summary>Base of every error the engine raises on bad input. Messages say what failed, where and what to do.</summary>
public class EngineException : Exception
{
    public EngineException(string message) : base(message) { }
    public EngineException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>The model bytes are not a well-formed ONNX (or TFLite) file: truncated, garbage, inconsistent tensor data.</summary>
public sealed class ModelFormatException : EngineException
{
    public ModelFormatException(string message) : base(message) { }
    public ModelFormatException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>The model parses but its graph is invalid: cycles, missing values, bad attributes, shape errors.</summary>
public sealed class ModelValidationException : EngineException
{
    public ModelValidationException(string message) : base(message) { }
    public ModelValidationException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>The model uses an operator, domain or opset this build does not implement.</summary>
public sealed class UnsupportedOperatorException : EngineException
{
    public UnsupportedOperatorException(string message) : base(message) { }
}

/// <summary>A tensor has an element type outside float32, int8, uint8, int32, int64 and bool.</summary>
public sealed class UnsupportedTypeException : EngineException
{
    public UnsupportedTypeException(string message) : base(message) { }
}

/// <summary>The caller passed inputs of the wrong name, shape or type.</summary>
public sealed class InferenceInputException : EngineException
{
    public InferenceInputException(string message) : base(message) { }
}

/// <summary>A resource limit (arena size, tensor size, graph size) would be exceeded.</summary>
public sealed class ResourceLimitException : EngineException
{
    public ResourceLimitException(string message) : base(message) { }
}

/// <summary>A kernel failed while running, typically on inputs inconsistent with its attributes.</summary>
public sealed class KernelException : EngineException
{
    public KernelException(string message, Exception inner) : base(message, inner) { }
}
