namespace ModelZoo.Tests.Parity;

/// <summary>EfficientNet B0–B7 and V2 S/M/L against torchvision 0.14; B0 and V2-S run in CI, the rest are Heavy.</summary>
public class EfficientNetParityTests
{
    [Theory]
    [InlineData("efficientnet_b0")]
    [InlineData("efficientnet_v2_s")]
    public void MatchesTorchvision(string model) => VisionParity.Check(model);

    [Theory]
    [Trait("Category", "Heavy")]
    [InlineData("efficientnet_b1")]
    [InlineData("efficientnet_b2")]
    [InlineData("efficientnet_b3")]
    [InlineData("efficientnet_b4")]
    [InlineData("efficientnet_b5")]
    [InlineData("efficientnet_b6")]
    [InlineData("efficientnet_b7")]
    [InlineData("efficientnet_v2_m")]
    [InlineData("efficientnet_v2_l")]
    public void LargerVariantsMatchTorchvision(string model) => VisionParity.Check(model);
}
