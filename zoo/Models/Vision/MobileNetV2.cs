using TorchSharp;
using ModelZoo.Models;
using static TorchSharp.torch;
using TV = ModelZoo.Models.TorchvisionWeights;

namespace ModelZoo.Models.Vision;

// MobileNetV2 with torchvision's parameter names (torchvision/models/mobilenetv2.py). File order, as in every family:
// config, blocks, model, variants + weight tags, checkpoint remap.

/// <summary>Configuration of a MobileNetV2.</summary>
/// <param name="WidthMult">Channel multiplier (1.0 in torchvision's weights).</param>
/// <param name="Dropout">Dropout before the classifier.</param>
public sealed record MobileNetV2Config(double WidthMult = 1.0, double Dropout = 0.2)
{
    /// <summary>Inverted-residual settings: expansion t, channels c, repeats n, stride s.</summary>
    public static readonly (int T, int C, int N, int S)[] Settings =
        [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)];
}

/// <summary>MobileNetV2's inverted residual: optional 1×1 expansion, 3×3 depthwise, linear 1×1 projection (child <c>conv</c>).</summary>
public sealed class MobileNetV2Block : ZooModule
{
    private readonly bool _residual;

    /// <summary>Creates a block.</summary>
    public MobileNetV2Block(int inp, int oup, int stride, int expandRatio) : base("InvertedResidual")
    {
        int hidden = (int)Math.Round((double)inp * expandRatio);
        _residual = stride == 1 && inp == oup;
        var conv = new ZooSequential();
        int i = 0;
        if (expandRatio != 1) conv.Append($"{i++}", VisionBlocks.ConvNormAct(inp, hidden, 1, activation: () => nn.ReLU6(inplace: true)));
        conv.Append($"{i++}", VisionBlocks.ConvNormAct(hidden, hidden, 3, stride, groups: hidden, activation: () => nn.ReLU6(inplace: true)));
        conv.Append($"{i++}", nn.Conv2d(hidden, oup, 1, bias: false));
        conv.Append($"{i}", nn.BatchNorm2d(oup));
        Add("conv", conv);
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x) => _residual ? x + Run("conv", x) : Run("conv", x);
}

/// <summary>MobileNetV2 with torchvision's names: features (0 = stem, 1–17 = blocks, 18 = last 1×1), classifier (0 = dropout, 1 = linear).</summary>
public sealed class MobileNetV2 : MobileNetLayoutModel
{
    private readonly int _numFeatures;
    private readonly int _numBlocks;

    /// <summary>Builds the network with torchvision's initialisation.</summary>
    public MobileNetV2(MobileNetV2Config config, ModelOptions options) : base(nameof(MobileNetV2), options)
    {
        Config = config;
        int input = VisionBlocks.MakeDivisible(32 * config.WidthMult, 8);
        _numFeatures = VisionBlocks.MakeDivisible(1280 * Math.Max(1.0, config.WidthMult), 8);
        var features = new ZooSequential();
        features.Append("0", VisionBlocks.ConvNormAct(options.InChans, input, 3, 2, activation: () => nn.ReLU6(inplace: true)));
        int idx = 1;
        foreach (var (t, c, n, s) in MobileNetV2Config.Settings)
        {
            int output = VisionBlocks.MakeDivisible(c * config.WidthMult, 8);
            for (int i = 0; i < n; i++)
            {
                features.Append($"{idx++}", new MobileNetV2Block(input, output, i == 0 ? s : 1, t));
                input = output;
            }
        }
        _numBlocks = idx - 1;
        features.Append($"{idx}", VisionBlocks.ConvNormAct(input, _numFeatures, 1, activation: () => nn.ReLU6(inplace: true)));
        AddFeaturesAndClassifier(features, options.DropRate ?? config.Dropout, options.NumClasses);
        Layers.InitConvNet(this);
        VisionBlocks.InitLinearNormal(this, 0.01);
    }

    /// <summary>The configuration this network was built from.</summary>
    public MobileNetV2Config Config { get; }

    /// <inheritdoc />
    public override int NumFeatures => _numFeatures;

    /// <inheritdoc />
    protected override nn.Module<Tensor, Tensor> CreateHead(int numClasses) =>
        ClassifierHead.Linear(_numFeatures, numClasses);

    /// <inheritdoc />
    public override IReadOnlyList<ParameterGroup> ParameterGroups() =>
        VisionBlocks.FeatureStageGroups(this, _numBlocks + 1);
}

/// <summary>Registers MobileNetV2: variant, weight tags with torchvision's URLs, preprocessing and metrics.</summary>
public static class MobileNetV2Family
{
    /// <summary>Adds the MobileNetV2 variants to <paramref name="catalog"/>.</summary>
    public static void Register(ModelCatalog catalog)
    {
        var config = new MobileNetV2Config();
        TV.Register(catalog, "mobilenet_v2", "mobilenet_v2", config, o => new MobileNetV2(config, o), 3_504_872,
            [TV.Tag("imagenet1k_v1", "mobilenet_v2-b0353104.pth", 71.878, 90.286, 256, 224),
             TV.Tag("imagenet1k_v2", "mobilenet_v2-7ebf99e0.pth", 72.154, 90.822, 232, 224)],
            defaultTag: "imagenet1k_v2", description: "MobileNetV2 (width 1.0) as in torchvision.");
    }

    // Checkpoint remap: none needed; torchvision's checkpoints use these names.
}
