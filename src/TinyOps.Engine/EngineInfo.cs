namespace TinyOps.Engine;

/// <summary>Version and limits of this engine build.</summary>
public static class EngineInfo
{
    public const string Version = "0.1.0";

    /// <summary>Oldest default-domain opset the loader accepts.</summary>
    public const int MinOpset = 1;

    /// <summary>Newest default-domain opset the loader accepts (the newest used by the ONNX conformance data here).</summary>
    public const int MaxOpset = 28;
}
