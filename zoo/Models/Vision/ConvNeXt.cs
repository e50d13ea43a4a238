using TorchSharp;
using ModelZoo.Models;
using static TorchSharp.torch;
using TV = ModelZoo.Models.TorchvisionWeights;

namespace ModelZoo.Models.Vision;

// ConvNeXt tiny/small/base/large with torchvision's parameter names (torchvision/models/convnext.py). File order, as
// in every family: config, blocks, model, variants + weight tags, checkpoint remap.

/// <summary>Configuration of a ConvNeXt.</summary>
/// <param name="Dims">Channels per stage.</param>
/// <param name="Depths">Blocks per stage.</param>
/// <param name="StochasticDepth">Maximum stochastic depth rate (rises linearly over blocks).</param>
/// <param name="LayerScale">Initial layer-scale value.</param>
public sealed record ConvNeXtConfig(int[] Dims, int[] Depths, double StochasticDepth, double LayerScale = 1e-6)
{
    /// <inheritdoc />
    public override string ToString() => $"dims [{string.Join(", ", Dims)}], depths [{string.Join(", ", Depths)}]";
}

/// <summary>ConvNeXt block: depthwise 7×7, LayerNorm, MLP (4×), layer scale, stochastic depth (children block, stochastic_depth; parameter layer_scale).</summary>
public sealed class CNBlock : ZooModule
{
    /// <summary>Creates a block of width <paramref name="dim"/>.</summary>
    public CNBlock(int dim, double layerScale, double sdProb) : base(nameof(CNBlock))
    {
        Add("block", new ZooSequential(
            nn.Conv2d(dim, dim, 7, padding: 3, groups: dim, bias: true),
            new Permute(0, 2, 3, 1),
            nn.LayerNorm([dim], eps: 1e-6),
            nn.Linear(dim, 4 * dim),
            nn.GELU(),
            nn.Linear(4 * dim, dim),
            new Permute(0, 3, 1, 2)));
        register_parameter("layer_scale", new TorchSharp.Modules.Parameter(full(dim, 1, 1, layerScale)));
        Add("stochastic_depth", new StochasticDepth(sdProb, "row"));
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        var y = this.Param("layer_scale") * Run("block", x);
        return Run("stochastic_depth", y) + x;
    }
}

/// <summary>ConvNeXt with torchvision's names: features (0 = stem, odd = stages, even ≥ 2 = downsampling), classifier (0 = LayerNorm2d, 1 = flatten, 2 = linear head).</summary>
public sealed class ConvNeXt : ZooModel
{
    /// <summary>Builds the network with torchvision's initialisation (truncated normal σ 0.02).</summary>
    public ConvNeXt(ConvNeXtConfig config, ModelOptions options) : base(nameof(ConvNeXt), options.NumClasses, options.InChans)
    {
        Config = config;
        var features = new ZooSequential();
        features.Append("0", VisionBlocks.ConvNormAct(options.InChans, config.Dims[0], 4, 4, padding: 0, bias: true, norm: c => new LayerNorm2d(c), noActivation: true));
        int total = config.Depths.Sum(), id = 0, idx = 1;
        double sdMax = options.DropPathRate ?? config.StochasticDepth;
        for (int s = 0; s < config.Dims.Length; s++)
        {
            var stage = new ZooSequential();
            for (int b = 0; b < config.Depths[s]; b++)
                stage.Append($"{b}", new CNBlock(config.Dims[s], config.LayerScale, sdMax * id++ / (total - 1.0)));
            features.Append($"{idx++}", stage);
            if (s < config.Dims.Length - 1)
                features.Append($"{idx++}", new ZooSequential(new LayerNorm2d(config.Dims[s]), nn.Conv2d(config.Dims[s], config.Dims[s + 1], 2, stride: 2)));
        }
        Add("features", features);
        Add("classifier", new ZooSequential(new LayerNorm2d(NumFeatures), nn.Flatten(1), CreateHead(options.NumClasses)));
        VisionBlocks.InitTruncNormal(this);
    }

    /// <summary>The configuration this network was built from.</summary>
    public ConvNeXtConfig Config { get; }

    /// <inheritdoc />
    public override int NumFeatures => Config.Dims[^1];

    /// <inheritdoc />
    public override string HeadPath => "classifier.2";

    /// <inheritdoc />
    public override string? StemConvPath => "features.0.0";

    /// <inheritdoc />
    public override Tensor ForwardFeatures(Tensor x) => Run("features", x);

    /// <summary>Pools, then LayerNorm, flatten and the linear head; with <paramref name="preLogits"/> it stops before the linear.</summary>
    public override Tensor ForwardHead(Tensor features, bool preLogits = false)
    {
        var pooled = nn.functional.adaptive_avg_pool2d(features, [1, 1]);
        return preLogits ? VisionBlocks.RunUntil(GetChild("classifier"), "2", pooled) : Run("classifier", pooled);
    }

    /// <inheritdoc />
    protected override nn.Module<Tensor, Tensor> CreateHead(int numClasses) =>
        ClassifierHead.Linear(NumFeatures, numClasses, fc => VisionBlocks.InitTruncNormal(fc));

    /// <summary>Groups: stem, then each stage with the downsampling layer before it, then the head (classifier's norm and linear).</summary>
    public override IReadOnlyList<ParameterGroup> ParameterGroups() =>
        Layers.GroupsByPrefix(this, [("stem", ["features.0"]), .. Enumerable.Range(0, Config.Dims.Length).Select(s => ($"stage{s + 1}", s == 0 ? ["features.1"] : new[] { $"features.{2 * s}", $"features.{2 * s + 1}" })), ("head", ["classifier"])]);
}

/// <summary>Registers ConvNeXt tiny/small/base/large with torchvision's weight tags.</summary>
public static class ConvNeXtFamily
{
    /// <summary>Adds the ConvNeXt variants to <paramref name="catalog"/>.</summary>
    public static void Register(ModelCatalog catalog)
    {
        Add(catalog, "convnext_tiny", new([96, 192, 384, 768], [3, 3, 9, 3], 0.1), 28_589_128,
            TV.Tag("imagenet1k_v1", "convnext_tiny-983f1562.pth", 82.52, 96.146, 236, 224));
        Add(catalog, "convnext_small", new([96, 192, 384, 768], [3, 3, 27, 3], 0.4), 50_223_688,
            TV.Tag("imagenet1k_v1", "convnext_small-0c510722.pth", 83.616, 96.65, 230, 224));
        Add(catalog, "convnext_base", new([128, 256, 512, 1024], [3, 3, 27, 3], 0.5), 88_591_464,
            TV.Tag("imagenet1k_v1", "convnext_base-6075fbad.pth", 84.062, 96.87, 232, 224));
        Add(catalog, "convnext_large", new([192, 384, 768, 1536], [3, 3, 27, 3], 0.5), 197_767_336,
            TV.Tag("imagenet1k_v1", "convnext_large-ea097f82.pth", 84.414, 96.976, 232, 224));
    }

    private static void Add(ModelCatalog catalog, string name, ConvNeXtConfig config, long parameters, params WeightTag[] tags) =>
        TV.Register(catalog, name, "convnext", config, o => new ConvNeXt(config, o), parameters, tags);

    // Checkpoint remap: none needed; torchvision's checkpoints use these names.
}
