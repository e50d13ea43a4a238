namespace ModelZoo.Tests.Parity;

/// <summary>RegNetX / RegNetY against torchvision 0.14; the 400MF models run in CI, the rest are Heavy.</summary>
public class RegNetParityTests
{
    [Theory]
    [InlineData("regnet_y_400mf")]
    [InlineData("regnet_x_400mf")]
    public void MatchesTorchvision(string model) => VisionParity.Check(model);

    [Theory]
    [Trait("Category", "Heavy")]
    [InlineData("regnet_y_800mf")]
    [InlineData("regnet_y_1_6gf")]
    [InlineData("regnet_y_3_2gf")]
    [InlineData("regnet_y_8gf")]
    [InlineData("regnet_y_16gf")]
    [InlineData("regnet_y_32gf")]
    [InlineData("regnet_y_128gf")]
    [InlineData("regnet_x_800mf")]
    [InlineData("regnet_x_1_6gf")]
    [InlineData("regnet_x_3_2gf")]
    [InlineData("regnet_x_8gf")]
    [InlineData("regnet_x_16gf")]
    [InlineData("regnet_x_32gf")]
    public void LargerVariantsMatchTorchvision(string model) => VisionParity.Check(model);
}
