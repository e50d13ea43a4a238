using TorchSharp;
using ModelZoo.Models;
using static TorchSharp.torch;
using TV = ModelZoo.Models.TorchvisionWeights;

namespace ModelZoo.Models.Vision;

// MNASNet 0.5/0.75/1.0/1.3 (B1) with torchvision's parameter names (torchvision/models/mnasnet.py). File order, as
// in every family: config, blocks, model, variants + weight tags, checkpoint remap.

/// <summary>Configuration of an MNASNet.</summary>
/// <param name="Alpha">Depth (width) multiplier.</param>
/// <param name="Dropout">Dropout before the classifier.</param>
public sealed record MNASNetConfig(double Alpha, double Dropout = 0.2)
{
    /// <summary>Channel widths for <see cref="Alpha"/> (torchvision's <c>_get_depths</c>).</summary>
    public int[] Depths() => new[] { 32, 16, 24, 40, 80, 96, 192, 320 }.Select(d => RoundToMultiple(d * Alpha, 8)).ToArray();

    private static int RoundToMultiple(double val, int divisor, double roundUpBias = 0.9)
    {
        int v = Math.Max(divisor, (int)(val + divisor / 2.0) / divisor * divisor);
        return v >= roundUpBias * val ? v : v + divisor;
    }
}

/// <summary>MNASNet inverted residual (child <c>layers</c>: expand, depthwise, project with BatchNorms).</summary>
public sealed class MNASNetBlock : ZooModule
{
    private readonly bool _residual;

    /// <summary>Creates a block.</summary>
    public MNASNetBlock(int inCh, int outCh, int kernel, int stride, int expansion, double bnMomentum) : base("_InvertedResidual")
    {
        int mid = inCh * expansion;
        _residual = inCh == outCh && stride == 1;
        Add("layers", new ZooSequential(
            nn.Conv2d(inCh, mid, 1, bias: false), nn.BatchNorm2d(mid, momentum: bnMomentum), nn.ReLU(inplace: true),
            nn.Conv2d(mid, mid, kernel, stride: stride, padding: kernel / 2, groups: mid, bias: false), nn.BatchNorm2d(mid, momentum: bnMomentum), nn.ReLU(inplace: true),
            nn.Conv2d(mid, outCh, 1, bias: false), nn.BatchNorm2d(outCh, momentum: bnMomentum)));
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x) => _residual ? Run("layers", x) + x : Run("layers", x);
}

/// <summary>MNASNet with torchvision's names: layers (flat: stem convs 0–7, stacks 8–13, last conv 14–16), classifier (0 Dropout, 1 Linear).</summary>
public sealed class MNASNet : ZooModel, ICheckpointAdapter
{
    private const double BnMomentum = 1 - 0.9997;

    /// <summary>Builds the network with torchvision's initialisation.</summary>
    public MNASNet(MNASNetConfig config, ModelOptions options) : base(nameof(MNASNet), options.NumClasses, options.InChans)
    {
        Config = config;
        var d = config.Depths();
        static ZooSequential Stack(int inCh, int outCh, int k, int s, int e, int repeats)
        {
            var seq = new ZooSequential();
            seq.Append("0", new MNASNetBlock(inCh, outCh, k, s, e, BnMomentum));
            for (int i = 1; i < repeats; i++) seq.Append($"{i}", new MNASNetBlock(outCh, outCh, k, 1, e, BnMomentum));
            return seq;
        }
        Add("layers", new ZooSequential(
            nn.Conv2d(options.InChans, d[0], 3, stride: 2, padding: 1, bias: false), nn.BatchNorm2d(d[0], momentum: BnMomentum), nn.ReLU(inplace: true),
            nn.Conv2d(d[0], d[0], 3, padding: 1, groups: d[0], bias: false), nn.BatchNorm2d(d[0], momentum: BnMomentum), nn.ReLU(inplace: true),
            nn.Conv2d(d[0], d[1], 1, bias: false), nn.BatchNorm2d(d[1], momentum: BnMomentum),
            Stack(d[1], d[2], 3, 2, 3, 3), Stack(d[2], d[3], 5, 2, 3, 3), Stack(d[3], d[4], 5, 2, 6, 3),
            Stack(d[4], d[5], 3, 1, 6, 2), Stack(d[5], d[6], 5, 2, 6, 4), Stack(d[6], d[7], 3, 1, 6, 1),
            nn.Conv2d(d[7], 1280, 1, bias: false), nn.BatchNorm2d(1280, momentum: BnMomentum), nn.ReLU(inplace: true)));
        Add("classifier", new ZooSequential(nn.Dropout(options.DropRate ?? config.Dropout), CreateHead(options.NumClasses)));
        Layers.InitConvNet(this);
    }

    /// <summary>The configuration this network was built from.</summary>
    public MNASNetConfig Config { get; }

