using TorchSharp;
using ModelZoo.Models;
using static TorchSharp.torch;
using TV = ModelZoo.Models.TorchvisionWeights;

namespace ModelZoo.Models.Vision;

// GoogLeNet (Inception v1) with torchvision's parameter names (torchvision/models/googlenet.py), without the
// auxiliary classifiers (torchvision drops them after loading its weights). File order, as in every family: config,
// blocks, model, variants + weight tags, checkpoint remap.

/// <summary>Configuration of GoogLeNet.</summary>
/// <param name="TransformInput">Re-normalise ImageNet-normalised inputs to the [-1, 1] scaling the ported weights expect (torchvision sets it with its weights).</param>
/// <param name="Dropout">Dropout before the classifier.</param>
public sealed record GoogLeNetConfig(bool TransformInput = true, double Dropout = 0.2);

/// <summary>Conv (no bias), BatchNorm (eps 1e-3), ReLU: children conv, bn.</summary>
public sealed class BasicConv2d : ZooModule
{
    /// <summary>Creates the block.</summary>
    public BasicConv2d(int inC, int outC, int kernel, int stride = 1, int padding = 0) : base(nameof(BasicConv2d))
    {
        Add("conv", nn.Conv2d(inC, outC, kernel, stride: stride, padding: padding, bias: false));
        Add("bn", nn.BatchNorm2d(outC, eps: 0.001));
    }

    /// <summary>Creates the block with separate kernel and padding per axis (Inception v3's 1×7 / 7×1 convolutions).</summary>
    public BasicConv2d(int inC, int outC, (long, long) kernel, (long, long) padding) : base(nameof(BasicConv2d))
    {
        Add("conv", nn.Conv2d(inC, outC, kernel, padding: padding, bias: false));
        Add("bn", nn.BatchNorm2d(outC, eps: 0.001));
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x) => nn.functional.relu(Run("bn", Run("conv", x)));
}

/// <summary>GoogLeNet's Inception block: four branches (1×1; 1×1→3×3; 1×1→3×3; pool→1×1) concatenated.</summary>
public sealed class InceptionBlock : ZooModule
{
    /// <summary>Creates the block.</summary>
    public InceptionBlock(int inC, int ch1x1, int ch3x3red, int ch3x3, int ch5x5red, int ch5x5, int poolProj) : base("Inception")
    {
        Add("branch1", new BasicConv2d(inC, ch1x1, 1));
        Add("branch2", new ZooSequential(new BasicConv2d(inC, ch3x3red, 1), new BasicConv2d(ch3x3red, ch3x3, 3, padding: 1)));
        Add("branch3", new ZooSequential(new BasicConv2d(inC, ch5x5red, 1), new BasicConv2d(ch5x5red, ch5x5, 3, padding: 1)));
        Add("branch4", new ZooSequential(nn.MaxPool2d(3, stride: 1, padding: 1, ceil_mode: true), new BasicConv2d(inC, poolProj, 1)));
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x) => cat([Run("branch1", x), Run("branch2", x), Run("branch3", x), Run("branch4", x)], 1);
}

/// <summary>
/// What GoogLeNet and Inception v3 share (torchvision's names): a trunk of children run in a fixed order after the
/// optional input transform, and the classifier end avgpool → dropout → fc. The official checkpoints also hold
/// auxiliary classifiers, which these models do not build (each family's remap leaves them out).
/// </summary>
public abstract class InceptionNet : ZooModel
{
    private readonly string[] _trunk;

    /// <summary>Creates the model; <paramref name="trunk"/> names the children <see cref="ForwardFeatures"/> runs, in order.</summary>
    protected InceptionNet(string name, ModelOptions options, string[] trunk) : base(name, options.NumClasses, options.InChans) => _trunk = trunk;

    /// <summary>Adds the classifier end after the trunk: avgpool, dropout, fc.</summary>
    protected void AddClassifier(double dropout, int numClasses)
    {
        Add("avgpool", nn.AdaptiveAvgPool2d(1));
        Add("dropout", nn.Dropout(dropout));
        Add("fc", CreateHead(numClasses));
    }

    /// <summary>Whether RGB inputs are re-normalised by <see cref="TransformImageNetInput"/> first.</summary>
    protected abstract bool TransformInput { get; }

    /// <inheritdoc />
    public override string HeadPath => "fc";

    /// <inheritdoc />
    public override Tensor ForwardFeatures(Tensor x)
    {
        if (TransformInput && x.shape[1] == 3) x = TransformImageNetInput(x);
        foreach (var name in _trunk) x = Run(name, x);
        return x;
    }

    /// <inheritdoc />
    public override Tensor ForwardHead(Tensor features, bool preLogits = false)
    {
        var pooled = Run("avgpool", features).flatten(1);
        return preLogits ? pooled : Run("fc", Run("dropout", pooled));
    }

