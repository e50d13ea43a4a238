using TorchSharp;
using ModelZoo.Models;
using static TorchSharp.torch;
using TV = ModelZoo.Models.TorchvisionWeights;

namespace ModelZoo.Models.Vision;

// Inception v3 with torchvision's parameter names (torchvision/models/inception.py), without the auxiliary
// classifier (torchvision drops it after loading its weights). File order, as in every family: config, blocks,
// model, variants + weight tags, checkpoint remap. BasicConv2d and the InceptionNet base (trunk order, input transform,
// avgpool → dropout → fc) are shared with GoogLeNet (GoogLeNet.cs).

/// <summary>Configuration of Inception v3.</summary>
/// <param name="TransformInput">Re-normalise ImageNet-normalised inputs to the [-1, 1] scaling the ported weights expect.</param>
/// <param name="Dropout">Dropout before the classifier.</param>
public sealed record InceptionV3Config(bool TransformInput = true, double Dropout = 0.5);

/// <summary>Branches of an Inception v3 block, built from named <see cref="BasicConv2d"/> layers; subclasses wire them.</summary>
public abstract class InceptionV3Block : ZooModule
{
    /// <summary>Creates the block.</summary>
    protected InceptionV3Block(string name) : base(name) { }

    /// <summary>Adds a k×k BasicConv2d.</summary>
    protected void Conv(string name, int inC, int outC, int k, int stride = 1, int padding = 0) => Add(name, new BasicConv2d(inC, outC, k, stride, padding));

    /// <summary>Adds a kh×kw BasicConv2d with padding (ph, pw).</summary>
    protected void Conv(string name, int inC, int outC, (long, long) k, (long, long) padding) => Add(name, new BasicConv2d(inC, outC, k, padding));

    /// <summary>Runs the named layers in order.</summary>
    protected Tensor Chain(Tensor x, params string[] names)
    {
        foreach (var n in names) x = Run(n, x);
        return x;
    }

    /// <summary>3×3 average pool, stride 1, padding 1 (padding counted, as F.avg_pool2d's default).</summary>
    protected static Tensor AvgPool3(Tensor x) => nn.functional.avg_pool2d(x, [3, 3], [1, 1], [1, 1]);

    /// <summary>3×3 max pool, stride 2.</summary>
    protected static Tensor MaxPool3s2(Tensor x) => nn.functional.max_pool2d(x, [3, 3], [2, 2]);
}

/// <summary>InceptionA (Mixed_5b–5d).</summary>
public sealed class InceptionA : InceptionV3Block
{
    /// <summary>Creates the block.</summary>
    public InceptionA(int inC, int poolFeatures) : base(nameof(InceptionA))
    {
        Conv("branch1x1", inC, 64, 1);
        Conv("branch5x5_1", inC, 48, 1); Conv("branch5x5_2", 48, 64, 5, padding: 2);
        Conv("branch3x3dbl_1", inC, 64, 1); Conv("branch3x3dbl_2", 64, 96, 3, padding: 1); Conv("branch3x3dbl_3", 96, 96, 3, padding: 1);
        Conv("branch_pool", inC, poolFeatures, 1);
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x) => cat([Run("branch1x1", x), Chain(x, "branch5x5_1", "branch5x5_2"),
        Chain(x, "branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"), Run("branch_pool", AvgPool3(x))], 1);
}

/// <summary>InceptionB (Mixed_6a, grid reduction).</summary>
public sealed class InceptionB : InceptionV3Block
{
    /// <summary>Creates the block.</summary>
    public InceptionB(int inC) : base(nameof(InceptionB))
    {
        Conv("branch3x3", inC, 384, 3, stride: 2);
        Conv("branch3x3dbl_1", inC, 64, 1); Conv("branch3x3dbl_2", 64, 96, 3, padding: 1); Conv("branch3x3dbl_3", 96, 96, 3, stride: 2);
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x) =>
        cat([Run("branch3x3", x), Chain(x, "branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"), MaxPool3s2(x)], 1);
}

