namespace ModelZoo.Tests.Parity;

/// <summary>MobileNetV2 / V3 against torchvision 0.14 (fixtures: scripts/fixtures/make_vision_parity.py).</summary>
public class MobileNetParityTests
{
    [Theory]
    [InlineData("mobilenet_v2")]
    [InlineData("mobilenet_v3_large")]
    [InlineData("mobilenet_v3_small")]
    public void MatchesTorchvision(string model) => VisionParity.Check(model);
}
