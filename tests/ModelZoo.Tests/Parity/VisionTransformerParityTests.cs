namespace ModelZoo.Tests.Parity;

/// <summary>
/// ViT against torchvision 0.14, at 224 and at a second size (torchvision: a model built for it with
/// interpolate_embeddings; here: on-the-fly bicubic interpolation of the position embedding). B/16 runs in CI.
/// </summary>
public class VisionTransformerParityTests
{
    [Fact]
    public void VitB16MatchesTorchvision() => VisionParity.Check("vit_b_16");

    [Theory]
    [Trait("Category", "Heavy")]
    [InlineData("vit_b_32")]
    [InlineData("vit_l_16")]
    [InlineData("vit_l_32")]
    [InlineData("vit_h_14")]
    public void LargerVariantsMatchTorchvision(string model) => VisionParity.Check(model);
}
