using ModelZoo.Models.Nlp;
using ModelZoo.Models.Vision;

namespace ModelZoo;

/// <summary>
/// The explicit list of model families in the default catalog. Adding a family = writing its file (with a
/// <c>Register(ModelCatalog)</c> method) and adding one line here; the catalog-wide tests then cover it untouched.
/// </summary>
public static class CatalogRegistrations
{
    /// <summary>Builds the default catalog.</summary>
    public static ModelCatalog CreateDefault()
    {
        var catalog = new ModelCatalog();
        ResNetFamily.Register(catalog);
        MobileNetV2Family.Register(catalog);
        MobileNetV3Family.Register(catalog);
        EfficientNetFamily.Register(catalog);
        ConvNeXtFamily.Register(catalog);
        RegNetFamily.Register(catalog);
        DenseNetFamily.Register(catalog);
        VisionTransformerFamily.Register(catalog);
        SwinTransformerFamily.Register(catalog);
        VGGFamily.Register(catalog);
        SqueezeNetFamily.Register(catalog);
        ShuffleNetV2Family.Register(catalog);
        MNASNetFamily.Register(catalog);
        GoogLeNetFamily.Register(catalog);
        InceptionV3Family.Register(catalog);
        NlpFamilies.Register(catalog);
        return catalog;
    }
}
