using TorchSharp;
using ModelZoo.Models;
using static TorchSharp.torch;
using TV = ModelZoo.Models.TorchvisionWeights;

namespace ModelZoo.Models.Vision;

// ShuffleNetV2 x0.5/x1.0/x1.5/x2.0 with torchvision's parameter names (torchvision/models/shufflenetv2.py). File
// order, as in every family: config, blocks, model, variants + weight tags, checkpoint remap.

/// <summary>Configuration of a ShuffleNetV2.</summary>
/// <param name="StageRepeats">Blocks in stages 2–4.</param>
/// <param name="StageOutChannels">Channels of conv1, stages 2–4 and conv5.</param>
public sealed record ShuffleNetV2Config(int[] StageRepeats, int[] StageOutChannels)
{
    /// <inheritdoc />
    public override string ToString() => $"repeats [{string.Join(", ", StageRepeats)}], channels [{string.Join(", ", StageOutChannels)}]";
}

/// <summary>ShuffleNetV2 unit: split (stride 1) or two branches (stride 2), concatenation and a channel shuffle.</summary>
public sealed class ShuffleInvertedResidual : ZooModule
{
    private readonly int _stride;

    /// <summary>Creates a unit.</summary>
    public ShuffleInvertedResidual(int inp, int oup, int stride) : base("InvertedResidual")
    {
        _stride = stride;
        int bf = oup / 2;
        if (stride == 1 && inp != bf << 1) throw new ArgumentException($"Invalid ShuffleNetV2 unit: {inp} → {oup} with stride 1 (ShuffleNetV2.cs).");
        if (stride > 1)
            Add("branch1", new ZooSequential(
                nn.Conv2d(inp, inp, 3, stride: stride, padding: 1, groups: inp, bias: false), nn.BatchNorm2d(inp),
                nn.Conv2d(inp, bf, 1, bias: false), nn.BatchNorm2d(bf), nn.ReLU(inplace: true)));
        Add("branch2", new ZooSequential(
            nn.Conv2d(stride > 1 ? inp : bf, bf, 1, bias: false), nn.BatchNorm2d(bf), nn.ReLU(inplace: true),
            nn.Conv2d(bf, bf, 3, stride: stride, padding: 1, groups: bf, bias: false), nn.BatchNorm2d(bf),
            nn.Conv2d(bf, bf, 1, bias: false), nn.BatchNorm2d(bf), nn.ReLU(inplace: true)));
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        Tensor y;
        if (_stride == 1)
        {
            var halves = x.chunk(2, 1);
            y = cat([halves[0], Run("branch2", halves[1])], 1);
        }
        else y = cat([Run("branch1", x), Run("branch2", x)], 1);
        long b = y.shape[0], c = y.shape[1], h = y.shape[2], w = y.shape[3];
        return y.view(b, 2, c / 2, h, w).transpose(1, 2).contiguous().view(b, -1, h, w);
    }
}

/// <summary>ShuffleNetV2 with torchvision's names: conv1, maxpool, stage2–4, conv5, fc.</summary>
public sealed class ShuffleNetV2 : ZooModel
{
    /// <summary>Builds the network (torchvision leaves PyTorch's default initialisation).</summary>
    public ShuffleNetV2(ShuffleNetV2Config config, ModelOptions options) : base(nameof(ShuffleNetV2), options.NumClasses, options.InChans)
    {
        Config = config;
        var ch = config.StageOutChannels;
        Add("conv1", new ZooSequential(nn.Conv2d(options.InChans, ch[0], 3, stride: 2, padding: 1, bias: false), nn.BatchNorm2d(ch[0]), nn.ReLU(inplace: true)));
        Add("maxpool", nn.MaxPool2d(3, stride: 2, padding: 1));
        int input = ch[0];
        for (int s = 0; s < 3; s++)
        {
            var stage = new ZooSequential();
            stage.Append("0", new ShuffleInvertedResidual(input, ch[s + 1], 2));
            for (int i = 1; i < config.StageRepeats[s]; i++) stage.Append($"{i}", new ShuffleInvertedResidual(ch[s + 1], ch[s + 1], 1));
            Add($"stage{s + 2}", stage);
            input = ch[s + 1];
        }
        Add("conv5", new ZooSequential(nn.Conv2d(input, ch[4], 1, bias: false), nn.BatchNorm2d(ch[4]), nn.ReLU(inplace: true)));
        Add("fc", CreateHead(options.NumClasses));
    }

    /// <summary>The configuration this network was built from.</summary>
    public ShuffleNetV2Config Config { get; }

    /// <inheritdoc />
    public override int NumFeatures => Config.StageOutChannels[4];

    /// <inheritdoc />
    public override string HeadPath => "fc";

    /// <inheritdoc />
    public override string? StemConvPath => "conv1.0";

    /// <inheritdoc />
    public override Tensor ForwardFeatures(Tensor x)
    {
        x = Run("maxpool", Run("conv1", x));
        x = Run("stage4", Run("stage3", Run("stage2", x)));
        return Run("conv5", x);
    }

    /// <inheritdoc />
    public override Tensor ForwardHead(Tensor features, bool preLogits = false)
    {
        var pooled = features.mean([2, 3]);
        return preLogits ? pooled : Run("fc", pooled);
    }

    /// <inheritdoc />
    protected override nn.Module<Tensor, Tensor> CreateHead(int numClasses) =>
        ClassifierHead.Linear(NumFeatures, numClasses);

    /// <inheritdoc />
    public override IReadOnlyList<ParameterGroup> ParameterGroups() =>
        Layers.GroupsByPrefix(this, [("stem", ["conv1"]), ("stage2", ["stage2"]), ("stage3", ["stage3"]), ("stage4", ["stage4"]), ("conv5", ["conv5"]), ("head", ["fc"])]);
}

/// <summary>Registers ShuffleNetV2 with torchvision's weight tags.</summary>
public static class ShuffleNetV2Family
{
    /// <summary>Adds the ShuffleNetV2 variants to <paramref name="catalog"/>.</summary>
    public static void Register(ModelCatalog catalog)
    {
        Add(catalog, "shufflenet_v2_x0_5", [24, 48, 96, 192, 1024], 1_366_792, TV.Tag("imagenet1k_v1", "shufflenetv2_x0.5-f707e7126e.pth", 60.552, 81.746, 256, 224));
        Add(catalog, "shufflenet_v2_x1_0", [24, 116, 232, 464, 1024], 2_278_604, TV.Tag("imagenet1k_v1", "shufflenetv2_x1-5666bf0f80.pth", 69.362, 88.316, 256, 224));
        Add(catalog, "shufflenet_v2_x1_5", [24, 176, 352, 704, 1024], 3_503_624, TV.Tag("imagenet1k_v1", "shufflenetv2_x1_5-3c479a10.pth", 72.996, 91.086, 232, 224));
        Add(catalog, "shufflenet_v2_x2_0", [24, 244, 488, 976, 2048], 7_393_996, TV.Tag("imagenet1k_v1", "shufflenetv2_x2_0-8be3c8ee.pth", 76.23, 93.006, 232, 224));
    }

    private static void Add(ModelCatalog catalog, string name, int[] channels, long parameters, params WeightTag[] tags)
    {
        var config = new ShuffleNetV2Config([4, 8, 4], channels);
        TV.Register(catalog, name, "shufflenet_v2", config, o => new ShuffleNetV2(config, o), parameters, tags);
    }

    // Checkpoint remap: none needed; torchvision's checkpoints use these names.
}
