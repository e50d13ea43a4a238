using TorchSharp;
using ModelZoo.Models;
using static TorchSharp.torch;
using TV = ModelZoo.Models.TorchvisionWeights;

namespace ModelZoo.Models.Vision;

// MobileNetV3 small/large with torchvision's parameter names (torchvision/models/mobilenetv3.py). File order, as in
// every family: config, blocks, model, variants + weight tags, checkpoint remap.

/// <summary>One inverted-residual setting of MobileNetV3 (channels before the width multiplier).</summary>
/// <param name="Input">Input channels.</param>
/// <param name="Kernel">Depthwise kernel size.</param>
/// <param name="Expanded">Expanded channels.</param>
/// <param name="Output">Output channels.</param>
/// <param name="UseSe">Whether the block has squeeze-excitation.</param>
/// <param name="HardSwish">Hardswish (true) or ReLU (false).</param>
/// <param name="Stride">Depthwise stride.</param>
public sealed record MobileNetV3Block(int Input, int Kernel, int Expanded, int Output, bool UseSe, bool HardSwish, int Stride);

/// <summary>Configuration of a MobileNetV3.</summary>
/// <param name="Arch"><c>large</c> or <c>small</c>.</param>
/// <param name="Blocks">Block settings.</param>
/// <param name="LastChannel">Width of the penultimate classifier layer.</param>
/// <param name="Dropout">Dropout in the classifier.</param>
public sealed record MobileNetV3Config(string Arch, MobileNetV3Block[] Blocks, int LastChannel, double Dropout = 0.2)
{
    /// <summary>MobileNetV3-Large.</summary>
    public static MobileNetV3Config Large { get; } = new("large",
    [
        new(16, 3, 16, 16, false, false, 1), new(16, 3, 64, 24, false, false, 2), new(24, 3, 72, 24, false, false, 1),
        new(24, 5, 72, 40, true, false, 2), new(40, 5, 120, 40, true, false, 1), new(40, 5, 120, 40, true, false, 1),
        new(40, 3, 240, 80, false, true, 2), new(80, 3, 200, 80, false, true, 1), new(80, 3, 184, 80, false, true, 1),
        new(80, 3, 184, 80, false, true, 1), new(80, 3, 480, 112, true, true, 1), new(112, 3, 672, 112, true, true, 1),
        new(112, 5, 672, 160, true, true, 2), new(160, 5, 960, 160, true, true, 1), new(160, 5, 960, 160, true, true, 1),
    ], 1280);

    /// <summary>MobileNetV3-Small.</summary>
    public static MobileNetV3Config Small { get; } = new("small",
    [
        new(16, 3, 16, 16, true, false, 2), new(16, 3, 72, 24, false, false, 2), new(24, 3, 88, 24, false, false, 1),
        new(24, 5, 96, 40, true, true, 2), new(40, 5, 240, 40, true, true, 1), new(40, 5, 240, 40, true, true, 1),
        new(40, 5, 120, 48, true, true, 1), new(48, 5, 144, 48, true, true, 1), new(48, 5, 288, 96, true, true, 2),
        new(96, 5, 576, 96, true, true, 1), new(96, 5, 576, 96, true, true, 1),
    ], 1024);

    /// <inheritdoc />
    public override string ToString() => $"MobileNetV3-{Arch}, {Blocks.Length} blocks, last channel {LastChannel}";
}

/// <summary>MobileNetV3's inverted residual (child <c>block</c>: expand, depthwise, optional SE, project).</summary>
public sealed class MobileNetV3InvertedResidual : ZooModule
{
    private readonly bool _residual;

    /// <summary>Creates a block; BatchNorm eps 1e-3, momentum 0.01 as torchvision.</summary>
    public MobileNetV3InvertedResidual(MobileNetV3Block c) : base("InvertedResidual")
    {
        _residual = c.Stride == 1 && c.Input == c.Output;
        Func<nn.Module<Tensor, Tensor>> act = c.HardSwish ? () => nn.Hardswish(inplace: true) : () => nn.ReLU(inplace: true);
        var block = new ZooSequential();
        int i = 0;
        if (c.Expanded != c.Input) block.Append($"{i++}", VisionBlocks.ConvNormAct(c.Input, c.Expanded, 1, norm: MobileNetV3.Norm, activation: act));
        block.Append($"{i++}", VisionBlocks.ConvNormAct(c.Expanded, c.Expanded, c.Kernel, c.Stride, groups: c.Expanded, norm: MobileNetV3.Norm, activation: act));
        if (c.UseSe)
            block.Append($"{i++}", new SqueezeExcitation(c.Expanded, VisionBlocks.MakeDivisible(c.Expanded / 4, 8), nn.ReLU(), nn.Hardsigmoid()));
        block.Append($"{i}", VisionBlocks.ConvNormAct(c.Expanded, c.Output, 1, norm: MobileNetV3.Norm, noActivation: true));
        Add("block", block);
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x) => _residual ? Run("block", x) + x : Run("block", x);
}

