namespace ModelZoo.Tests.Parity;

/// <summary>Swin v1 and v2 against torchvision 0.14 at 72×104 (padded windows, masked shifts); T runs in CI, S/B are Heavy.</summary>
public class SwinTransformerParityTests
{
    [Theory]
    [InlineData("swin_t")]
    [InlineData("swin_v2_t")]
    public void TinyMatchesTorchvision(string model) => VisionParity.Check(model);

    [Theory]
    [Trait("Category", "Heavy")]
    [InlineData("swin_s")]
    [InlineData("swin_b")]
    [InlineData("swin_v2_s")]
    [InlineData("swin_v2_b")]
    public void LargerVariantsMatchTorchvision(string model) => VisionParity.Check(model);
}
