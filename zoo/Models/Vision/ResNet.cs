using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Models.Vision;

// ResNet, ResNeXt and Wide ResNet, with torchvision's parameter names (torchvision/models/resnet.py), so official
// state dicts load strictly. File order, as in every family: config, blocks, model, variants + weight tags, remap.

/// <summary>Configuration of a ResNet-family network.</summary>
/// <param name="Block"><c>basic</c> (two 3×3 convs) or <c>bottleneck</c> (1×1, 3×3, 1×1).</param>
/// <param name="Layers">Blocks per stage, e.g. [3, 4, 6, 3] for ResNet-50.</param>
/// <param name="Groups">Groups of the 3×3 convolution (ResNeXt cardinality).</param>
/// <param name="WidthPerGroup">Base width per group (64 for ResNet, 128 for Wide ResNet-50-2).</param>
/// <param name="StemWidth">Channels out of the stem convolution (64 in torchvision).</param>
public sealed record ResNetConfig(string Block, int[] Layers, int Groups = 1, int WidthPerGroup = 64, int StemWidth = 64)
{
    /// <summary>Channel expansion of the block: 1 for basic, 4 for bottleneck.</summary>
    public int Expansion => Block == "basic" ? 1 : 4;

    /// <inheritdoc />
    public override string ToString() => $"{Block} blocks [{string.Join(", ", Layers)}], groups {Groups}, width/group {WidthPerGroup}";
}

/// <summary>Two 3×3 convolutions with a residual connection (ResNet-18/34).</summary>
public sealed class BasicBlock : ZooModule
{
    /// <summary>Creates a block taking <paramref name="inplanes"/> channels to <paramref name="planes"/>.</summary>
    public BasicBlock(int inplanes, int planes, int stride, bool downsample) : base(nameof(BasicBlock))
    {
        Add("conv1", Layers.Conv3x3(inplanes, planes, stride));
        Add("bn1", nn.BatchNorm2d(planes));
        Add("relu", nn.ReLU(inplace: true));
        Add("conv2", Layers.Conv3x3(planes, planes, 1));
        Add("bn2", nn.BatchNorm2d(planes));
        if (downsample) Add("downsample", Layers.Downsample(inplanes, planes, stride));
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        var identity = RunIfPresent("downsample", x);
        var y = Run("relu", Run("bn1", Run("conv1", x)));
        y = Run("bn2", Run("conv2", y));
        return Run("relu", y.add_(identity));
    }
}

/// <summary>1×1 reduce, 3×3 (grouped), 1×1 expand, with a residual connection (ResNet-50 and up, ResNeXt).</summary>
public sealed class Bottleneck : ZooModule
{
    /// <summary>Creates a bottleneck block.</summary>
    public Bottleneck(int inplanes, int planes, int stride, bool downsample, int groups, int baseWidth) : base(nameof(Bottleneck))
    {
        int width = (int)(planes * (baseWidth / 64.0)) * groups;
        Add("conv1", Layers.Conv1x1(inplanes, width, 1));
        Add("bn1", nn.BatchNorm2d(width));
        Add("conv2", Layers.Conv3x3(width, width, stride, groups));
        Add("bn2", nn.BatchNorm2d(width));
        Add("conv3", Layers.Conv1x1(width, planes * 4, 1));
        Add("bn3", nn.BatchNorm2d(planes * 4));
        Add("relu", nn.ReLU(inplace: true));
        if (downsample) Add("downsample", Layers.Downsample(inplanes, planes * 4, stride));
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        var identity = RunIfPresent("downsample", x);
        var y = Run("relu", Run("bn1", Run("conv1", x)));
        y = Run("relu", Run("bn2", Run("conv2", y)));
        y = Run("bn3", Run("conv3", y));
        return Run("relu", y.add_(identity));
    }
}

/// <summary>A ResNet-family image classifier with torchvision's module names: conv1, bn1, relu, maxpool, layer1–4, avgpool, fc.</summary>
public sealed partial class ResNet : ZooModel
{
    private readonly int _numFeatures;

