using ModelZoo.Weights;

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
    /// Builds <paramref name="name"/> and loads <paramref name="weights"/> into it.
    /// </summary>
    /// <param name="name">Catalog name, e.g. <c>resnet50</c>.</param>
    /// <param name="weights">
    /// A weight file (<c>.pth</c>, <c>.pt</c>, <c>.bin</c>, <c>.safetensors</c>, <c>.dat</c>), <c>"none"</c> for random
    /// initialisation, or a catalog weight tag such as <c>imagenet1k_v1</c> / <c>"default"</c>.
    /// </param>
    /// <param name="options">Head size, input channels, dropout rates.</param>
    /// <param name="strict">Require every key to match (after the head is skipped, if it is).</param>
    /// <param name="skipHead">
    /// Leave the classifier out of loading. Null (default) skips it exactly when the checkpoint's classifier does not
    /// fit the model's (e.g. <c>options.NumClasses = 10</c> with ImageNet weights), with a note in the report.
    /// </param>
    /// <exception cref="WeightLoadException">The checkpoint does not fit (strict); the message lists the keys.</exception>
    public static ZooModel Load(string name, string weights = "default", ModelOptions? options = null, bool strict = true, bool? skipHead = null)
    {
        ArgumentNullException.ThrowIfNull(weights);
        var entry = Catalog.Get(name);
        if (string.Equals(weights, "none", StringComparison.OrdinalIgnoreCase)) return Create(name, options);

        WeightTag? tag = null;
        string path;
        if (File.Exists(weights)) path = weights;
        else if (WeightResolver is { } resolve)
        {
            var resolved = resolve(entry, weights);
            (path, tag) = (resolved.Path, resolved.Tag);
        }
        else if (LooksLikePath(weights))
            throw new FileNotFoundException($"Weight file '{weights}' does not exist. Pass an existing .pth/.safetensors/.dat file, a weight tag, or \"none\".", weights);
        else
            throw new NotSupportedException(
                $"'{weights}' is not a file, and fetching catalog weight tags is not available in this build. " +
                $"Tags of {entry.Name}: {(entry.Weights.Count == 0 ? "(none)" : string.Join(", ", entry.Weights.Select(w => w.Tag)))}. " +
                "Download the file yourself and pass its path (or \"none\" for random weights).");

        var model = Create(name, options);
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

    private static bool LooksLikePath(string s) =>
        s.Contains('/') || s.Contains('\\') || StateDictFile.WritableExtensions.Any(e => s.EndsWith(e, StringComparison.OrdinalIgnoreCase)) || s.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase);

    /// <summary>A weight file found for a catalog entry and a weights argument that is not a local file.</summary>
    /// <param name="Path">Local path of the file (downloaded or cached).</param>
    /// <param name="Tag">The catalog tag it belongs to, if any (sets <see cref="ZooModel.LoadedWeights"/>).</param>
    internal sealed record ResolvedWeights(string Path, WeightTag? Tag);

    /// <summary>
    /// Extension point: turns a weights argument that is not an existing file (a tag, "default", a URL, hf://…) into a
    /// local file. Null until the part of the library that fetches and caches catalog weights installs itself; it
    /// throws with a clear message when it cannot resolve the argument.
    /// </summary>
    internal static Func<ModelEntry, string, ResolvedWeights>? WeightResolver { get; set; }
}
