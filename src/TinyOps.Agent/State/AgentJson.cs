using System.Text.Json;
using System.Text.Json.Serialization;
using TinyOps.Agent.Inference;
using TinyOps.Protocol.Manifests;

namespace TinyOps.Agent.State;

/// <summary>Source-generated JSON for the agent's own files and its loopback inference API.</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, UseStringEnumConverter = true, NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals)]
[JsonSerializable(typeof(AgentIdentity))]
[JsonSerializable(typeof(AgentStateDocument))]
[JsonSerializable(typeof(TelemetryCounters))]
[JsonSerializable(typeof(List<SigningKeyInfo>))]
[JsonSerializable(typeof(SignedManifest))]
[JsonSerializable(typeof(InferRequest))]
[JsonSerializable(typeof(InferResponse))]
[JsonSerializable(typeof(AgentStatus))]
public sealed partial class AgentJson : JsonSerializerContext;
