namespace ModelZoo.Tests.Parity;

/// <summary>VGG, SqueezeNet, ShuffleNetV2, MNASNet, GoogLeNet and Inception v3 against torchvision 0.14; one or two per family run in CI, the rest are Heavy.</summary>
public class LongTailParityTests
{
    [Theory]
    [InlineData("squeezenet1_0")]
    [InlineData("squeezenet1_1")]
    [InlineData("shufflenet_v2_x1_0")]
    [InlineData("mnasnet1_0")]
    [InlineData("mnasnet0_5")]
    [InlineData("vgg11")]
    [InlineData("googlenet")]
    [InlineData("inception_v3")]
    public void MatchesTorchvision(string model) => VisionParity.Check(model);

    [Theory]
    [Trait("Category", "Heavy")]
    [InlineData("vgg11_bn")]
    [InlineData("vgg13")]
    [InlineData("vgg13_bn")]
    [InlineData("vgg16")]
    [InlineData("vgg16_bn")]
    [InlineData("vgg19")]
    [InlineData("vgg19_bn")]
    [InlineData("shufflenet_v2_x0_5")]
    [InlineData("shufflenet_v2_x1_5")]
    [InlineData("shufflenet_v2_x2_0")]
    [InlineData("mnasnet0_75")]
    [InlineData("mnasnet1_3")]
    public void OtherVariantsMatchTorchvision(string model) => VisionParity.Check(model);
}
