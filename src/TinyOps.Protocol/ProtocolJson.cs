using System.Text.Json;
using System.Text.Json.Serialization;
using TinyOps.Protocol.Devices;
using TinyOps.Protocol.Management;
using TinyOps.Protocol.Manifests;
using TinyOps.Protocol.Telemetry;

namespace TinyOps.Protocol;

/// <summary>Source-generated JSON for everything that crosses the wire (camelCase, enums as strings).</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, UseStringEnumConverter = true, DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(EnrollRequest))]
[JsonSerializable(typeof(EnrollResponse))]
[JsonSerializable(typeof(SyncRequest))]
[JsonSerializable(typeof(SyncResponse))]
[JsonSerializable(typeof(ReportedState))]
[JsonSerializable(typeof(DeviceCapabilities))]
[JsonSerializable(typeof(Manifest))]
[JsonSerializable(typeof(SignedManifest))]
[JsonSerializable(typeof(SigningKeyInfo))]
[JsonSerializable(typeof(List<SigningKeyInfo>))]
[JsonSerializable(typeof(TelemetryBatch))]
[JsonSerializable(typeof(TelemetryAck))]
[JsonSerializable(typeof(InferenceRecord))]
[JsonSerializable(typeof(ProblemDetailsDto))]
[JsonSerializable(typeof(ProjectDto))]
[JsonSerializable(typeof(List<ProjectDto>))]
[JsonSerializable(typeof(CreateProjectRequest))]
[JsonSerializable(typeof(TokenDto))]
[JsonSerializable(typeof(List<TokenDto>))]
[JsonSerializable(typeof(CreateTokenRequest))]
[JsonSerializable(typeof(CreatedTokenDto))]
[JsonSerializable(typeof(WhoamiDto))]
[JsonSerializable(typeof(CreateEnrollmentTokenRequest))]
[JsonSerializable(typeof(EnrollmentTokenDto))]
[JsonSerializable(typeof(AuditEntryDto))]
[JsonSerializable(typeof(List<AuditEntryDto>))]
[JsonSerializable(typeof(CreateModelRequest))]
[JsonSerializable(typeof(ModelDto))]
[JsonSerializable(typeof(List<ModelDto>))]
[JsonSerializable(typeof(VersionDto))]
[JsonSerializable(typeof(List<VersionDto>))]
[JsonSerializable(typeof(VariantDto))]
[JsonSerializable(typeof(ModelMetadataDto))]
[JsonSerializable(typeof(List<VariantDto>))]
[JsonSerializable(typeof(SetAliasRequest))]
[JsonSerializable(typeof(DeviceDto))]
[JsonSerializable(typeof(List<DeviceDto>))]
[JsonSerializable(typeof(SetTagsRequest))]
[JsonSerializable(typeof(CompatibilityDto))]
[JsonSerializable(typeof(CreateDeploymentRequest))]
[JsonSerializable(typeof(DeploymentDto))]
[JsonSerializable(typeof(List<DeploymentDto>))]
[JsonSerializable(typeof(TelemetrySummaryDto))]
[JsonSerializable(typeof(Dictionary<string, string>))]
[JsonSerializable(typeof(Dictionary<string, double>))]
// Additions by feature: keep each feature's lines inside its own block (merges stay clean).
// registry additions
[JsonSerializable(typeof(List<string>))]
// end registry additions
//
// fleet additions
[JsonSerializable(typeof(List<CompatibilityDto>))]
// end fleet additions
//
// deployments additions
[JsonSerializable(typeof(List<TargetDto>))]
// end deployments additions
//
// telemetry additions
[JsonSerializable(typeof(List<ClassLatencyDto>))]
// end telemetry additions
//
// optimization additions
[JsonSerializable(typeof(RecipeDto))]
[JsonSerializable(typeof(CreateEvaluationSetRequest))]
[JsonSerializable(typeof(EvaluationSetDto))]
[JsonSerializable(typeof(List<EvaluationSetDto>))]
[JsonSerializable(typeof(JobDto))]
[JsonSerializable(typeof(List<JobDto>))]
[JsonSerializable(typeof(VariantLineageDto))]
[JsonSerializable(typeof(VariantEvaluationDto))]
[JsonSerializable(typeof(Dictionary<string, int>))]
[JsonSerializable(typeof(List<int>))]
// end optimization additions
//
// agent additions
[JsonSerializable(typeof(List<InferenceRecord>))]
// end agent additions
public sealed partial class ProtocolJson : JsonSerializerContext;
