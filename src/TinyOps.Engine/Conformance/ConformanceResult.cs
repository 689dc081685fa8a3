namespace TinyOps.Engine.Conformance;

public enum ConformanceStatus { Passed, Failed, Skipped }

/// <summary>The outcome of one test folder in ONNX's backend layout.</summary>
public sealed record ConformanceResult(string Name, ConformanceStatus Status, string Detail);