    /// <summary>Builds the network for <paramref name="config"/> with Kaiming initialisation, as torchvision does.</summary>
    public ResNet(ResNetConfig config, ModelOptions options) : base(nameof(ResNet), options.NumClasses, options.InChans)
    {
        Config = config;
        Add("conv1", nn.Conv2d(options.InChans, config.StemWidth, 7, stride: 2, padding: 3, bias: false));
        Add("bn1", nn.BatchNorm2d(config.StemWidth));
        Add("relu", nn.ReLU(inplace: true));
        Add("maxpool", nn.MaxPool2d(3, stride: 2, padding: 1));
        int inplanes = config.StemWidth;
        for (int stage = 0; stage < config.Layers.Length; stage++)
        {
            int planes = 64 << stage;
            int stride = stage == 0 ? 1 : 2;
            var blocks = new ZooSequential();
            for (int b = 0; b < config.Layers[stage]; b++)
            {
                bool down = b == 0 && (stride != 1 || inplanes != planes * config.Expansion);
                int s = b == 0 ? stride : 1;
                blocks.Append(b.ToString(System.Globalization.CultureInfo.InvariantCulture), config.Block == "basic"
                    ? new BasicBlock(inplanes, planes, s, down)
                    : new Bottleneck(inplanes, planes, s, down, config.Groups, config.WidthPerGroup));
                inplanes = planes * config.Expansion;
            }
            Add($"layer{stage + 1}", blocks);
        }
        _numFeatures = inplanes;
        Add("avgpool", nn.AdaptiveAvgPool2d(1));
        Add("fc", CreateHead(options.NumClasses));
        Layers.InitConvNet(this);
    }

    /// <summary>The configuration this network was built from.</summary>
    public ResNetConfig Config { get; }

    /// <inheritdoc />
    public override int NumFeatures => _numFeatures;

    /// <inheritdoc />
    public override string HeadPath => "fc";

    /// <inheritdoc />
    public override string? StemConvPath => "conv1";

    /// <inheritdoc />
    public override Tensor ForwardFeatures(Tensor x)
    {
        x = Run("maxpool", Run("relu", Run("bn1", Run("conv1", x))));
        for (int stage = 1; stage <= Config.Layers.Length; stage++) x = Run($"layer{stage}", x);
        return x;
    }

    /// <inheritdoc />
    public override Tensor ForwardHead(Tensor features, bool preLogits = false)
    {
        var pooled = Run("avgpool", features).flatten(1);
        return preLogits ? pooled : Run("fc", pooled);
    }

    /// <inheritdoc />
    protected override nn.Module<Tensor, Tensor> CreateHead(int numClasses) =>
        ClassifierHead.Linear(_numFeatures, numClasses);

    /// <inheritdoc />
    public override IReadOnlyList<ParameterGroup> ParameterGroups() =>
        Layers.GroupsByPrefix(this, [("stem", ["conv1", "bn1"]), .. Enumerable.Range(1, Config.Layers.Length).Select(i => ($"layer{i}", new[] { $"layer{i}" })), ("head", ["fc"])]);
}

/// <summary>Registers the ResNet family: variants, weight tags with torchvision's URLs, preprocessing and metrics.</summary>
public static class ResNetFamily
{
    private const string Torchvision = "BSD-3-Clause (torchvision)";

    /// <summary>NuGet package with the CNTK 2.6 ResNet-18 export (content only, restored with the solution).</summary>
    internal const string CntkPackage = "Microsoft.ML.DnnImageFeaturizer.ResNet18";

    /// <summary>Version of <see cref="CntkPackage"/> (also in zoo/ModelZoo.csproj's PackageDownload).</summary>
    internal const string CntkPackageVersion = "0.23.1";

