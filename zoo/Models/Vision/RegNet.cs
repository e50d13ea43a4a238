using TorchSharp;
using ModelZoo.Models;
using static TorchSharp.torch;
using TV = ModelZoo.Models.TorchvisionWeights;

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
    protected override nn.Module<Tensor, Tensor> CreateHead(int numClasses)
    {
        if (numClasses == 0) return nn.Identity();
        var fc = nn.Linear(_numFeatures, numClasses);
        VisionBlocks.InitLinearNormal(fc, 0.01);
        return fc;
    }

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
        Add(catalog, "regnet_y_400mf", new(16, 48, 27.89, 2.09, 8, 0.25), 4_344_144,
            TV.Tag("imagenet1k_v1", "regnet_y_400mf-c65dace8.pth", 74.046, 91.716, 256, 224),
            TV.Tag("imagenet1k_v2", "regnet_y_400mf-e6988f5f.pth", 75.804, 92.742, 232, 224));
        Add(catalog, "regnet_y_800mf", new(14, 56, 38.84, 2.4, 16, 0.25), 6_432_512,
            TV.Tag("imagenet1k_v1", "regnet_y_800mf-1b27b58c.pth", 76.42, 93.136, 256, 224),
            TV.Tag("imagenet1k_v2", "regnet_y_800mf-58fc7688.pth", 78.828, 94.502, 232, 224));
        Add(catalog, "regnet_y_1_6gf", new(27, 48, 20.71, 2.65, 24, 0.25), 11_202_430,
            TV.Tag("imagenet1k_v1", "regnet_y_1_6gf-b11a554e.pth", 77.95, 93.966, 256, 224),
            TV.Tag("imagenet1k_v2", "regnet_y_1_6gf-0d7bc02a.pth", 80.876, 95.444, 232, 224));
        Add(catalog, "regnet_y_3_2gf", new(21, 80, 42.63, 2.66, 24, 0.25), 19_436_338,
            TV.Tag("imagenet1k_v1", "regnet_y_3_2gf-b5a9779c.pth", 78.948, 94.576, 256, 224),
            TV.Tag("imagenet1k_v2", "regnet_y_3_2gf-9180c971.pth", 81.982, 95.972, 232, 224));
        Add(catalog, "regnet_y_8gf", new(17, 192, 76.82, 2.19, 56, 0.25), 39_381_472,
            TV.Tag("imagenet1k_v1", "regnet_y_8gf-d0d0e4a8.pth", 80.032, 95.048, 256, 224),
            TV.Tag("imagenet1k_v2", "regnet_y_8gf-dc2b1b54.pth", 82.828, 96.33, 232, 224));
        Add(catalog, "regnet_y_16gf", new(18, 200, 106.23, 2.48, 112, 0.25), 83_590_140,
            TV.Tag("imagenet1k_v1", "regnet_y_16gf-9e6ed7dd.pth", 80.424, 95.24, 256, 224),
            TV.Tag("imagenet1k_v2", "regnet_y_16gf-3e4a00f9.pth", 82.886, 96.328, 232, 224),
            TV.Tag("imagenet1k_swag_e2e_v1", "regnet_y_16gf_swag-43afe44d.pth", 86.012, 98.054, 384, 384, Interpolation.Bicubic),
            TV.Tag("imagenet1k_swag_linear_v1", "regnet_y_16gf_lc_swag-f3ec0043.pth", 83.976, 97.244, 224, 224, Interpolation.Bicubic));
        Add(catalog, "regnet_y_32gf", new(20, 232, 115.89, 2.53, 232, 0.25), 145_046_770,
            TV.Tag("imagenet1k_v1", "regnet_y_32gf-4dee3f7a.pth", 80.878, 95.34, 256, 224),
            TV.Tag("imagenet1k_v2", "regnet_y_32gf-8db6d4b5.pth", 83.368, 96.498, 232, 224),
            TV.Tag("imagenet1k_swag_e2e_v1", "regnet_y_32gf_swag-04fdfa75.pth", 86.838, 98.362, 384, 384, Interpolation.Bicubic),
            TV.Tag("imagenet1k_swag_linear_v1", "regnet_y_32gf_lc_swag-e1583746.pth", 84.622, 97.48, 224, 224, Interpolation.Bicubic));
        Add(catalog, "regnet_y_128gf", new(27, 456, 160.83, 2.52, 264, 0.25), 644_812_894, "imagenet1k_swag_e2e_v1",
            TV.Tag("imagenet1k_swag_e2e_v1", "regnet_y_128gf_swag-c8ce3e52.pth", 88.228, 98.682, 384, 384, Interpolation.Bicubic),
            TV.Tag("imagenet1k_swag_linear_v1", "regnet_y_128gf_lc_swag-cbe8ce12.pth", 86.068, 97.844, 224, 224, Interpolation.Bicubic));
        Add(catalog, "regnet_x_400mf", new(22, 24, 24.48, 2.54, 16), 5_495_976,
            TV.Tag("imagenet1k_v1", "regnet_x_400mf-adf1edd5.pth", 72.834, 90.95, 256, 224),
            TV.Tag("imagenet1k_v2", "regnet_x_400mf-62229a5f.pth", 74.864, 92.322, 232, 224));
        Add(catalog, "regnet_x_800mf", new(16, 56, 35.73, 2.28, 16), 7_259_656,
            TV.Tag("imagenet1k_v1", "regnet_x_800mf-ad17e45c.pth", 75.212, 92.348, 256, 224),
            TV.Tag("imagenet1k_v2", "regnet_x_800mf-94a99ebd.pth", 77.522, 93.826, 232, 224));
        Add(catalog, "regnet_x_1_6gf", new(18, 80, 34.01, 2.25, 24), 9_190_136,
            TV.Tag("imagenet1k_v1", "regnet_x_1_6gf-e3633e7f.pth", 77.04, 93.44, 256, 224),
            TV.Tag("imagenet1k_v2", "regnet_x_1_6gf-a12f2b72.pth", 79.668, 94.922, 232, 224));
        Add(catalog, "regnet_x_3_2gf", new(25, 88, 26.31, 2.25, 48), 15_296_552,
            TV.Tag("imagenet1k_v1", "regnet_x_3_2gf-f342aeae.pth", 78.364, 93.992, 256, 224),
            TV.Tag("imagenet1k_v2", "regnet_x_3_2gf-7071aa85.pth", 81.196, 95.43, 232, 224));
        Add(catalog, "regnet_x_8gf", new(23, 80, 49.56, 2.88, 120), 39_572_648,
            TV.Tag("imagenet1k_v1", "regnet_x_8gf-03ceed89.pth", 79.344, 94.686, 256, 224),
            TV.Tag("imagenet1k_v2", "regnet_x_8gf-2b70d774.pth", 81.682, 95.678, 232, 224));
        Add(catalog, "regnet_x_16gf", new(22, 216, 55.59, 2.1, 128), 54_278_536,
            TV.Tag("imagenet1k_v1", "regnet_x_16gf-2007eb11.pth", 80.058, 94.944, 256, 224),
            TV.Tag("imagenet1k_v2", "regnet_x_16gf-ba3796d7.pth", 82.716, 96.196, 232, 224));
        Add(catalog, "regnet_x_32gf", new(23, 320, 69.86, 2.0, 168), 107_811_560,
            TV.Tag("imagenet1k_v1", "regnet_x_32gf-9d47f8d0.pth", 80.622, 95.248, 256, 224),
            TV.Tag("imagenet1k_v2", "regnet_x_32gf-6eb8fdc6.pth", 83.014, 96.288, 232, 224));
    }

    private static void Add(ModelCatalog catalog, string name, RegNetConfig config, long parameters, params WeightTag[] tags) =>
        Add(catalog, name, config, parameters, "imagenet1k_v2", tags);

    private static void Add(ModelCatalog catalog, string name, RegNetConfig config, long parameters, string defaultTag, params WeightTag[] tags) =>
        TV.Register(catalog, name, "regnet", config, o => new RegNet(config, o), parameters, tags, defaultTag: defaultTag);

    // Checkpoint remap: none needed; torchvision's checkpoints use these names.
}
