using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Models;

/// <summary>
/// torchvision's MobileNet layout, shared by MobileNetV2 and EfficientNet: a <c>features</c> sequence (0 = the stem's
/// ConvNormAct, then the stages, then the last 1×1 ConvNormAct), global average pooling, and a <c>classifier</c>
/// sequence of 0 = dropout, 1 = the linear head.
/// </summary>
public abstract class MobileNetLayoutModel : ZooModel
{
    /// <summary>Creates the model.</summary>
    protected MobileNetLayoutModel(string name, ModelOptions options) : base(name, options.NumClasses, options.InChans) { }

    /// <summary>Adds <paramref name="features"/> and the classifier (dropout, then <see cref="ZooModel.CreateHead"/>).</summary>
    protected void AddFeaturesAndClassifier(ZooSequential features, double dropout, int numClasses)
    {
        Add("features", features);
        Add("classifier", new ZooSequential(nn.Dropout(dropout), CreateHead(numClasses)));
    }

    /// <inheritdoc />
    public override string HeadPath => "classifier.1";

    /// <inheritdoc />
    public override string? StemConvPath => "features.0.0";

    /// <inheritdoc />
    public override Tensor ForwardFeatures(Tensor x) => Run("features", x);

    /// <inheritdoc />
    public override Tensor ForwardHead(Tensor features, bool preLogits = false)
    {
        var pooled = ClassifierHead.GlobalAvgPool(features);
        return preLogits ? pooled : Run("classifier", pooled);
    }
}
