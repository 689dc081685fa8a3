using TinyOps.Protocol.Devices;
using TinyOps.Protocol.Management;
using TinyOps.Server.Deployments;
using Xunit;

namespace TinyOps.Server.Tests.Deployments;

public sealed class VariantChooserTests
{
    private static VariantDto V(string id, long peak, long size = 1000, double? accuracy = null, double? latency = null, string[]? ops = null)
    {
        var metrics = new Dictionary<string, double>();
        if (accuracy is { } a) metrics["accuracy"] = a;
        if (latency is { } l) metrics["latency_us"] = l;
        return new VariantDto { Id = id, Name = id, Metadata = new ModelMetadataDto { PlannedPeakBytes = peak, Operators = ops ?? ["Conv"] }, ArtifactSize = size, Metrics = metrics };
    }

    private static readonly DeviceCapabilities Big = new() { DeviceClass = "big", RamBytes = 1 << 30, FlashBytes = 1 << 30, Operators = ["Conv", "Gemm"] };

    [Fact]
    public void AccuracyThenLatencyThenPeak()
    {
        Assert.Equal("b", VariantChooser.Choose(Big, null, [V("a", 10, accuracy: 0.8), V("b", 20, accuracy: 0.9)]).Variant?.Id);
        var byLatency = VariantChooser.Choose(Big, null, [V("a", 10, accuracy: 0.9, latency: 300), V("b", 20, accuracy: 0.9, latency: 200)]);
        Assert.Equal("b", byLatency.Variant?.Id);
        Assert.Contains("a (a) fits but ranks lower (latency 300 us > 200 us)", byLatency.Reason);
        var byPeak = VariantChooser.Choose(Big, null, [V("a", 30), V("b", 20)]);
        Assert.Equal("b", byPeak.Variant?.Id);
        Assert.Contains("planned peak 30 B > 20 B", byPeak.Reason);
        // A measured accuracy beats none.
        Assert.Equal("a", VariantChooser.Choose(Big, null, [V("a", 30, accuracy: 0.1), V("b", 20)]).Variant?.Id);
    }

    [Fact]
    public void ReportedStorageAndOperatorsCount()
    {
        var reported = new ReportedState { Conditions = new DeviceConditions { FreeStorageBytes = 500 } };
        var c = VariantChooser.Choose(Big, reported, [V("a", 10, size: 600), V("b", 10, size: 400, ops: ["Conv", "LSTM"])]);
        Assert.Null(c.Variant);
        Assert.Contains("a (a) does not fit: artifact 600 B exceeds the device's free storage 500 B", c.Reason);
        Assert.Contains("b (b) does not fit: operators not supported by the device runtime: LSTM", c.Reason);
        Assert.Equal("the version has no variants", VariantChooser.Choose(Big, null, []).Reason);
    }
}