/// <summary>InceptionC (Mixed_6b–6e, factorised 7×7).</summary>
public sealed class InceptionC : InceptionV3Block
{
    /// <summary>Creates the block.</summary>
    public InceptionC(int inC, int c7) : base(nameof(InceptionC))
    {
        Conv("branch1x1", inC, 192, 1);
        Conv("branch7x7_1", inC, c7, 1); Conv("branch7x7_2", c7, c7, (1, 7), (0, 3)); Conv("branch7x7_3", c7, 192, (7, 1), (3, 0));
        Conv("branch7x7dbl_1", inC, c7, 1); Conv("branch7x7dbl_2", c7, c7, (7, 1), (3, 0)); Conv("branch7x7dbl_3", c7, c7, (1, 7), (0, 3));
        Conv("branch7x7dbl_4", c7, c7, (7, 1), (3, 0)); Conv("branch7x7dbl_5", c7, 192, (1, 7), (0, 3));
        Conv("branch_pool", inC, 192, 1);
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x) => cat([Run("branch1x1", x), Chain(x, "branch7x7_1", "branch7x7_2", "branch7x7_3"),
        Chain(x, "branch7x7dbl_1", "branch7x7dbl_2", "branch7x7dbl_3", "branch7x7dbl_4", "branch7x7dbl_5"), Run("branch_pool", AvgPool3(x))], 1);
}

/// <summary>InceptionD (Mixed_7a, grid reduction).</summary>
public sealed class InceptionD : InceptionV3Block
{
    /// <summary>Creates the block.</summary>
    public InceptionD(int inC) : base(nameof(InceptionD))
    {
        Conv("branch3x3_1", inC, 192, 1); Conv("branch3x3_2", 192, 320, 3, stride: 2);
        Conv("branch7x7x3_1", inC, 192, 1); Conv("branch7x7x3_2", 192, 192, (1, 7), (0, 3));
        Conv("branch7x7x3_3", 192, 192, (7, 1), (3, 0)); Conv("branch7x7x3_4", 192, 192, 3, stride: 2);
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x) => cat([Chain(x, "branch3x3_1", "branch3x3_2"),
        Chain(x, "branch7x7x3_1", "branch7x7x3_2", "branch7x7x3_3", "branch7x7x3_4"), MaxPool3s2(x)], 1);
}

/// <summary>InceptionE (Mixed_7b, 7c, expanded filter banks).</summary>
public sealed class InceptionE : InceptionV3Block
{
    /// <summary>Creates the block.</summary>
    public InceptionE(int inC) : base(nameof(InceptionE))
    {
        Conv("branch1x1", inC, 320, 1);
        Conv("branch3x3_1", inC, 384, 1); Conv("branch3x3_2a", 384, 384, (1, 3), (0, 1)); Conv("branch3x3_2b", 384, 384, (3, 1), (1, 0));
        Conv("branch3x3dbl_1", inC, 448, 1); Conv("branch3x3dbl_2", 448, 384, 3, padding: 1);
        Conv("branch3x3dbl_3a", 384, 384, (1, 3), (0, 1)); Conv("branch3x3dbl_3b", 384, 384, (3, 1), (1, 0));
        Conv("branch_pool", inC, 192, 1);
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        var b3 = Run("branch3x3_1", x);
        var d3 = Chain(x, "branch3x3dbl_1", "branch3x3dbl_2");
        return cat([Run("branch1x1", x), cat([Run("branch3x3_2a", b3), Run("branch3x3_2b", b3)], 1),
            cat([Run("branch3x3dbl_3a", d3), Run("branch3x3dbl_3b", d3)], 1), Run("branch_pool", AvgPool3(x))], 1);
    }
}

/// <summary>Inception v3 with torchvision's names (Conv2d_1a_3x3 … Mixed_7c, avgpool, dropout, fc), without AuxLogits.</summary>
public sealed class InceptionV3 : InceptionNet, ICheckpointAdapter
{
    private static readonly string[] Order =
        ["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1", "Conv2d_4a_3x3", "maxpool2",
         "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c"];

