namespace TinyOps.Protocol.Management;

/// <summary>Latency and outcome counts of one device class for one model variant.</summary>
public sealed record ClassLatencyDto(string DeviceClass, string Model, string VariantId, long Inferences, long Errors, double P50Us, double P90Us, double P99Us, double DeviceP50Us);

public sealed record TelemetrySummaryDto(string Project, long Inferences, long Batches, long DroppedRecords, IReadOnlyList<ClassLatencyDto> ByClass);
