namespace ModelZoo;

/// <summary>The 1,000 ImageNet-1k class names in torchvision's order.</summary>
public static class ImageNetLabels
{
    private static readonly Lazy<IReadOnlyList<string>> Labels = new(() =>
    {
        using var stream = typeof(ImageNetLabels).Assembly.GetManifestResourceStream("ModelZoo.imagenet_classes.txt")
            ?? throw new InvalidOperationException("The embedded ImageNet class list is missing from the ModelZoo assembly.");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries);
    });

    /// <summary>All class names, index = class id.</summary>
    public static IReadOnlyList<string> All => Labels.Value;
}
