namespace ModelZoo.Tests.Parity;

/// <summary>ConvNeXt against torchvision 0.14; tiny runs in CI, the rest are Heavy.</summary>
public class ConvNeXtParityTests
{
    [Fact]
    public void TinyMatchesTorchvision() => VisionParity.Check("convnext_tiny");

    [Theory]
    [Trait("Category", "Heavy")]
    [InlineData("convnext_small")]
    [InlineData("convnext_base")]
    [InlineData("convnext_large")]
    public void LargerVariantsMatchTorchvision(string model) => VisionParity.Check(model);
}
