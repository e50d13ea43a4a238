using System.Text.RegularExpressions;
using TorchSharp;
using ModelZoo.Models;
using static TorchSharp.torch;
using TV = ModelZoo.Models.TorchvisionWeights;

namespace ModelZoo.Models.Vision;

// DenseNet-121/161/169/201 with torchvision's parameter names (torchvision/models/densenet.py). File order, as in
// every family: config, blocks, model, variants + weight tags, checkpoint remap.

/// <summary>Configuration of a DenseNet-BC.</summary>
/// <param name="GrowthRate">Channels each dense layer adds (k).</param>
/// <param name="BlockConfig">Dense layers per block.</param>
/// <param name="NumInitFeatures">Channels of the stem convolution.</param>
/// <param name="BnSize">Bottleneck width factor (bn_size × k channels in the 1×1 conv).</param>
/// <param name="DropRate">Dropout after each dense layer.</param>
public sealed record DenseNetConfig(int GrowthRate, int[] BlockConfig, int NumInitFeatures, int BnSize = 4, double DropRate = 0)
{
    /// <inheritdoc />
    public override string ToString() => $"growth {GrowthRate}, blocks [{string.Join(", ", BlockConfig)}], stem {NumInitFeatures}";
}

/// <summary>Dense layer: BN-ReLU-1×1 conv, BN-ReLU-3×3 conv, optional dropout (norm1, relu1, conv1, norm2, relu2, conv2).</summary>
public sealed class DenseLayer : ZooModule
{
    private readonly double _dropRate;

    /// <summary>Creates a layer taking <paramref name="inputFeatures"/> channels.</summary>
    public DenseLayer(int inputFeatures, int growthRate, int bnSize, double dropRate) : base("_DenseLayer")
    {
        _dropRate = dropRate;
        Add("norm1", nn.BatchNorm2d(inputFeatures));
        Add("relu1", nn.ReLU(inplace: true));
        Add("conv1", nn.Conv2d(inputFeatures, bnSize * growthRate, 1, bias: false));
        Add("norm2", nn.BatchNorm2d(bnSize * growthRate));
        Add("relu2", nn.ReLU(inplace: true));
        Add("conv2", nn.Conv2d(bnSize * growthRate, growthRate, 3, padding: 1, bias: false));
    }

    /// <summary>Maps the concatenation of all earlier features to <c>growthRate</c> new channels.</summary>
    public override Tensor forward(Tensor x)
    {
        var y = Run("conv1", Run("relu1", Run("norm1", x)));
        y = Run("conv2", Run("relu2", Run("norm2", y)));
        return _dropRate > 0 ? nn.functional.dropout(y, _dropRate, training) : y;
    }
}

/// <summary>Dense block: each layer sees the concatenation of the block input and all earlier layers' outputs (children denselayer1…).</summary>
public sealed class DenseBlock : ZooModule
{
    /// <summary>Creates a block of <paramref name="numLayers"/> layers.</summary>
    public DenseBlock(int numLayers, int inputFeatures, int bnSize, int growthRate, double dropRate) : base("_DenseBlock")
    {
        for (int i = 0; i < numLayers; i++)
            Add($"denselayer{i + 1}", new DenseLayer(inputFeatures + i * growthRate, growthRate, bnSize, dropRate));
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        var features = new List<Tensor> { x };
        foreach (var name in ChildNames) features.Add(Run(name, cat(features, 1)));
        return cat(features, 1);
    }
}

/// <summary>DenseNet with torchvision's names: features (conv0, norm0, relu0, pool0, denseblockN, transitionN, norm5), classifier.</summary>
public sealed class DenseNet : ZooModel, ICheckpointAdapter
{
    private readonly int _numFeatures;

    /// <summary>Builds the network with torchvision's initialisation.</summary>
    public DenseNet(DenseNetConfig config, ModelOptions options) : base(nameof(DenseNet), options.NumClasses, options.InChans)
    {
        Config = config;
        var features = new ZooSequential();
        features.Append("conv0", nn.Conv2d(options.InChans, config.NumInitFeatures, 7, stride: 2, padding: 3, bias: false));
        features.Append("norm0", nn.BatchNorm2d(config.NumInitFeatures));
        features.Append("relu0", nn.ReLU(inplace: true));
        features.Append("pool0", nn.MaxPool2d(3, stride: 2, padding: 1));
        int n = config.NumInitFeatures;
        double drop = options.DropRate ?? config.DropRate;
        for (int i = 0; i < config.BlockConfig.Length; i++)
        {
            features.Append($"denseblock{i + 1}", new DenseBlock(config.BlockConfig[i], n, config.BnSize, config.GrowthRate, drop));
            n += config.BlockConfig[i] * config.GrowthRate;
            if (i != config.BlockConfig.Length - 1)
            {
                features.Append($"transition{i + 1}", new ZooSequential([
                    ("norm", nn.BatchNorm2d(n)), ("relu", nn.ReLU(inplace: true)),
                    ("conv", nn.Conv2d(n, n / 2, 1, bias: false)), ("pool", nn.AvgPool2d(2, stride: 2))]));
                n /= 2;
            }
        }
        features.Append("norm5", nn.BatchNorm2d(n));
        _numFeatures = n;
        Add("features", features);
        Add("classifier", CreateHead(options.NumClasses));
        Layers.InitConvNet(this);
    }