    /// <summary>Maps ImageNet-normalised RGB to the (x − 0.5)/0.5 scaling of the ported Inception weights (torchvision's <c>transform_input</c>).</summary>
    internal static Tensor TransformImageNetInput(Tensor x)
    {
        var c0 = x[.., 0].unsqueeze(1) * (0.229 / 0.5) + (0.485 - 0.5) / 0.5;
        var c1 = x[.., 1].unsqueeze(1) * (0.224 / 0.5) + (0.456 - 0.5) / 0.5;
        var c2 = x[.., 2].unsqueeze(1) * (0.225 / 0.5) + (0.406 - 0.5) / 0.5;
        return cat([c0, c1, c2], 1);
    }
}

/// <summary>GoogLeNet with torchvision's names (conv1…inception5b, avgpool, dropout, fc), without aux1/aux2.</summary>
public sealed class GoogLeNet : InceptionNet, ICheckpointAdapter
{
    private static readonly string[] Order =
        ["conv1", "maxpool1", "conv2", "conv3", "maxpool2", "inception3a", "inception3b", "maxpool3", "inception4a", "inception4b",
         "inception4c", "inception4d", "inception4e", "maxpool4", "inception5a", "inception5b"];

    /// <summary>Builds the network with torchvision's initialisation (truncated normal σ 0.01).</summary>
    public GoogLeNet(GoogLeNetConfig config, ModelOptions options) : base(nameof(GoogLeNet), options, Order)
    {
        Config = config;
        Add("conv1", new BasicConv2d(options.InChans, 64, 7, stride: 2, padding: 3));
        Add("maxpool1", nn.MaxPool2d(3, stride: 2, ceil_mode: true));
        Add("conv2", new BasicConv2d(64, 64, 1));
        Add("conv3", new BasicConv2d(64, 192, 3, padding: 1));
        Add("maxpool2", nn.MaxPool2d(3, stride: 2, ceil_mode: true));
        Add("inception3a", new InceptionBlock(192, 64, 96, 128, 16, 32, 32));
        Add("inception3b", new InceptionBlock(256, 128, 128, 192, 32, 96, 64));
        Add("maxpool3", nn.MaxPool2d(3, stride: 2, ceil_mode: true));
        Add("inception4a", new InceptionBlock(480, 192, 96, 208, 16, 48, 64));
        Add("inception4b", new InceptionBlock(512, 160, 112, 224, 24, 64, 64));
        Add("inception4c", new InceptionBlock(512, 128, 128, 256, 24, 64, 64));
        Add("inception4d", new InceptionBlock(512, 112, 144, 288, 32, 64, 64));
        Add("inception4e", new InceptionBlock(528, 256, 160, 320, 32, 128, 128));
        Add("maxpool4", nn.MaxPool2d(2, stride: 2, ceil_mode: true));
        Add("inception5a", new InceptionBlock(832, 256, 160, 320, 32, 128, 128));
        Add("inception5b", new InceptionBlock(832, 384, 192, 384, 48, 128, 128));
        AddClassifier(options.DropRate ?? config.Dropout, options.NumClasses);
        VisionBlocks.InitTruncNormal(this, 0.01);
    }

    /// <summary>The configuration this network was built from.</summary>
    public GoogLeNetConfig Config { get; }

    /// <inheritdoc />
    public override int NumFeatures => 1024;

    /// <inheritdoc />
    public override string? StemConvPath => "conv1.conv";

    /// <inheritdoc />
    protected override bool TransformInput => Config.TransformInput;

    /// <inheritdoc />
    protected override nn.Module<Tensor, Tensor> CreateHead(int numClasses) =>
        ClassifierHead.Linear(1024, numClasses, fc => VisionBlocks.InitTruncNormal(fc, 0.01));

    /// <inheritdoc />
    public override IReadOnlyList<ParameterGroup> ParameterGroups() =>
        Layers.GroupsByPrefix(this, [("stem", ["conv1", "conv2", "conv3"]), ("inception3", ["inception3*"]), ("inception4", ["inception4*"]),
            ("inception5", ["inception5*"]), ("head", ["fc"])]);

    /// <summary>Drops the auxiliary classifiers' weights (aux1.*, aux2.*) of the official checkpoint, as torchvision does after loading.</summary>
    public Dictionary<string, Tensor> AdaptCheckpoint(Dictionary<string, Tensor> stateDict) => GoogLeNetFamily.Remap(stateDict);
}

/// <summary>Registers GoogLeNet with torchvision's weight tag.</summary>
public static class GoogLeNetFamily
{
    /// <summary>Adds GoogLeNet to <paramref name="catalog"/>.</summary>
    public static void Register(ModelCatalog catalog)
    {
        var config = new GoogLeNetConfig();
        TV.Register(catalog, "googlenet", "googlenet", config, o => new GoogLeNet(config, o), 6_624_904,
            [TV.Tag("imagenet1k_v1", "googlenet-1378be20.pth", 69.778, 89.53, 256, 224)]);
    }

    /// <summary>Checkpoint remap: the official file also holds the auxiliary classifiers (aux1, aux2), which this model does not have.</summary>
    public static Dictionary<string, Tensor> Remap(Dictionary<string, Tensor> stateDict) => CheckpointKeys.Without(stateDict, "aux1.", "aux2.");
}