/// <summary>MobileNetV3 with torchvision's names: features, classifier (0 = linear, 1 = hardswish, 2 = dropout, 3 = linear head).</summary>
public sealed class MobileNetV3 : ZooModel
{
    private readonly int _lastConv;

    internal static nn.Module<Tensor, Tensor> Norm(int c) => nn.BatchNorm2d(c, eps: 0.001, momentum: 0.01);

    /// <summary>Builds the network with torchvision's initialisation.</summary>
    public MobileNetV3(MobileNetV3Config config, ModelOptions options) : base(nameof(MobileNetV3), options.NumClasses, options.InChans)
    {
        Config = config;
        var features = new ZooSequential();
        features.Append("0", VisionBlocks.ConvNormAct(options.InChans, config.Blocks[0].Input, 3, 2, norm: Norm, activation: () => nn.Hardswish(inplace: true)));
        for (int i = 0; i < config.Blocks.Length; i++) features.Append($"{i + 1}", new MobileNetV3InvertedResidual(config.Blocks[i]));
        int lastIn = config.Blocks[^1].Output;
        _lastConv = 6 * lastIn;
        features.Append($"{config.Blocks.Length + 1}", VisionBlocks.ConvNormAct(lastIn, _lastConv, 1, norm: Norm, activation: () => nn.Hardswish(inplace: true)));
        Add("features", features);
        Add("classifier", new ZooSequential(nn.Linear(_lastConv, config.LastChannel), nn.Hardswish(inplace: true),
            nn.Dropout(options.DropRate ?? config.Dropout), CreateHead(options.NumClasses)));
        Layers.InitConvNet(this);
        VisionBlocks.InitLinearNormal(this, 0.01);
    }

    /// <summary>The configuration this network was built from.</summary>
    public MobileNetV3Config Config { get; }

    /// <summary>Width after the classifier's hidden layer, which the head consumes.</summary>
    public override int NumFeatures => Config.LastChannel;

    /// <inheritdoc />
    public override string HeadPath => "classifier.3";

    /// <inheritdoc />
    public override string? StemConvPath => "features.0.0";

    /// <inheritdoc />
    public override Tensor ForwardFeatures(Tensor x) => Run("features", x);

    /// <summary>Pools, then runs the classifier; with <paramref name="preLogits"/> it stops before the last Linear and returns <see cref="NumFeatures"/> values per sample.</summary>
    public override Tensor ForwardHead(Tensor features, bool preLogits = false)
    {
        var pooled = ClassifierHead.GlobalAvgPool(features);
        return preLogits ? VisionBlocks.RunUntil(GetChild("classifier"), "3", pooled) : Run("classifier", pooled);
    }

    /// <inheritdoc />
    protected override nn.Module<Tensor, Tensor> CreateHead(int numClasses) =>
        ClassifierHead.Linear(Config.LastChannel, numClasses);

    /// <inheritdoc />
    public override IReadOnlyList<ParameterGroup> ParameterGroups() =>
        VisionBlocks.FeatureStageGroups(this, Config.Blocks.Length + 1);
}

/// <summary>Registers MobileNetV3 small and large with torchvision's weight tags.</summary>
public static class MobileNetV3Family
{
    /// <summary>Adds the MobileNetV3 variants to <paramref name="catalog"/>.</summary>
    public static void Register(ModelCatalog catalog)
    {
        var large = MobileNetV3Config.Large;
        TV.Register(catalog, "mobilenet_v3_large", "mobilenet_v3", large, o => new MobileNetV3(large, o), 5_483_032,
            [TV.Tag("imagenet1k_v1", "mobilenet_v3_large-8738ca79.pth", 74.042, 91.34, 256, 224),
             TV.Tag("imagenet1k_v2", "mobilenet_v3_large-5c1a4163.pth", 75.274, 92.566, 232, 224)], defaultTag: "imagenet1k_v2");
        var small = MobileNetV3Config.Small;
        TV.Register(catalog, "mobilenet_v3_small", "mobilenet_v3", small, o => new MobileNetV3(small, o), 2_542_856,
            [TV.Tag("imagenet1k_v1", "mobilenet_v3_small-047dcff4.pth", 67.668, 87.402, 256, 224)]);
    }

    // Checkpoint remap: none needed; torchvision's checkpoints use these names.
}