    /// <inheritdoc />
    public override int NumFeatures => 1280;

    /// <inheritdoc />
    public override string HeadPath => "classifier.1";

    /// <inheritdoc />
    public override string? StemConvPath => "layers.0";

    /// <inheritdoc />
    public override Tensor ForwardFeatures(Tensor x) => Run("layers", x);

    /// <inheritdoc />
    public override Tensor ForwardHead(Tensor features, bool preLogits = false)
    {
        var pooled = features.mean([2, 3]);
        return preLogits ? pooled : Run("classifier", pooled);
    }

    /// <inheritdoc />
    protected override nn.Module<Tensor, Tensor> CreateHead(int numClasses) =>
        ClassifierHead.Linear(1280, numClasses, fc =>
        {
            nn.init.kaiming_uniform_(fc.weight, mode: nn.init.FanInOut.FanOut, nonlinearity: nn.init.NonlinearityType.Sigmoid);
            nn.init.zeros_(fc.bias!);
        });

    /// <summary>
    /// torchvision's "version 1" checkpoints (the official mnasnet0_5 file) have a fixed 32/16-channel stem whatever
    /// alpha is; when the state dict has that stem and this model's differs, layers 0–8 are rebuilt the v1 way, as
    /// torchvision does when it loads such a file.
    /// </summary>
    public Dictionary<string, Tensor> AdaptCheckpoint(Dictionary<string, Tensor> stateDict)
    {
        var d = Config.Depths();
        if (stateDict.TryGetValue("layers.0.weight", out var w) && w.shape[0] == 32 && d[0] != 32)
        {
            var layers = (ZooSequential)GetChild("layers");
            nn.Module<Tensor, Tensor>[] stem =
            [
                nn.Conv2d(InChans, 32, 3, stride: 2, padding: 1, bias: false), nn.BatchNorm2d(32, momentum: BnMomentum), nn.ReLU(inplace: true),
                nn.Conv2d(32, 32, 3, padding: 1, groups: 32, bias: false), nn.BatchNorm2d(32, momentum: BnMomentum), nn.ReLU(inplace: true),
                nn.Conv2d(32, 16, 1, bias: false), nn.BatchNorm2d(16, momentum: BnMomentum),
            ];
            var device = parameters().First().device;
            for (int i = 0; i < stem.Length; i++) layers.SetChild($"{i}", stem[i].to(device));
            var stack = new ZooSequential();
            stack.Append("0", new MNASNetBlock(16, d[2], 3, 2, 3, BnMomentum));
            for (int i = 1; i < 3; i++) stack.Append($"{i}", new MNASNetBlock(d[2], d[2], 3, 1, 3, BnMomentum));
            layers.SetChild("8", stack.to(device));
        }
        return stateDict;
    }

    /// <summary>Groups: stem (layers 0–7), each stack (layers 8–13), last conv (14–15), head.</summary>
    public override IReadOnlyList<ParameterGroup> ParameterGroups() =>
        Layers.GroupsByPrefix(this, [("stem", ["layers.0", "layers.1", "layers.3", "layers.4", "layers.6", "layers.7"]),
            .. Enumerable.Range(8, 6).Select(i => ($"stack{i - 7}", new[] { $"layers.{i}" })), ("last_conv", ["layers.14", "layers.15"]), ("head", ["classifier"])]);
}

/// <summary>Registers MNASNet with torchvision's weight tags.</summary>
public static class MNASNetFamily
{
    /// <summary>Adds the MNASNet variants to <paramref name="catalog"/>.</summary>
    public static void Register(ModelCatalog catalog)
    {
        Add(catalog, "mnasnet0_5", 0.5, 2_218_512, TV.Tag("imagenet1k_v1", "mnasnet0.5_top1_67.823-3ffadce67e.pth", 67.734, 87.49, 256, 224));
        Add(catalog, "mnasnet0_75", 0.75, 3_170_208, TV.Tag("imagenet1k_v1", "mnasnet0_75-7090bc5f.pth", 71.18, 90.496, 232, 224));
        Add(catalog, "mnasnet1_0", 1.0, 4_383_312, TV.Tag("imagenet1k_v1", "mnasnet1.0_top1_73.512-f206786ef8.pth", 73.456, 91.51, 256, 224));
        Add(catalog, "mnasnet1_3", 1.3, 6_282_256, TV.Tag("imagenet1k_v1", "mnasnet1_3-a4c69d6f.pth", 76.506, 93.522, 232, 224));
    }

    private static void Add(ModelCatalog catalog, string name, double alpha, long parameters, params WeightTag[] tags)
    {
        var config = new MNASNetConfig(alpha);
        TV.Register(catalog, name, "mnasnet", config, o => new MNASNet(config, o), parameters, tags);
    }

    // Checkpoint remap: names need none; the v1-stem adaptation is MNASNet.AdaptCheckpoint.
}
