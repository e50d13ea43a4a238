using TorchSharp;
using ModelZoo.Models;
using static TorchSharp.torch;
using TV = ModelZoo.Models.TorchvisionWeights;

namespace ModelZoo.Models.Vision;

// EfficientNet B0–B7 and EfficientNetV2 S/M/L with torchvision's parameter names (torchvision/models/efficientnet.py).
// File order, as in every family: config, blocks, model, variants + weight tags, checkpoint remap.

/// <summary>One stage of an EfficientNet (channels before the width multiplier, depth before the depth multiplier).</summary>
/// <param name="Fused">FusedMBConv (V2's early stages) instead of MBConv.</param>
/// <param name="ExpandRatio">Channel expansion of the block.</param>
/// <param name="Kernel">Kernel size.</param>
/// <param name="Stride">Stride of the first block.</param>
/// <param name="Input">Input channels.</param>
/// <param name="Output">Output channels.</param>
/// <param name="Layers">Number of blocks.</param>
public sealed record EfficientNetStage(bool Fused, double ExpandRatio, int Kernel, int Stride, int Input, int Output, int Layers);

/// <summary>Configuration of an EfficientNet.</summary>
/// <param name="Name">Variant name.</param>
/// <param name="Stages">Stage settings, already scaled by width and depth multipliers.</param>
/// <param name="Dropout">Dropout before the classifier.</param>
/// <param name="LastChannel">Width of the last 1×1 convolution (null = 4 × last stage's output).</param>
/// <param name="BatchNormEps">BatchNorm epsilon.</param>
/// <param name="BatchNormMomentum">BatchNorm momentum.</param>
/// <param name="StochasticDepth">Maximum stochastic depth rate (rises linearly over blocks).</param>
public sealed record EfficientNetConfig(string Name, EfficientNetStage[] Stages, double Dropout, int? LastChannel = null,
    double BatchNormEps = 1e-5, double BatchNormMomentum = 0.1, double StochasticDepth = 0.2)
{
    /// <summary>EfficientNet-B* settings for width and depth multipliers (torchvision's <c>MBConvConfig</c> scaling).</summary>
    public static EfficientNetConfig B(string name, double width, double depth, double dropout, double eps = 1e-5, double momentum = 0.1)
    {
        (double T, int K, int S, int I, int O, int N)[] b0 = [(1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
            (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1)];
        int Ch(int c) => VisionBlocks.MakeDivisible(c * width, 8);
        return new(name, b0.Select(s => new EfficientNetStage(false, s.T, s.K, s.S, Ch(s.I), Ch(s.O), (int)Math.Ceiling(s.N * depth))).ToArray(),
            dropout, null, eps, momentum);
    }

    /// <summary>EfficientNetV2 settings from (fused, expand, kernel, stride, in, out, layers) rows.</summary>
    public static EfficientNetConfig V2(string name, double dropout, params (bool F, double T, int K, int S, int I, int O, int N)[] rows) =>
        new(name, rows.Select(r => new EfficientNetStage(r.F, r.T, r.K, r.S, r.I, r.O, r.N)).ToArray(), dropout, 1280, 1e-3);

    /// <inheritdoc />
    public override string ToString() => $"{Name}: {Stages.Length} stages, depths [{string.Join(", ", Stages.Select(s => s.Layers))}], " +
        $"widths [{string.Join(", ", Stages.Select(s => s.Output))}]";
}

/// <summary>
/// What MBConv and FusedMBConv share: their layers as the child <c>block</c> and, when input and output shapes match, a
/// residual connection through <c>stochastic_depth</c>.
/// </summary>
public abstract class EfficientNetBlock : ZooModule
{
    private readonly bool _residual;

    /// <summary>
    /// Adds the layers <paramref name="layers"/> builds for the expanded width (input × the stage's expansion, rounded to
    /// a multiple of 8) and stochastic depth with drop probability <paramref name="sdProb"/>.
    /// </summary>
    protected EfficientNetBlock(string name, EfficientNetStage s, int input, int stride, double sdProb, Func<int, ZooSequential> layers) : base(name)
    {
        _residual = stride == 1 && input == s.Output;
        Add("block", layers(VisionBlocks.MakeDivisible(input * s.ExpandRatio, 8)));
        Add("stochastic_depth", new StochasticDepth(sdProb, "row"));
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        var y = Run("block", x);
        return _residual ? Run("stochastic_depth", y) + x : y;
    }
}

/// <summary>MBConv: 1×1 expand, depthwise k×k, squeeze-excitation, 1×1 project; residual with stochastic depth (children block, stochastic_depth).</summary>
public sealed class MBConv : EfficientNetBlock
{
    /// <summary>Creates a block.</summary>
    public MBConv(EfficientNetStage s, int input, int stride, double sdProb, Func<int, nn.Module<Tensor, Tensor>> norm)
        : base(nameof(MBConv), s, input, stride, sdProb, expanded => Build(s, input, expanded, stride, norm))
    {
    }

    private static ZooSequential Build(EfficientNetStage s, int input, int expanded, int stride, Func<int, nn.Module<Tensor, Tensor>> norm)
    {
        var block = new ZooSequential();
        int i = 0;
        if (expanded != input) block.Append($"{i++}", VisionBlocks.ConvNormAct(input, expanded, 1, norm: norm, activation: nn.SiLU));
        block.Append($"{i++}", VisionBlocks.ConvNormAct(expanded, expanded, s.Kernel, stride, groups: expanded, norm: norm, activation: nn.SiLU));
        block.Append($"{i++}", new SqueezeExcitation(expanded, Math.Max(1, input / 4), nn.SiLU()));
        block.Append($"{i}", VisionBlocks.ConvNormAct(expanded, s.Output, 1, norm: norm, noActivation: true));
        return block;
    }
}

/// <summary>FusedMBConv: k×k expand (or a single k×k conv), 1×1 project; residual with stochastic depth.</summary>
public sealed class FusedMBConv : EfficientNetBlock
{
    /// <summary>Creates a block.</summary>
    public FusedMBConv(EfficientNetStage s, int input, int stride, double sdProb, Func<int, nn.Module<Tensor, Tensor>> norm)
        : base(nameof(FusedMBConv), s, input, stride, sdProb, expanded => Build(s, input, expanded, stride, norm))
    {
    }

    private static ZooSequential Build(EfficientNetStage s, int input, int expanded, int stride, Func<int, nn.Module<Tensor, Tensor>> norm)
    {
        var block = new ZooSequential();
        if (expanded != input)
        {
            block.Append("0", VisionBlocks.ConvNormAct(input, expanded, s.Kernel, stride, norm: norm, activation: nn.SiLU));
            block.Append("1", VisionBlocks.ConvNormAct(expanded, s.Output, 1, norm: norm, noActivation: true));
        }
        else block.Append("0", VisionBlocks.ConvNormAct(input, s.Output, s.Kernel, stride, norm: norm, activation: nn.SiLU));
        return block;
    }
}

/// <summary>EfficientNet (V1 and V2) with torchvision's names: features (0 = stem, 1…n = stages, n+1 = last 1×1), classifier (0 = dropout, 1 = linear).</summary>
public sealed class EfficientNet : MobileNetLayoutModel
{
    private readonly int _numFeatures;

    /// <summary>Builds the network with torchvision's initialisation.</summary>
    public EfficientNet(EfficientNetConfig config, ModelOptions options) : base(nameof(EfficientNet), options)
    {
        Config = config;
        nn.Module<Tensor, Tensor> Norm(int c) => nn.BatchNorm2d(c, eps: config.BatchNormEps, momentum: config.BatchNormMomentum);
        var features = new ZooSequential();
        features.Append("0", VisionBlocks.ConvNormAct(options.InChans, config.Stages[0].Input, 3, 2, norm: Norm, activation: nn.SiLU));
        double sdMax = options.DropPathRate ?? config.StochasticDepth;
        int total = config.Stages.Sum(s => s.Layers), id = 0;
        for (int si = 0; si < config.Stages.Length; si++)
        {
            var s = config.Stages[si];
            var stage = new ZooSequential();
            for (int b = 0; b < s.Layers; b++)
            {
                int input = b == 0 ? s.Input : s.Output, stride = b == 0 ? s.Stride : 1;
                double sd = sdMax * id++ / total;
                stage.Append($"{b}", s.Fused ? new FusedMBConv(s, input, stride, sd, Norm) : new MBConv(s, input, stride, sd, Norm));
            }
            features.Append($"{si + 1}", stage);
        }
        int lastIn = config.Stages[^1].Output;
        _numFeatures = config.LastChannel ?? 4 * lastIn;
        features.Append($"{config.Stages.Length + 1}", VisionBlocks.ConvNormAct(lastIn, _numFeatures, 1, norm: Norm, activation: nn.SiLU));
        AddFeaturesAndClassifier(features, options.DropRate ?? config.Dropout, options.NumClasses);
        Layers.InitConvNet(this);
    }

    /// <summary>The configuration this network was built from.</summary>
    public EfficientNetConfig Config { get; }

    /// <inheritdoc />
    public override int NumFeatures => _numFeatures;

    /// <inheritdoc />
    protected override nn.Module<Tensor, Tensor> CreateHead(int numClasses) =>
        ClassifierHead.Linear(_numFeatures, numClasses, fc =>
        {
            double range = 1.0 / Math.Sqrt(numClasses);
            nn.init.uniform_(fc.weight, -range, range);
            nn.init.zeros_(fc.bias!);
        });

    /// <inheritdoc />
    public override IReadOnlyList<ParameterGroup> ParameterGroups() =>
        VisionBlocks.FeatureStageGroups(this, Config.Stages.Length + 1);
}

/// <summary>Registers EfficientNet B0–B7 and V2 S/M/L with torchvision's weight tags.</summary>
public static class EfficientNetFamily
{
    /// <summary>Adds the EfficientNet variants to <paramref name="catalog"/>.</summary>
    public static void Register(ModelCatalog catalog)
    {
        Add(catalog, EfficientNetConfig.B("efficientnet_b0", 1.0, 1.0, 0.2), 5_288_548, 224,
            TV.Tag("imagenet1k_v1", "efficientnet_b0_rwightman-3dd342df.pth", 77.692, 93.532, 256, 224, Interpolation.Bicubic));
        Add(catalog, EfficientNetConfig.B("efficientnet_b1", 1.0, 1.1, 0.2), 7_794_184, 240,
            TV.Tag("imagenet1k_v1", "efficientnet_b1_rwightman-533bc792.pth", 78.642, 94.186, 256, 240, Interpolation.Bicubic),
            TV.Tag("imagenet1k_v2", "efficientnet_b1-c27df63c.pth", 79.838, 94.934, 255, 240));
        Add(catalog, EfficientNetConfig.B("efficientnet_b2", 1.1, 1.2, 0.3), 9_109_994, 288,
            TV.Tag("imagenet1k_v1", "efficientnet_b2_rwightman-bcdf34b7.pth", 80.608, 95.31, 288, 288, Interpolation.Bicubic));
        Add(catalog, EfficientNetConfig.B("efficientnet_b3", 1.2, 1.4, 0.3), 12_233_232, 300,
            TV.Tag("imagenet1k_v1", "efficientnet_b3_rwightman-cf984f9c.pth", 82.008, 96.054, 320, 300, Interpolation.Bicubic));
        Add(catalog, EfficientNetConfig.B("efficientnet_b4", 1.4, 1.8, 0.4), 19_341_616, 380,
            TV.Tag("imagenet1k_v1", "efficientnet_b4_rwightman-7eb33cd5.pth", 83.384, 96.594, 384, 380, Interpolation.Bicubic));
        Add(catalog, EfficientNetConfig.B("efficientnet_b5", 1.6, 2.2, 0.4, 1e-3, 0.01), 30_389_784, 456,
            TV.Tag("imagenet1k_v1", "efficientnet_b5_lukemelas-b6417697.pth", 83.444, 96.628, 456, 456, Interpolation.Bicubic));
        Add(catalog, EfficientNetConfig.B("efficientnet_b6", 1.8, 2.6, 0.5, 1e-3, 0.01), 43_040_704, 528,
            TV.Tag("imagenet1k_v1", "efficientnet_b6_lukemelas-c76e70fd.pth", 84.008, 96.916, 528, 528, Interpolation.Bicubic));
        Add(catalog, EfficientNetConfig.B("efficientnet_b7", 2.0, 3.1, 0.5, 1e-3, 0.01), 66_347_960, 600,
            TV.Tag("imagenet1k_v1", "efficientnet_b7_lukemelas-dcc49843.pth", 84.122, 96.908, 600, 600, Interpolation.Bicubic));
        Add(catalog, EfficientNetConfig.V2("efficientnet_v2_s", 0.2,
                (true, 1, 3, 1, 24, 24, 2), (true, 4, 3, 2, 24, 48, 4), (true, 4, 3, 2, 48, 64, 4),
                (false, 4, 3, 2, 64, 128, 6), (false, 6, 3, 1, 128, 160, 9), (false, 6, 3, 2, 160, 256, 15)), 21_458_488, 384,
            TV.Tag("imagenet1k_v1", "efficientnet_v2_s-dd5fe13b.pth", 84.228, 96.878, 384, 384));
        Add(catalog, EfficientNetConfig.V2("efficientnet_v2_m", 0.3,
                (true, 1, 3, 1, 24, 24, 3), (true, 4, 3, 2, 24, 48, 5), (true, 4, 3, 2, 48, 80, 5),
                (false, 4, 3, 2, 80, 160, 7), (false, 6, 3, 1, 160, 176, 14), (false, 6, 3, 2, 176, 304, 18), (false, 6, 3, 1, 304, 512, 5)), 54_139_356, 480,
            TV.Tag("imagenet1k_v1", "efficientnet_v2_m-dc08266a.pth", 85.112, 97.156, 480, 480));
        Add(catalog, EfficientNetConfig.V2("efficientnet_v2_l", 0.4,
                (true, 1, 3, 1, 32, 32, 4), (true, 4, 3, 2, 32, 64, 7), (true, 4, 3, 2, 64, 96, 7),
                (false, 4, 3, 2, 96, 192, 10), (false, 6, 3, 1, 192, 224, 19), (false, 6, 3, 2, 224, 384, 25), (false, 6, 3, 1, 384, 640, 7)), 118_515_272, 480,
            TV.Tag("imagenet1k_v1", "efficientnet_v2_l-59c71312.pth", 85.808, 97.788, 480, 480, Interpolation.Bicubic, halfNorm: true));
    }

    private static void Add(ModelCatalog catalog, EfficientNetConfig config, long parameters, int inputSize, params WeightTag[] tags) =>
        TV.Register(catalog, config.Name, config.Name.StartsWith("efficientnet_v2", StringComparison.Ordinal) ? "efficientnet_v2" : "efficientnet",
            config, o => new EfficientNet(config, o), parameters, tags, inputSize, defaultTag: tags[^1].Tag);

    // Checkpoint remap: none needed; torchvision's checkpoints use these names.
}
