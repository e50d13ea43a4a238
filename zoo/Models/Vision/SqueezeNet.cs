using TorchSharp;
using ModelZoo.Models;
using static TorchSharp.torch;
using TV = ModelZoo.Models.TorchvisionWeights;

namespace ModelZoo.Models.Vision;

// SqueezeNet 1.0 / 1.1 with torchvision's parameter names (torchvision/models/squeezenet.py). File order, as in
// every family: config, blocks, model, variants + weight tags, checkpoint remap.

/// <summary>Configuration of a SqueezeNet.</summary>
/// <param name="Version"><c>1_0</c> or <c>1_1</c>.</param>
/// <param name="Dropout">Dropout before the final convolution.</param>
public sealed record SqueezeNetConfig(string Version, double Dropout = 0.5);

/// <summary>Fire module: squeeze 1×1, then parallel expand 1×1 and 3×3, concatenated.</summary>
public sealed class Fire : ZooModule
{
    /// <summary>Creates the module.</summary>
    public Fire(int inplanes, int squeeze, int expand1x1, int expand3x3) : base(nameof(Fire))
    {
        Add("squeeze", nn.Conv2d(inplanes, squeeze, 1));
        Add("squeeze_activation", nn.ReLU(inplace: true));
        Add("expand1x1", nn.Conv2d(squeeze, expand1x1, 1));
        Add("expand1x1_activation", nn.ReLU(inplace: true));
        Add("expand3x3", nn.Conv2d(squeeze, expand3x3, 3, padding: 1));
        Add("expand3x3_activation", nn.ReLU(inplace: true));
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        var s = Run("squeeze_activation", Run("squeeze", x));
        return cat([Run("expand1x1_activation", Run("expand1x1", s)), Run("expand3x3_activation", Run("expand3x3", s))], 1);
    }
}

/// <summary>SqueezeNet with torchvision's names: features, classifier (0 Dropout, 1 final_conv = head, 2 ReLU, 3 pool).</summary>
public sealed class SqueezeNet : ZooModel
{
    /// <summary>Builds the network with torchvision's initialisation.</summary>
    public SqueezeNet(SqueezeNetConfig config, ModelOptions options) : base(nameof(SqueezeNet), options.NumClasses, options.InChans)
    {
        Config = config;
        nn.Module<Tensor, Tensor> Pool() => nn.MaxPool2d(3, stride: 2, ceil_mode: true);
        nn.Module<Tensor, Tensor>[] layers = config.Version switch
        {
            "1_0" => [nn.Conv2d(options.InChans, 96, 7, stride: 2), nn.ReLU(inplace: true), Pool(), new Fire(96, 16, 64, 64), new Fire(128, 16, 64, 64),
                new Fire(128, 32, 128, 128), Pool(), new Fire(256, 32, 128, 128), new Fire(256, 48, 192, 192), new Fire(384, 48, 192, 192),
                new Fire(384, 64, 256, 256), Pool(), new Fire(512, 64, 256, 256)],
            "1_1" => [nn.Conv2d(options.InChans, 64, 3, stride: 2), nn.ReLU(inplace: true), Pool(), new Fire(64, 16, 64, 64), new Fire(128, 16, 64, 64),
                Pool(), new Fire(128, 32, 128, 128), new Fire(256, 32, 128, 128), Pool(), new Fire(256, 48, 192, 192), new Fire(384, 48, 192, 192),
                new Fire(384, 64, 256, 256), new Fire(512, 64, 256, 256)],
            _ => throw new ArgumentException($"Unknown SqueezeNet version '{config.Version}' (SqueezeNet.cs); use 1_0 or 1_1."),
        };
        Add("features", new ZooSequential(layers));
        Add("classifier", new ZooSequential(nn.Dropout(options.DropRate ?? config.Dropout), CreateHead(options.NumClasses), nn.ReLU(inplace: true), nn.AdaptiveAvgPool2d(1)));
        using var noGrad = no_grad();
        foreach (var (name, m) in named_modules())
            if (m is TorchSharp.Modules.Conv2d conv && name != "classifier.1")
            {
                nn.init.kaiming_uniform_(conv.weight);
                nn.init.zeros_(conv.bias!);
            }
    }

    /// <summary>The configuration this network was built from.</summary>
    public SqueezeNetConfig Config { get; }

    /// <inheritdoc />
    public override int NumFeatures => 512;

    /// <summary>The head is the final 1×1 convolution (<c>classifier.1</c>), followed by ReLU and global pooling.</summary>
    public override string HeadPath => "classifier.1";

    /// <inheritdoc />
    public override string? StemConvPath => "features.0";

    /// <inheritdoc />
    public override Tensor ForwardFeatures(Tensor x) => Run("features", x);

    /// <summary>Classifier (dropout, final conv, ReLU, pool) then flatten; with <paramref name="preLogits"/> the pooled 512 features.</summary>
    public override Tensor ForwardHead(Tensor features, bool preLogits = false) => preLogits
        ? ClassifierHead.GlobalAvgPool(features)
        : Run("classifier", features).flatten(1);

    /// <summary>A 1×1 convolution to <paramref name="numClasses"/> channels (normal σ 0.01), or identity for 0.</summary>
    protected override nn.Module<Tensor, Tensor> CreateHead(int numClasses)
    {
        if (numClasses == 0) return nn.Identity();
        var conv = nn.Conv2d(512, numClasses, 1);
        using var noGrad = no_grad();
        nn.init.normal_(conv.weight, 0, 0.01);
        nn.init.zeros_(conv.bias!);
        return conv;
    }

    /// <summary>Groups: stem (first conv), then the Fire modules between poolings, head (final conv).</summary>
    public override IReadOnlyList<ParameterGroup> ParameterGroups()
    {
        var names = ((ZooModule)GetChild("features")).ChildNames;
        return Layers.GroupsByPrefix(this, [("stem", ["features.0"]), .. names.Skip(1).Select(n => ($"features.{n}", new[] { $"features.{n}" })), ("head", ["classifier"])]);
    }
}

/// <summary>Registers SqueezeNet 1.0 and 1.1 with torchvision's weight tags.</summary>
public static class SqueezeNetFamily
{
    /// <summary>Adds the SqueezeNet variants to <paramref name="catalog"/>.</summary>
    public static void Register(ModelCatalog catalog)
    {
        Add(catalog, "squeezenet1_0", new("1_0"), 1_248_424, TV.Tag("imagenet1k_v1", "squeezenet1_0-b66bff10.pth", 58.092, 80.42, 256, 224));
        Add(catalog, "squeezenet1_1", new("1_1"), 1_235_496, TV.Tag("imagenet1k_v1", "squeezenet1_1-b8a52dc0.pth", 58.178, 80.624, 256, 224));
    }

    private static void Add(ModelCatalog catalog, string name, SqueezeNetConfig config, long parameters, params WeightTag[] tags) =>
        TV.Register(catalog, name, "squeezenet", config, o => new SqueezeNet(config, o), parameters, tags);

    // Checkpoint remap: none needed; torchvision's checkpoints use these names.
}
