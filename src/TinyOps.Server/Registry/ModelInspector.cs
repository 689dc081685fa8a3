using TinyOps.Engine;
using TinyOps.Engine.Ir;
using TinyOps.Engine.Profiling;
using TinyOps.Engine.Runtime;
using TinyOps.Protocol.Management;
using TinyOps.Server.Hosting;

namespace TinyOps.Server.Registry;

/// <summary>Loads an uploaded artifact with the engine and reads what the registry records about it.</summary>
public static class ModelInspector
{
    /// <summary>The artifact's metadata; a model the engine cannot load or profile is refused with 422 and the engine's message.</summary>
    public static ModelMetadataDto Inspect(byte[] bytes, string what)
    {
        if (bytes.Length == 0) throw ApiException.BadRequest($"the body of {what} is empty; send the ONNX file's bytes (Content-Type: application/octet-stream)");
        InferenceSession session;
        ModelProfile profile;
        try
        {
            session = InferenceSession.Load(bytes);
            profile = ModelProfiler.Profile(session, 1);
        }
        catch (EngineException e)
        {
            throw ApiException.Unprocessable($"{what} is not a model the engine can run: {Trim(e.Message)}");
        }
        catch (Exception e) when (e is not OperationCanceledException and not OutOfMemoryException)
        {
            // Parsers of malformed input may fail below the engine's own checks (protobuf, arithmetic).
            throw ApiException.Unprocessable($"{what} is not a model the engine can run: {e.GetType().Name}: {e.Message}");
        }
        var operators = new SortedSet<string>(StringComparer.Ordinal);
        Collect(session.Model.Graph, operators);
        return new ModelMetadataDto
        {
            Inputs = session.Inputs.Select(i => i.ToString()).ToList(),
            Outputs = session.Outputs.Select(o => o.ToString()).ToList(),
            Operators = operators.ToList(),
            Parameters = profile.TotalParameters,
            Macs = profile.TotalMacs,
            PlannedPeakBytes = Math.Max(profile.PlannedArenaBytes, session.PlannedArenaBytes),
            WeightBytes = profile.WeightBytes,
            Opset = session.Model.DefaultOpset,
        };
    }

    // The engine prefixes messages with the source name, "model" for bytes.
    private static string Trim(string message) => message.StartsWith("model: ", StringComparison.Ordinal) ? message["model: ".Length..] : message;

    /// <summary>Operator types, subgraphs included; other domains as "domain:OpType".</summary>
    private static void Collect(Graph g, SortedSet<string> ops)
    {
        foreach (var n in g.Nodes)
        {
            ops.Add(n.IsDefaultDomain ? n.OpType : n.Domain + ":" + n.OpType);
            foreach (var a in n.Attributes.Values)
            {
                if (a.Graph is not null) Collect(a.Graph, ops);
                foreach (var sg in a.Graphs) Collect(sg, ops);
            }
        }
    }
}
