namespace ModelZoo.Tests.Parity;

/// <summary>DenseNet against torchvision 0.14; 121 runs in CI, the rest are Heavy.</summary>
public class DenseNetParityTests
{
    [Fact]
    public void DenseNet121MatchesTorchvision() => VisionParity.Check("densenet121");

    [Theory]
    [Trait("Category", "Heavy")]
    [InlineData("densenet161")]
    [InlineData("densenet169")]
    [InlineData("densenet201")]
    public void LargerVariantsMatchTorchvision(string model) => VisionParity.Check(model);
}