    /// <summary>Builds the network (truncated normal σ 0.1 as torchvision's init).</summary>
    public InceptionV3(InceptionV3Config config, ModelOptions options) : base(nameof(InceptionV3), options, Order)
    {
        Config = config;
        Add("Conv2d_1a_3x3", new BasicConv2d(options.InChans, 32, 3, stride: 2));
        Add("Conv2d_2a_3x3", new BasicConv2d(32, 32, 3));
        Add("Conv2d_2b_3x3", new BasicConv2d(32, 64, 3, padding: 1));
        Add("maxpool1", nn.MaxPool2d(3, stride: 2));
        Add("Conv2d_3b_1x1", new BasicConv2d(64, 80, 1));
        Add("Conv2d_4a_3x3", new BasicConv2d(80, 192, 3));
        Add("maxpool2", nn.MaxPool2d(3, stride: 2));
        Add("Mixed_5b", new InceptionA(192, 32));
        Add("Mixed_5c", new InceptionA(256, 64));
        Add("Mixed_5d", new InceptionA(288, 64));
        Add("Mixed_6a", new InceptionB(288));
        Add("Mixed_6b", new InceptionC(768, 128));
        Add("Mixed_6c", new InceptionC(768, 160));
        Add("Mixed_6d", new InceptionC(768, 160));
        Add("Mixed_6e", new InceptionC(768, 192));
        Add("Mixed_7a", new InceptionD(768));
        Add("Mixed_7b", new InceptionE(1280));
        Add("Mixed_7c", new InceptionE(2048));
        AddClassifier(options.DropRate ?? config.Dropout, options.NumClasses);
        VisionBlocks.InitTruncNormal(this, 0.1);
    }

    /// <summary>The configuration this network was built from.</summary>
    public InceptionV3Config Config { get; }

    /// <inheritdoc />
    public override int NumFeatures => 2048;

    /// <inheritdoc />
    public override string? StemConvPath => "Conv2d_1a_3x3.conv";

    /// <summary>Inception v3 needs at least 75×75 inputs.</summary>
    public override long[] DryRunInputShape => [1, InChans, 80, 80];

    /// <inheritdoc />
    public override Tensor ForwardFeatures(Tensor x)
    {
        if (x.shape[2] < 75 || x.shape[3] < 75) throw new ArgumentException($"Inception v3 needs inputs of at least 75×75, got {x.shape[2]}×{x.shape[3]} (InceptionV3.cs); resize the images (its weights expect 299×299).");
        return base.ForwardFeatures(x);
    }

    /// <inheritdoc />
    protected override bool TransformInput => Config.TransformInput;

    /// <inheritdoc />
    protected override nn.Module<Tensor, Tensor> CreateHead(int numClasses) =>
        ClassifierHead.Linear(2048, numClasses, fc => VisionBlocks.InitTruncNormal(fc, 0.1));

    /// <inheritdoc />
    public override IReadOnlyList<ParameterGroup> ParameterGroups() =>
        Layers.GroupsByPrefix(this, [("stem", ["Conv2d_*"]), ("mixed5", ["Mixed_5*"]), ("mixed6", ["Mixed_6*"]), ("mixed7", ["Mixed_7*"]), ("head", ["fc"])]);

    /// <summary>Drops the auxiliary classifier's weights (AuxLogits.*) of the official checkpoint, as torchvision does after loading.</summary>
    public Dictionary<string, Tensor> AdaptCheckpoint(Dictionary<string, Tensor> stateDict) => InceptionV3Family.Remap(stateDict);
}

/// <summary>Registers Inception v3 with torchvision's weight tag.</summary>
public static class InceptionV3Family
{
    /// <summary>Adds Inception v3 to <paramref name="catalog"/>.</summary>
    public static void Register(ModelCatalog catalog)
    {
        var config = new InceptionV3Config();
        // torchvision reports 27,161,264 parameters, which includes the auxiliary classifier this model drops.
        TV.Register(catalog, "inception_v3", "inception", config, o => new InceptionV3(config, o), 23_834_568,
            [TV.Tag("imagenet1k_v1", "inception_v3_google-0cc3c7bd.pth", 77.294, 93.45, 342, 299)], inputSize: 299);
    }

    /// <summary>Checkpoint remap: the official file also holds the auxiliary classifier (AuxLogits), which this model does not have.</summary>
    public static Dictionary<string, Tensor> Remap(Dictionary<string, Tensor> stateDict) => CheckpointKeys.Without(stateDict, "AuxLogits.");
}