    /// <summary>The configuration this network was built from.</summary>
    public DenseNetConfig Config { get; }

    /// <inheritdoc />
    public override int NumFeatures => _numFeatures;

    /// <inheritdoc />
    public override string HeadPath => "classifier";

    /// <inheritdoc />
    public override string? StemConvPath => "features.conv0";

    /// <summary>The feature map after the final BatchNorm and ReLU (torchvision applies the ReLU in <c>forward</c>).</summary>
    public override Tensor ForwardFeatures(Tensor x) => nn.functional.relu(Run("features", x));

    /// <inheritdoc />
    public override Tensor ForwardHead(Tensor features, bool preLogits = false)
    {
        var pooled = ClassifierHead.GlobalAvgPool(features);
        return preLogits ? pooled : Run("classifier", pooled);
    }

    /// <inheritdoc />
    protected override nn.Module<Tensor, Tensor> CreateHead(int numClasses) =>
        ClassifierHead.Linear(_numFeatures, numClasses, ClassifierHead.ZeroBias);

    /// <summary>Groups: stem (conv0/norm0), each dense block with the transition after it, final norm with the head.</summary>
    public override IReadOnlyList<ParameterGroup> ParameterGroups() =>
        Layers.GroupsByPrefix(this, [("stem", ["features.conv0", "features.norm0"]),
            .. Enumerable.Range(1, Config.BlockConfig.Length).Select(i => ($"denseblock{i}", new[] { $"features.denseblock{i}", $"features.transition{i}" })),
            ("head", ["features.norm5", "classifier"])]);

    /// <summary>Renames the old keys of torchvision's DenseNet checkpoints (<c>denselayer1.norm.1.weight</c> → <c>denselayer1.norm1.weight</c>).</summary>
    public Dictionary<string, Tensor> AdaptCheckpoint(Dictionary<string, Tensor> stateDict) => DenseNetFamily.Remap(stateDict);
}

/// <summary>Registers DenseNet-121/161/169/201 with torchvision's weight tags.</summary>
public static class DenseNetFamily
{
    /// <summary>Adds the DenseNet variants to <paramref name="catalog"/>.</summary>
    public static void Register(ModelCatalog catalog)
    {
        Add(catalog, "densenet121", new(32, [6, 12, 24, 16], 64), 7_978_856,
            TV.Tag("imagenet1k_v1", "densenet121-a639ec97.pth", 74.434, 91.972, 256, 224));
        Add(catalog, "densenet161", new(48, [6, 12, 36, 24], 96), 28_681_000,
            TV.Tag("imagenet1k_v1", "densenet161-8d451a50.pth", 77.138, 93.56, 256, 224));
        Add(catalog, "densenet169", new(32, [6, 12, 32, 32], 64), 14_149_480,
            TV.Tag("imagenet1k_v1", "densenet169-b2777c0a.pth", 75.6, 92.806, 256, 224));
        Add(catalog, "densenet201", new(32, [6, 12, 48, 32], 64), 20_013_928,
            TV.Tag("imagenet1k_v1", "densenet201-c1103571.pth", 76.896, 93.37, 256, 224));
    }

    private static void Add(ModelCatalog catalog, string name, DenseNetConfig config, long parameters, params WeightTag[] tags) =>
        TV.Register(catalog, name, "densenet", config, o => new DenseNet(config, o), parameters, tags);

    private static readonly Regex OldKey = new(@"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$", RegexOptions.CultureInvariant);

    /// <summary>Checkpoint remap: <c>…denselayerN.norm.1.weight</c> → <c>…denselayerN.norm1.weight</c> (the LuaTorch-era names of the official files).</summary>
    public static Dictionary<string, Tensor> Remap(Dictionary<string, Tensor> stateDict) =>
        CheckpointKeys.Renamed(stateDict, key => OldKey.Match(key) is { Success: true } m ? m.Groups[1].Value + m.Groups[2].Value : key);
}
