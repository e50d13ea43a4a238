using TorchSharp;
using ModelZoo.Models;
using static TorchSharp.torch;
using TV = ModelZoo.Models.TorchvisionWeights;
using TorchvisionFile = (string Hash, double Top1, double Top5);

namespace ModelZoo.Models.Vision;

// RegNetX / RegNetY with torchvision's parameter names (torchvision/models/regnet.py). File order, as in every
// family: config, blocks, model, variants + weight tags, checkpoint remap.

/// <summary>RegNet design-space parameters (Radosavovic et al.); stage widths and depths are derived as torchvision does.</summary>
/// <param name="Depth">Total number of blocks.</param>
/// <param name="W0">Initial width.</param>
/// <param name="WA">Width slope.</param>
/// <param name="WM">Width multiplier between stages (log-space quantisation).</param>
/// <param name="GroupWidth">Channels per group of the 3×3 convolution.</param>
/// <param name="SeRatio">Squeeze-excitation ratio (RegNetY) or null (RegNetX).</param>
/// <param name="BottleneckMultiplier">Bottleneck multiplier (1 in torchvision's models).</param>
public sealed record RegNetConfig(int Depth, int W0, double WA, double WM, int GroupWidth, double? SeRatio = null, double BottleneckMultiplier = 1.0)
{
    /// <summary>Per-stage (width, depth, group width), computed in float32 exactly as torchvision's <c>BlockParams.from_init_params</c>.</summary>
    public IReadOnlyList<(int Width, int Depth, int GroupWidth)> Stages()
    {
        const int quant = 8;
        if (WA < 0 || W0 <= 0 || WM <= 1 || W0 % 8 != 0) throw new ArgumentException($"Invalid RegNet settings {this} (RegNet.cs): need w_a ≥ 0, w_0 > 0 and a multiple of 8, w_m > 1.");
        int[] blockWidths;
        using (NewDisposeScope())
        {
            var widthsCont = arange(Depth, ScalarType.Int64) * WA + W0;
            var capacity = (log(widthsCont / W0) / Math.Log(WM)).round();
            var widths = (full_like(capacity, WM).pow(capacity) * W0 / quant).round() * quant;
            blockWidths = widths.to(ScalarType.Int32).data<int>().ToArray();
        }
        var stageWidths = new List<int>();
        var stageDepths = new List<int>();
        for (int i = 0; i < blockWidths.Length; i++)
        {
            if (i == 0 || blockWidths[i] != blockWidths[i - 1]) { stageWidths.Add(blockWidths[i]); stageDepths.Add(1); }
            else stageDepths[^1]++;
        }
        var result = new List<(int, int, int)>();
        for (int s = 0; s < stageWidths.Count; s++)
        {
            int wBot = (int)(stageWidths[s] * BottleneckMultiplier);
            int g = Math.Min(GroupWidth, wBot);
            int wBotAdj = VisionBlocks.MakeDivisible(wBot, g);
            result.Add(((int)(wBotAdj / BottleneckMultiplier), stageDepths[s], g));
        }
        return result;
    }

    /// <inheritdoc />
    public override string ToString() => $"RegNet{(SeRatio is null ? "X" : "Y")} depth {Depth}, w0 {W0}, wa {WA}, wm {WM}, group width {GroupWidth}";
}

/// <summary>RegNet's residual bottleneck: optional projection (proj), transform f (a, b, [se], c), activation.</summary>
public sealed class ResBottleneckBlock : ZooModule
{
    /// <summary>Creates a block.</summary>
    public ResBottleneckBlock(int widthIn, int widthOut, int stride, int groupWidth, double bottleneckMultiplier, double? seRatio) : base(nameof(ResBottleneckBlock))
    {
        if (widthIn != widthOut || stride != 1) Add("proj", VisionBlocks.ConvNormAct(widthIn, widthOut, 1, stride, noActivation: true));
        int wB = (int)Math.Round(widthOut * bottleneckMultiplier, MidpointRounding.ToEven);
        int g = wB / groupWidth;
        var f = new ZooSequential();
        f.Append("a", VisionBlocks.ConvNormAct(widthIn, wB, 1));
        f.Append("b", VisionBlocks.ConvNormAct(wB, wB, 3, stride, groups: g));
        if (seRatio is double r && r > 0) f.Append("se", new SqueezeExcitation(wB, (int)Math.Round(r * widthIn, MidpointRounding.ToEven), nn.ReLU()));
        f.Append("c", VisionBlocks.ConvNormAct(wB, widthOut, 1, noActivation: true));
        Add("f", f);
        Add("activation", nn.ReLU(inplace: true));
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        var shortcut = RunIfPresent("proj", x);
        return Run("activation", shortcut + Run("f", x));
    }
}

