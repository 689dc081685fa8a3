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

    /// <summary>An evaluated variant: accuracy, latency here, and estimates per device class (µs).</summary>
    private static VariantDto E(string id, double accuracy, double latencyHere, double m4Us, double phoneUs, string status = "accepted", long peak = 10) =>
        V(id, peak, accuracy: accuracy, latency: latencyHere) with
        {
            Status = status,
            StatusReason = status == "accepted" ? null : "accuracy dropped 3 points",
            Evaluation = new VariantEvaluationDto { DeviceLatencyUs = new Dictionary<string, double> { ["cortex-m4"] = m4Us, ["phone"] = phoneUs } },
        };

    private static DeviceCapabilities Class(string name) => Big with { DeviceClass = name };

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

    [Fact]
    public void ALatencyBudgetExcludesVariantsEstimatedTooSlowForTheClass()
    {
        var fp32 = E("var_fp32", accuracy: 0.873, latencyHere: 11, m4Us: 12_700, phoneUs: 170);
        var int8 = E("var_int8", accuracy: 0.870, latencyHere: 7, m4Us: 8_100, phoneUs: 110);
        var budgets = new Dictionary<string, double> { ["cortex-m4"] = 10_000 };

        var m4 = VariantChooser.Choose(Class("cortex-m4"), null, [fp32, int8], budgets);
        Assert.Equal("var_int8", m4.Variant?.Id);
        Assert.StartsWith("chose var_int8 (var_int8): fits (accuracy 0.87, latency 7 us, estimated 8.1 ms on cortex-m4 within the 10 ms budget", m4.Reason);
        Assert.Contains("var_fp32 (var_fp32) does not fit: its estimated latency on cortex-m4 12.7 ms exceeds the budget 10 ms", m4.Reason);

        // No budget for phones: the more accurate fp32 variant.
        var phone = VariantChooser.Choose(Class("phone"), null, [fp32, int8], budgets);
        Assert.Equal("var_fp32", phone.Variant?.Id);
        Assert.Contains("var_int8 (var_int8) fits but ranks lower (accuracy 0.87 < 0.873)", phone.Reason);

        // "*" covers the classes not named; a class's own budget wins over it.
        var star = new Dictionary<string, double> { ["*"] = 150, ["cortex-m4"] = 20_000 };
        Assert.Equal("var_int8", VariantChooser.Choose(Class("phone"), null, [fp32, int8], star).Variant?.Id);
        Assert.Equal("var_fp32", VariantChooser.Choose(Class("cortex-m4"), null, [fp32, int8], star).Variant?.Id);

        // Nothing within the budget: nothing chosen, and the reason says so for each.
        var none = VariantChooser.Choose(Class("cortex-m4"), null, [fp32, int8], new Dictionary<string, double> { ["cortex-m4"] = 1_000 });
        Assert.Null(none.Variant);
        Assert.Contains("latency budget 1 ms", none.Reason);
        Assert.Contains("var_int8 (var_int8) does not fit: its estimated latency on cortex-m4 8.1 ms exceeds the budget 1 ms", none.Reason);
    }

    [Fact]
    public void AVariantWithoutAnEstimateCannotMeetABudget()
    {
        var handMade = V("var_hand", 10, accuracy: 0.95, latency: 1); // registered by hand, never evaluated per class
        var int8 = E("var_int8", accuracy: 0.870, latencyHere: 7, m4Us: 8_100, phoneUs: 110);
        var c = VariantChooser.Choose(Class("cortex-m4"), null, [handMade, int8], new Dictionary<string, double> { ["cortex-m4"] = 10_000 });
        Assert.Equal("var_int8", c.Variant?.Id);
        Assert.Contains("var_hand (var_hand) does not fit: it has no latency estimate for device class 'cortex-m4'", c.Reason);
        // Without a budget the estimate is not needed.
        Assert.Equal("var_hand", VariantChooser.Choose(Class("cortex-m4"), null, [handMade, int8]).Variant?.Id);
    }

    [Fact]
    public void RejectedVariantsAreNeverChosenAndBetterOnesAreExplainedFirst()
    {
        var rejected = E("var_best", accuracy: 0.99, latencyHere: 1, m4Us: 100, phoneUs: 10, status: "rejected");
        var pending = E("var_pending", accuracy: 0.98, latencyHere: 1, m4Us: 100, phoneUs: 10, status: "pending");
        var ok = E("var_ok", accuracy: 0.80, latencyHere: 5, m4Us: 500, phoneUs: 50);
        var worse = E("var_worse", accuracy: 0.70, latencyHere: 5, m4Us: 500, phoneUs: 50);
        var c = VariantChooser.Choose(Class("phone"), null, [worse, ok, pending, rejected]);
        Assert.Equal("var_ok", c.Variant?.Id);
        int best = c.Reason.IndexOf("var_best (var_best) is rejected (accuracy dropped 3 points)", StringComparison.Ordinal);
        int pend = c.Reason.IndexOf("var_pending (var_pending) is pending", StringComparison.Ordinal);
        int low = c.Reason.IndexOf("var_worse (var_worse) fits but ranks lower (accuracy 0.7 < 0.8)", StringComparison.Ordinal);
        Assert.True(best > 0 && pend > best && low > pend, c.Reason);
        Assert.Null(VariantChooser.Choose(Class("phone"), null, [rejected]).Variant);
    }

    [Fact]
    public void ARecipeVariantIsOnlyForTheClassesItTargets()
    {
        var int8 = E("var_int8", accuracy: 0.90, latencyHere: 7, m4Us: 8_100, phoneUs: 110) with
        {
            Lineage = new VariantLineageDto { Targets = ["cortex-m4", "cortex-m0"] },
        };
        var fp32 = E("var_base", accuracy: 0.88, latencyHere: 11, m4Us: 12_700, phoneUs: 170); // no lineage: for any class
        var phone = VariantChooser.Choose(Class("phone"), null, [int8, fp32]);
        Assert.Equal("var_base", phone.Variant?.Id);
        Assert.Contains("var_int8 (var_int8) is not meant for this class: its recipe targets cortex-m4, cortex-m0, not phone", phone.Reason);
        Assert.Equal("var_int8", VariantChooser.Choose(Class("cortex-m4"), null, [int8, fp32]).Variant?.Id);
    }
}
