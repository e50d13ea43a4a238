using ModelZoo.Weights;
using ModelZoo.Weights.Store;

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

    /// <summary>
    /// Builds <paramref name="name"/> and loads pretrained weights into it.
    /// </summary>
    /// <param name="name">Catalog name, optionally with a weight tag: <c>resnet50</c>, <c>resnet50:imagenet1k_v2</c>.</param>
    /// <param name="weights">
    /// Null or <c>"default"</c> for the default tag; a catalog weight tag such as <c>imagenet1k_v2</c>; an http(s)
    /// URL; a local file (<c>.pth</c>, <c>.pt</c>, <c>.bin</c>, <c>.safetensors</c>, <c>.dat</c> state dicts, or
    /// <c>.onnx</c>, imported through the family's ONNX mapping); or <c>"none"</c> for random initialisation.
    /// Tag files come from the cache, else an offline package, else a download (see <see cref="WeightStore"/>).
    /// </param>
    /// <param name="options">
    /// Head size, input channels, dropout rates. Null keeps the head the weights carry (none for backbone-only
    /// weights such as <c>resnet18-cntk</c>); another <see cref="ModelOptions.NumClasses"/> gets a fresh head.
    /// </param>
    /// <param name="strict">Require every key of a state dict to match (after the head is skipped, if it is).</param>
    /// <param name="skipHead">
    /// Leave the classifier out of loading. Null (default) skips it exactly when the checkpoint's classifier does not
    /// fit the model's (e.g. <c>options.NumClasses = 10</c> with ImageNet weights), with a note in the report.
    /// </param>
    /// <param name="offline">Forbid downloads (default: <c>ZOO_OFFLINE</c>).</param>
    /// <param name="progress">Download progress callback.</param>
    /// <exception cref="KeyNotFoundException">Unknown model or tag.</exception>
    /// <exception cref="WeightNotAvailableException">The file is missing and cannot be downloaded; the message says how to get it.</exception>
    /// <exception cref="WeightIntegrityException">A file has the wrong SHA-256.</exception>
    /// <exception cref="WeightLoadException">A state dict does not fit (strict); the message lists the keys.</exception>
    /// <exception cref="Onnx.OnnxImportException">An ONNX graph does not match the architecture.</exception>
    public static ZooModel Load(string name, string? weights = null, ModelOptions? options = null, bool strict = true, bool? skipHead = null,
        bool? offline = null, IProgress<DownloadProgress>? progress = null) =>
        LoadWithStore(name, weights, options, new WeightStore(offline: offline), strict, skipHead, progress);

    /// <summary>
    /// <see cref="Load(string, string?, ModelOptions?, bool, bool?, bool?, IProgress{DownloadProgress}?)"/> with a
    /// given <see cref="WeightStore"/> (cache folder, offline mode, HTTP client); tests use it.
    /// </summary>
    internal static ZooModel LoadWithStore(string name, string? weights, ModelOptions? options, WeightStore store, bool strict = true, bool? skipHead = null,
        IProgress<DownloadProgress>? progress = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(store);
        var (entryName, tagPart) = SplitName(name);
        if (tagPart is not null && weights is not null)
            throw new ArgumentException($"'{name}' names a weight tag and weights '{weights}' was given too; give one of them.", nameof(weights));
        weights ??= tagPart;
        if (string.Equals(weights, "none", StringComparison.OrdinalIgnoreCase)) return Create(entryName, options);
        var entry = Catalog.Get(entryName);
        var (path, tag) = ResolveWeights(entry, string.Equals(weights, "default", StringComparison.OrdinalIgnoreCase) ? null : weights, store, progress);
        if (tag.Format == WeightFormat.Onnx) return LoadOnnx(entry, path, tag, options);

        var model = Create(entryName, options ?? new ModelOptions(NumClasses: tag.NumClasses));
        try
        {
            using var dict = StateDictFile.Read(path);
            bool skip = skipHead ?? HeadDiffers(model, dict);
            var report = model.LoadStateDict(dict, strict, skip, path);
            if (skipHead is null && skip)
                model.LastLoadReport = report with { Notes = [.. report.Notes, $"the checkpoint's classifier '{model.HeadPath}' does not fit this model's ({model.NumClasses} classes), so it was skipped and the head keeps its fresh initialisation"] };
            model.LoadedWeights = tag;
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    private static bool HeadDiffers(ZooModel model, IReadOnlyDictionary<string, TorchSharp.torch.Tensor> dict)
    {
        string head = model.HeadPath;
        bool IsHead(string k) => k == head || k.StartsWith(head + ".", StringComparison.Ordinal);
        var own = model.state_dict().Where(kv => IsHead(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value.shape);
        var theirs = dict.Where(kv => IsHead(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value.shape);
        if (theirs.Count == 0 && own.Count == 0) return false;
        return own.Count != theirs.Count || own.Any(kv => !theirs.TryGetValue(kv.Key, out var s) || !s.SequenceEqual(kv.Value));
    }
}