/// <summary>RegNet with torchvision's names: stem, trunk_output (block1…blockN, each with blocks "blockS-i"), avgpool, fc.</summary>
public sealed class RegNet : ZooModel
{
    private readonly int _numFeatures;
    private readonly int _numStages;

    /// <summary>Builds the network with torchvision's initialisation.</summary>
    public RegNet(RegNetConfig config, ModelOptions options) : base(nameof(RegNet), options.NumClasses, options.InChans)
    {
        Config = config;
        const int stemWidth = 32;
        Add("stem", VisionBlocks.ConvNormAct(options.InChans, stemWidth, 3, 2));
        var trunk = new ZooSequential();
        int current = stemWidth;
        var stages = config.Stages();
        for (int s = 0; s < stages.Count; s++)
        {
            var (width, depth, gw) = stages[s];
            var stage = new ZooSequential();
            for (int i = 0; i < depth; i++)
                stage.Append($"block{s + 1}-{i}", new ResBottleneckBlock(i == 0 ? current : width, width, i == 0 ? 2 : 1, gw, config.BottleneckMultiplier, config.SeRatio));
            trunk.Append($"block{s + 1}", stage);
            current = width;
        }
        _numStages = stages.Count;
        _numFeatures = current;
        Add("trunk_output", trunk);
        Add("avgpool", nn.AdaptiveAvgPool2d(1));
        Add("fc", CreateHead(options.NumClasses));
        using (no_grad())
        {
            foreach (var (_, m) in named_modules())
                if (m is TorchSharp.Modules.Conv2d conv)
                {
                    double fanOut = conv.kernel_size[0] * conv.kernel_size[1] * conv.out_channels;
                    nn.init.normal_(conv.weight, 0, Math.Sqrt(2.0 / fanOut));
                }
                else if (m is TorchSharp.Modules.BatchNorm2d bn) { nn.init.ones_(bn.weight!); nn.init.zeros_(bn.bias!); }
        }
    }

    /// <summary>The configuration this network was built from.</summary>
    public RegNetConfig Config { get; }

    /// <inheritdoc />
    public override int NumFeatures => _numFeatures;

    /// <inheritdoc />
    public override string HeadPath => "fc";

    /// <inheritdoc />
    public override string? StemConvPath => "stem.0";

    /// <inheritdoc />
    public override Tensor ForwardFeatures(Tensor x) => Run("trunk_output", Run("stem", x));

    /// <inheritdoc />
    public override Tensor ForwardHead(Tensor features, bool preLogits = false)
    {
        var pooled = Run("avgpool", features).flatten(1);
        return preLogits ? pooled : Run("fc", pooled);
    }

    /// <inheritdoc />
    protected override nn.Module<Tensor, Tensor> CreateHead(int numClasses) =>
        ClassifierHead.Linear(_numFeatures, numClasses, fc => VisionBlocks.InitLinearNormal(fc, 0.01));

    /// <inheritdoc />
    public override IReadOnlyList<ParameterGroup> ParameterGroups() =>
        Layers.GroupsByPrefix(this, [("stem", ["stem"]), .. Enumerable.Range(1, _numStages).Select(i => ($"block{i}", new[] { $"trunk_output.block{i}" })), ("head", ["fc"])]);
}

/// <summary>Registers the RegNetX and RegNetY variants torchvision ships, with its weight tags.</summary>
public static class RegNetFamily
{
    /// <summary>Adds the RegNet variants to <paramref name="catalog"/>.</summary>
    public static void Register(ModelCatalog catalog)
    {
        foreach (var v in Variants)
        {
            var tags = new List<WeightTag>();
            if (v.V1 is { } v1) tags.Add(TV.Tag("imagenet1k_v1", $"{v.Name}-{v1.Hash}.pth", v1.Top1, v1.Top5, 256, 224));
            if (v.V2 is { } v2) tags.Add(TV.Tag("imagenet1k_v2", $"{v.Name}-{v2.Hash}.pth", v2.Top1, v2.Top5, 232, 224));
            if (v.Swag is { E2e: var e2e, Linear: var linear })
            {
                tags.Add(TV.Tag("imagenet1k_swag_e2e_v1", $"{v.Name}_swag-{e2e.Hash}.pth", e2e.Top1, e2e.Top5, 384, 384, Interpolation.Bicubic));
                tags.Add(TV.Tag("imagenet1k_swag_linear_v1", $"{v.Name}_lc_swag-{linear.Hash}.pth", linear.Top1, linear.Top5, 224, 224, Interpolation.Bicubic));
            }
            TV.Register(catalog, v.Name, "regnet", v.Config, o => new RegNet(v.Config, o), v.Parameters, [.. tags],
                defaultTag: v.V2 is null ? "imagenet1k_swag_e2e_v1" : "imagenet1k_v2");
        }
    }

