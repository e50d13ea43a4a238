using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelZoo.Models;

/// <summary>
/// The pooled-linear classifier of the torchvision CNNs, as the small pieces the families call: global average pooling
/// to N×C, and a linear layer to the classes (the identity for 0 classes) with the family's own initialisation.
/// </summary>
public static class ClassifierHead
{
    /// <summary>Global average pooling of N×C×H×W features to N×C (torchvision's <c>adaptive_avg_pool2d(1)</c> then <c>flatten(1)</c>).</summary>
    public static Tensor GlobalAvgPool(Tensor features) => nn.functional.adaptive_avg_pool2d(features, [1, 1]).flatten(1);

    /// <summary>
    /// A linear classifier <paramref name="inFeatures"/> → <paramref name="numClasses"/> (PyTorch's default
    /// initialisation, then <paramref name="init"/> without gradients), or the identity when <paramref name="numClasses"/> is 0.
    /// </summary>
    public static nn.Module<Tensor, Tensor> Linear(long inFeatures, int numClasses, Action<Linear>? init = null)
    {
        if (numClasses == 0) return nn.Identity();
        var fc = nn.Linear(inFeatures, numClasses);
        if (init is not null)
        {
            using var noGrad = no_grad();
            init(fc);
        }
        return fc;
    }

    /// <summary>Initialisation that only zeroes the bias (DenseNet).</summary>
    public static void ZeroBias(Linear fc) => nn.init.zeros_(fc.bias!);
}
