using TorchSharp;
using ModelZoo.Models;
using static TorchSharp.torch;
using TV = ModelZoo.Models.TorchvisionWeights;

namespace ModelZoo.Models.Vision;

// VGG 11/13/16/19 with and without BatchNorm, with torchvision's parameter names (torchvision/models/vgg.py). File
// order, as in every family: config, blocks, model, variants + weight tags, checkpoint remap.

/// <summary>Configuration of a VGG: output channels of each 3×3 convolution, 0 for a 2×2 max-pool.</summary>
/// <param name="Layers">Channels per convolution, 0 = max-pool.</param>
/// <param name="BatchNorm">BatchNorm after each convolution.</param>
/// <param name="Dropout">Dropout in the classifier.</param>
public sealed record VGGConfig(int[] Layers, bool BatchNorm, double Dropout = 0.5)
{
    /// <summary>torchvision's configuration letters A (11), B (13), D (16), E (19).</summary>
    public static int[] Cfg(char letter) => letter switch
    {
        'A' => [64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0],
        'B' => [64, 64, 0, 128, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0],
        'D' => [64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0],
        'E' => [64, 64, 0, 128, 128, 0, 256, 256, 256, 256, 0, 512, 512, 512, 512, 0, 512, 512, 512, 512, 0],
        _ => throw new ArgumentException($"Unknown VGG configuration '{letter}' (VGG.cs); use A, B, D or E."),
    };

    /// <inheritdoc />
    public override string ToString() => $"{Layers.Count(l => l > 0)} conv layers{(BatchNorm ? " with BatchNorm" : "")}";
}

/// <summary>VGG with torchvision's names: features (flat sequence), avgpool (7×7), classifier (0 Linear, 1 ReLU, 2 Dropout, 3 Linear, 4 ReLU, 5 Dropout, 6 Linear head).</summary>
public sealed class VGG : ZooModel
{
    /// <summary>Builds the network with torchvision's initialisation.</summary>
    public VGG(VGGConfig config, ModelOptions options) : base(nameof(VGG), options.NumClasses, options.InChans)
    {
        Config = config;
        var features = new ZooSequential();
        int i = 0, inC = options.InChans;
        foreach (int v in config.Layers)
        {
            if (v == 0) { features.Append($"{i++}", nn.MaxPool2d(2, stride: 2)); continue; }
            features.Append($"{i++}", nn.Conv2d(inC, v, 3, padding: 1));
            if (config.BatchNorm) features.Append($"{i++}", nn.BatchNorm2d(v));
            features.Append($"{i++}", nn.ReLU(inplace: true));
            inC = v;
        }
        Add("features", features);
        Add("avgpool", nn.AdaptiveAvgPool2d([7, 7]));
        double p = options.DropRate ?? config.Dropout;
        Add("classifier", new ZooSequential(nn.Linear(512 * 7 * 7, 4096), nn.ReLU(inplace: true), nn.Dropout(p),
            nn.Linear(4096, 4096), nn.ReLU(inplace: true), nn.Dropout(p), CreateHead(options.NumClasses)));
        Layers.InitConvNet(this);
        VisionBlocks.InitLinearNormal(this, 0.01);
    }

    /// <summary>The configuration this network was built from.</summary>
    public VGGConfig Config { get; }

    /// <summary>Width of the classifier's second hidden layer, which the head consumes.</summary>
    public override int NumFeatures => 4096;

    /// <inheritdoc />
    public override string HeadPath => "classifier.6";

    /// <inheritdoc />
    public override string? StemConvPath => "features.0";

    /// <inheritdoc />
    public override Tensor ForwardFeatures(Tensor x) => Run("features", x);

    /// <summary>7×7 average pool, flatten, classifier; with <paramref name="preLogits"/> it stops before the last Linear (4096 values).</summary>
    public override Tensor ForwardHead(Tensor features, bool preLogits = false)
    {
        var pooled = Run("avgpool", features).flatten(1);
        return preLogits ? VisionBlocks.RunUntil(GetChild("classifier"), "6", pooled) : Run("classifier", pooled);
    }