    /// <summary>
    /// One variant: its configuration (depth, w0, wa, wm, group width[, SE ratio]), parameter count and weights, each
    /// as the hash prefix of the file and the reported ImageNet-1k acc@1 and acc@5: imagenet1k_v1 (resize 256), imagenet1k_v2 (resize 232, the default where present), and SWAG end-to-end
    /// (384, bicubic) and linear-classifier (224, bicubic) weights. File names follow torchvision's
    /// <c>name-hash.pth</c>, <c>name_swag-hash.pth</c> and <c>name_lc_swag-hash.pth</c>.
    /// </summary>
    private sealed record Variant(string Name, RegNetConfig Config, long Parameters, TorchvisionFile? V1, TorchvisionFile? V2, (TorchvisionFile E2e, TorchvisionFile Linear)? Swag = null);

    private static readonly Variant[] Variants =
    [
        new("regnet_y_400mf", new(16, 48, 27.89, 2.09, 8, 0.25), 4_344_144, ("c65dace8", 74.046, 91.716), ("e6988f5f", 75.804, 92.742)),
        new("regnet_y_800mf", new(14, 56, 38.84, 2.4, 16, 0.25), 6_432_512, ("1b27b58c", 76.42, 93.136), ("58fc7688", 78.828, 94.502)),
        new("regnet_y_1_6gf", new(27, 48, 20.71, 2.65, 24, 0.25), 11_202_430, ("b11a554e", 77.95, 93.966), ("0d7bc02a", 80.876, 95.444)),
        new("regnet_y_3_2gf", new(21, 80, 42.63, 2.66, 24, 0.25), 19_436_338, ("b5a9779c", 78.948, 94.576), ("9180c971", 81.982, 95.972)),
        new("regnet_y_8gf", new(17, 192, 76.82, 2.19, 56, 0.25), 39_381_472, ("d0d0e4a8", 80.032, 95.048), ("dc2b1b54", 82.828, 96.33)),
        new("regnet_y_16gf", new(18, 200, 106.23, 2.48, 112, 0.25), 83_590_140, ("9e6ed7dd", 80.424, 95.24), ("3e4a00f9", 82.886, 96.328), (("43afe44d", 86.012, 98.054), ("f3ec0043", 83.976, 97.244))),
        new("regnet_y_32gf", new(20, 232, 115.89, 2.53, 232, 0.25), 145_046_770, ("4dee3f7a", 80.878, 95.34), ("8db6d4b5", 83.368, 96.498), (("04fdfa75", 86.838, 98.362), ("e1583746", 84.622, 97.48))),
        new("regnet_y_128gf", new(27, 456, 160.83, 2.52, 264, 0.25), 644_812_894, null, null, (("c8ce3e52", 88.228, 98.682), ("cbe8ce12", 86.068, 97.844))),
        new("regnet_x_400mf", new(22, 24, 24.48, 2.54, 16), 5_495_976, ("adf1edd5", 72.834, 90.95), ("62229a5f", 74.864, 92.322)),
        new("regnet_x_800mf", new(16, 56, 35.73, 2.28, 16), 7_259_656, ("ad17e45c", 75.212, 92.348), ("94a99ebd", 77.522, 93.826)),
        new("regnet_x_1_6gf", new(18, 80, 34.01, 2.25, 24), 9_190_136, ("e3633e7f", 77.04, 93.44), ("a12f2b72", 79.668, 94.922)),
        new("regnet_x_3_2gf", new(25, 88, 26.31, 2.25, 48), 15_296_552, ("f342aeae", 78.364, 93.992), ("7071aa85", 81.196, 95.43)),
        new("regnet_x_8gf", new(23, 80, 49.56, 2.88, 120), 39_572_648, ("03ceed89", 79.344, 94.686), ("2b70d774", 81.682, 95.678)),
        new("regnet_x_16gf", new(22, 216, 55.59, 2.1, 128), 54_278_536, ("2007eb11", 80.058, 94.944), ("ba3796d7", 82.716, 96.196)),
        new("regnet_x_32gf", new(23, 320, 69.86, 2.0, 168), 107_811_560, ("9d47f8d0", 80.622, 95.248), ("6eb8fdc6", 83.014, 96.288)),
    ];

    // Checkpoint remap: none needed; torchvision's checkpoints use these names.
}
