namespace ModelZoo;

/// <summary>Entry point of the model zoo: look models up by name, build them, load their weights.</summary>
public static partial class Zoo
{
    private static readonly Lazy<ModelCatalog> DefaultCatalog = new(CatalogRegistrations.CreateDefault);

    /// <summary>The default catalog.</summary>
    public static ModelCatalog Catalog => DefaultCatalog.Value;

    /// <summary>Builds <paramref name="name"/> with random initialisation (no weights are read).</summary>
    /// <param name="name">Catalog name, e.g. <c>resnet50</c>.</param>
    /// <param name="options">Head size, input channels, dropout rates.</param>
    public static ZooModel Create(string name, ModelOptions? options = null)
    {
        var entry = Catalog.Get(name);
        var model = entry.Factory(options ?? new ModelOptions());
        model.Entry = entry;
        return model;
    }
}