    /// <inheritdoc />
    protected override nn.Module<Tensor, Tensor> CreateHead(int numClasses) =>
        ClassifierHead.Linear(4096, numClasses, fc => VisionBlocks.InitLinearNormal(fc, 0.01));

    /// <summary>Groups: stem (first conv block), one group per pooling stage of the features, the classifier's hidden layers, head.</summary>
    public override IReadOnlyList<ParameterGroup> ParameterGroups()
    {
        var groups = new List<(string, string[])>();
        var names = ((ZooModule)GetChild("features")).ChildNames;
        var current = new List<string>();
        int stage = 0;
        foreach (var n in names)
        {
            current.Add($"features.{n}");
            if (GetChild("features") is ZooModule f && f.GetChild(n) is TorchSharp.Modules.MaxPool2d)
            {
                groups.Add((stage == 0 ? "stem" : $"stage{stage}", current.ToArray()));
                current.Clear();
                stage++;
            }
        }
        if (current.Count > 0) groups.Add(($"stage{stage}", current.ToArray()));
        groups.Add(("classifier", ["classifier.0", "classifier.3"]));
        groups.Add(("head", ["classifier.6"]));
        return Layers.GroupsByPrefix(this, groups);
    }
}

/// <summary>Registers VGG 11–19 with and without BatchNorm, with torchvision's weight tags.</summary>
public static class VGGFamily
{
    /// <summary>Adds the VGG variants to <paramref name="catalog"/>.</summary>
    public static void Register(ModelCatalog catalog)
    {
        Add(catalog, "vgg11", 'A', false, 132_863_336, TV.Tag("imagenet1k_v1", "vgg11-8a719046.pth", 69.02, 88.628, 256, 224));
        Add(catalog, "vgg11_bn", 'A', true, 132_868_840, TV.Tag("imagenet1k_v1", "vgg11_bn-6002323d.pth", 70.37, 89.81, 256, 224));
        Add(catalog, "vgg13", 'B', false, 133_047_848, TV.Tag("imagenet1k_v1", "vgg13-19584684.pth", 69.928, 89.246, 256, 224));
        Add(catalog, "vgg13_bn", 'B', true, 133_053_736, TV.Tag("imagenet1k_v1", "vgg13_bn-abd245e5.pth", 71.586, 90.374, 256, 224));
        Add(catalog, "vgg16", 'D', false, 138_357_544, TV.Tag("imagenet1k_v1", "vgg16-397923af.pth", 71.592, 90.382, 256, 224),
            TV.Tag("imagenet1k_features", "vgg16_features-amdegroot-88682ab5.pth", 0, 0, 256, 224) with
            {
                NumClasses = 0, Labels = null, Metrics = null,
                Preprocessing = Preprocessing.ImageNetAt(256, 224) with { Mean = [0.48235f, 0.45882f, 0.40784f], Std = [1f / 255, 1f / 255, 1f / 255] },
                Description = "SSD's VGG16 feature weights (features only; the classifier is not trained), inputs in 0–255 minus the mean.",
            });
        Add(catalog, "vgg16_bn", 'D', true, 138_365_992, TV.Tag("imagenet1k_v1", "vgg16_bn-6c64b313.pth", 73.36, 91.516, 256, 224));
        Add(catalog, "vgg19", 'E', false, 143_667_240, TV.Tag("imagenet1k_v1", "vgg19-dcbb9e9d.pth", 72.376, 90.876, 256, 224));
        Add(catalog, "vgg19_bn", 'E', true, 143_678_248, TV.Tag("imagenet1k_v1", "vgg19_bn-c79401a0.pth", 74.218, 91.842, 256, 224));
    }

    private static void Add(ModelCatalog catalog, string name, char cfg, bool bn, long parameters, params WeightTag[] tags)
    {
        var config = new VGGConfig(VGGConfig.Cfg(cfg), bn);
        TV.Register(catalog, name, "vgg", config, o => new VGG(config, o), parameters, tags);
    }

    // Checkpoint remap: none needed; torchvision's checkpoints use these names.
}
