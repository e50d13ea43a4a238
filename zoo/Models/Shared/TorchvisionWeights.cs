namespace ModelZoo.Models;

/// <summary>Builds catalog weight tags for torchvision checkpoints (download.pytorch.org URLs, hash prefixes, weight transforms, metrics).</summary>
public static class TorchvisionWeights
{
    /// <summary>License string of torchvision's checkpoints.</summary>
    public const string License = "BSD-3-Clause (torchvision)";

    /// <summary>
    /// A torchvision ImageNet-1k weight tag: <paramref name="file"/> under https://download.pytorch.org/models/, the
    /// hash prefix from its name, preprocessing as torchvision's <c>ImageClassification</c> transform states it.
    /// </summary>
    /// <param name="tag">Tag name (torchvision's enum member in lower case, e.g. <c>imagenet1k_v1</c>).</param>
    /// <param name="file">File name, e.g. <c>mobilenet_v2-b0353104.pth</c>.</param>
    /// <param name="top1">Reported ImageNet-1k acc@1.</param>
    /// <param name="top5">Reported ImageNet-1k acc@5.</param>
    /// <param name="resize">Resize size of the transform.</param>
    /// <param name="crop">Center-crop size of the transform.</param>
    /// <param name="interpolation">Resampling filter of the transform.</param>
    /// <param name="halfNorm">Mean and std 0.5 instead of ImageNet's (EfficientNetV2-L).</param>
    /// <param name="description">One line about the weights.</param>
    public static WeightTag Tag(string tag, string file, double top1, double top5, int resize = 256, int crop = 224,
        Interpolation interpolation = Interpolation.Bilinear, bool halfNorm = false, string? description = null)
    {
        var pre = Preprocessing.ImageNetAt(resize, crop, interpolation);
        if (halfNorm) pre = pre with { Mean = [0.5f, 0.5f, 0.5f], Std = [0.5f, 0.5f, 0.5f] };
        return new(tag, [WeightSource.FromUrl("https://download.pytorch.org/models/" + file)], WeightFormat.Pth, License, pre, 1000,
            HashPrefix: file.Split('-')[^1].Split('.')[0], FileName: file, Labels: ImageNetLabels.All,
            Metrics: new Dictionary<string, double> { ["imagenet-1k/acc@1"] = top1, ["imagenet-1k/acc@5"] = top5 },
            Description: description ?? DescribeTag(tag));
    }

    private static string DescribeTag(string tag) => tag switch
    {
        "imagenet1k_v1" => "torchvision's original ImageNet-1k weights.",
        "imagenet1k_v2" => "torchvision's improved ImageNet-1k training recipe.",
        "imagenet1k_swag_e2e_v1" => "SWAG weakly-supervised pretraining, fine-tuned end to end on ImageNet-1k.",
        "imagenet1k_swag_linear_v1" => "SWAG weakly-supervised pretraining, frozen trunk with a linear ImageNet-1k classifier.",
        _ => "torchvision ImageNet-1k weights.",
    };

    /// <summary>Registers one torchvision entry.</summary>
    internal static void Register(ModelCatalog catalog, string name, string family, object config, Func<ModelOptions, ZooModel> factory,
        long parameters, WeightTag[] tags, int inputSize = 224, string? defaultTag = null, string? description = null) =>
        catalog.Register(new ModelEntry(name, family, ModelTask.Vision, config, factory, parameters, [3, inputSize, inputSize], tags,
            DefaultTag: defaultTag, Description: description ?? $"{name} as in torchvision."));
}
