using TinyOps.Server.Optimization;
using Xunit;

namespace TinyOps.Server.Tests.Optimization;

public sealed class QualityGateTests
{
    [Fact]
    public void AVariantThatLostMoreThanItsBudgetIsRejectedWithTheReason()
    {
        var (status, reason) = QualityGate.Decide("pruned-90", 1.0, 1.52, 0.8733, 0.8581, "fmnist-500");
        Assert.Equal("rejected", status);
        Assert.Equal("accuracy dropped 1.52 points (87.33 % -> 85.81 % on fmnist-500), more than the 1 variant 'pruned-90' may lose (its max_accuracy_drop); " +
            "kept for inspection, never deployed", reason);
    }

    [Theory]
    [InlineData(1.0, 1.0, "accepted")]    // exactly the budget is allowed
    [InlineData(1.0, 1.0001, "rejected")]
    [InlineData(0.5, 0.3, "accepted")]
    [InlineData(0.0, -0.2, "accepted")]  // more accurate than the base
    [InlineData(2.0, double.NaN, "rejected")]
    public void TheBudgetIsInclusive(double max, double drop, string expected) =>
        Assert.Equal(expected, QualityGate.Decide("v", max, drop, 0.9, 0.9 - drop / 100, "set").Status);

    [Fact]
    public void AcceptedVariantsSayWhyAndUngatedOnesSaySo()
    {
        Assert.Equal("accuracy within budget: rose 0.05 points (87.33 % -> 87.38 % on fashion-mnist; at most 1 may be lost)",
            QualityGate.Decide("v", 1, -0.05, 0.8733, 0.8738, "fashion-mnist").Reason);
        var (status, reason) = QualityGate.Decide("v", 1, null, null, null, null);
        Assert.Equal("accepted", status);
        Assert.Contains("not gated", reason);
    }
}