    /// <summary>Adds every ResNet variant to <paramref name="catalog"/>.</summary>
    public static void Register(ModelCatalog catalog)
    {
        Add(catalog, "resnet18", new("basic", [2, 2, 2, 2]), 11_689_512,
            V1("resnet18-f37072fd.pth", 69.758, 89.078));
        Add(catalog, "resnet34", new("basic", [3, 4, 6, 3]), 21_797_672,
            V1("resnet34-b627a593.pth", 73.314, 91.420));
        Add(catalog, "resnet50", new("bottleneck", [3, 4, 6, 3]), 25_557_032,
            V1("resnet50-0676ba61.pth", 76.130, 92.862), V2("resnet50-11ad3fa6.pth", 80.858, 95.434));
        Add(catalog, "resnet101", new("bottleneck", [3, 4, 23, 3]), 44_549_160,
            V1("resnet101-63fe2227.pth", 77.374, 93.546), V2("resnet101-cd907fc2.pth", 81.886, 95.780));
        Add(catalog, "resnet152", new("bottleneck", [3, 8, 36, 3]), 60_192_808,
            V1("resnet152-394f9c45.pth", 78.312, 94.046), V2("resnet152-f82ba261.pth", 82.284, 96.002));
        Add(catalog, "resnext50_32x4d", new("bottleneck", [3, 4, 6, 3], Groups: 32, WidthPerGroup: 4), 25_028_904,
            V1("resnext50_32x4d-7cdf4587.pth", 77.618, 93.698), V2("resnext50_32x4d-1a0047aa.pth", 81.198, 95.340));
        Add(catalog, "resnext101_32x8d", new("bottleneck", [3, 4, 23, 3], Groups: 32, WidthPerGroup: 8), 88_791_336,
            V1("resnext101_32x8d-8ba56ff5.pth", 79.312, 94.526), V2("resnext101_32x8d-110c445d.pth", 82.834, 96.228));
        Add(catalog, "resnext101_64x4d", new("bottleneck", [3, 4, 23, 3], Groups: 64, WidthPerGroup: 4), 83_455_272,
            V1("resnext101_64x4d-173b62eb.pth", 83.246, 96.454, v2Preprocessing: true) with { Tag = "imagenet1k_v1" });
        Add(catalog, "wide_resnet50_2", new("bottleneck", [3, 4, 6, 3], WidthPerGroup: 128), 68_883_240,
            V1("wide_resnet50_2-95faca4d.pth", 78.468, 94.086), V2("wide_resnet50_2-9ba9bcbe.pth", 81.602, 95.758));
        Add(catalog, "wide_resnet101_2", new("bottleneck", [3, 4, 23, 3], WidthPerGroup: 128), 126_886_696,
            V1("wide_resnet101_2-32ee1156.pth", 78.848, 94.284), V2("wide_resnet101_2-d733dc28.pth", 82.510, 96.020));

        // ImageNet ResNet-18 trained with CNTK and exported to ONNX for ML.NET's DnnImageFeaturizer: its last stage has
        // three basic blocks (22 convolutions), so it is its own variant. Backbone only (no classifier). Works offline.
        var cntk = new ResNetConfig("basic", [2, 2, 2, 3]);
        catalog.Register(new ModelEntry("resnet18-cntk", "resnet", ModelTask.Vision, cntk, o => new ResNet(cntk, o), 16_410_152, [3, 224, 224],
            [CntkTag()], Description: "ResNet-18 variant with stages [2, 2, 2, 3] (CNTK 2.6 ImageNet backbone from ML.NET's DnnImageFeaturizer; offline weights)."));
    }

    private static WeightTag CntkTag() => new(
        "imagenet1k_cntk",
        [new WeightSource(WeightSourceKind.NuGetPackage, CntkPackage, "tools/DnnImageModels/ResNet18Onnx/ResNet18.onnx", CntkPackageVersion)],
        WeightFormat.Onnx, "MIT",
        // ResNetPrepOnnx/ResNetPreprocess.onnx: RGB → BGR, pixel values 0–255, minus a 224×224 mean image whose
        // per-channel means are these (the image varies by a few units across the frame); no scaling. ML.NET resizes
        // straight to 224×224 before it.
        new Preprocessing(0, 224, Interpolation.Bilinear, [103.0626f, 115.9029f, 123.1516f], [1f, 1f, 1f], ChannelOrder.Bgr, 255f),
        NumClasses: 0,
        Sha256: "e2552f19db2dfdb01b3669537b6a0f1b44da38d18279535492ed5dfc2ef1ff8f",
        FileName: "resnet18-cntk-ResNet18.onnx",
        Description: "ImageNet backbone (no classifier) from NuGet Microsoft.ML.DnnImageFeaturizer.ResNet18 0.23.1, imported from ONNX.");

    private static void Add(ModelCatalog catalog, string name, ResNetConfig config, long parameters, params WeightTag[] tags) =>
        catalog.Register(new ModelEntry(name, "resnet", ModelTask.Vision, config, o => new ResNet(config, o), parameters, [3, 224, 224], tags,
            Description: $"{name} ({config}) as in torchvision."));

    private static WeightTag V1(string file, double top1, double top5, bool v2Preprocessing = false) =>
        Tag("imagenet1k_v1", file, top1, top5, v2Preprocessing ? Preprocessing.ImageNetAt(232, 224) : Preprocessing.ImageNet,
            "Original torchvision weights (simple training recipe).");

    private static WeightTag V2(string file, double top1, double top5) =>
        Tag("imagenet1k_v2", file, top1, top5, Preprocessing.ImageNetAt(232, 224), "torchvision's improved training recipe.");

    private static WeightTag Tag(string tag, string file, double top1, double top5, Preprocessing pre, string description) =>
        new(tag, [WeightSource.FromUrl("https://download.pytorch.org/models/" + file)], WeightFormat.Pth, Torchvision, pre, 1000,
            HashPrefix: file.Split('-')[^1].Split('.')[0], FileName: file, Labels: ImageNetLabels.All,
            Metrics: new Dictionary<string, double> { ["imagenet-1k/acc@1"] = top1, ["imagenet-1k/acc@5"] = top5 }, Description: description);
}
