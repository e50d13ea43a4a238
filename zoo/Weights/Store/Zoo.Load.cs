using ModelZoo.Onnx;
using ModelZoo.Weights.Store;

namespace ModelZoo;

// Zoo.Load: resolve what the caller asked for (default tag, tag, "name:tag", URL, local file), get the file through
// the WeightStore (cache → offline package → download), build the model with the head the weights carry, apply the
// weights (ONNX through the family's mapping; state dicts through the state-dict loader), then resize the head.

public static partial class Zoo
{
    /// <summary>
    /// Builds <paramref name="name"/> and loads pretrained weights.
    /// </summary>
    /// <param name="name">Catalog name, optionally with a tag: <c>resnet50</c>, <c>resnet50:imagenet1k_v2</c>.</param>
    /// <param name="weights">
    /// What to load: null for the default tag, a tag name (<c>imagenet1k_v2</c>), an http(s) URL, or a local file
    /// (<c>.onnx</c> is imported through the family's ONNX mapping; <c>.pth</c>/<c>.safetensors</c> are state dicts).
    /// </param>
    /// <param name="options">
    /// Head size and input channels wanted. Null keeps the head the weights have (none for backbone-only weights);
    /// another <see cref="ModelOptions.NumClasses"/> replaces the loaded head by a fresh one of that size.
    /// </param>
    /// <param name="offline">Forbid downloads (default: <c>ZOO_OFFLINE</c>).</param>
    /// <param name="progress">Download progress callback.</param>
    /// <exception cref="KeyNotFoundException">Unknown model or tag.</exception>
    /// <exception cref="WeightNotAvailableException">The file is missing and cannot be downloaded; the message says how to get it.</exception>
    /// <exception cref="WeightIntegrityException">A file has the wrong SHA-256.</exception>
    /// <exception cref="OnnxImportException">An ONNX graph does not match the architecture.</exception>
    public static ZooModel Load(string name, string? weights = null, ModelOptions? options = null, bool? offline = null, IProgress<DownloadProgress>? progress = null) =>
        Load(name, weights, options, new WeightStore(offline: offline), progress);

    /// <summary><see cref="Load(string, string?, ModelOptions?, bool?, IProgress{DownloadProgress}?)"/> with a given store (cache folder, offline mode, HTTP client).</summary>
    public static ZooModel Load(string name, string? weights, ModelOptions? options, WeightStore store, IProgress<DownloadProgress>? progress = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(store);
        var (entryName, tagPart) = SplitName(name);
        if (tagPart is not null && weights is not null)
            throw new ArgumentException($"'{name}' names a tag and weights '{weights}' was given too; give one of them.", nameof(weights));
        var entry = Catalog.Get(entryName);
        var (file, tag) = ResolveWeights(entry, weights ?? tagPart, store, progress);

        int headForLoading = tag.Format == WeightFormat.Onnx && tag.Tag == LocalTag ? OnnxHeadSize(file) : tag.NumClasses;
        var wanted = options ?? new ModelOptions(NumClasses: headForLoading);
        var model = entry.Factory(wanted with { NumClasses = headForLoading });
        model.Entry = entry;
        ApplyWeights(model, file, tag.Format);
        model.LoadedWeights = tag;
        if (wanted.NumClasses != headForLoading) model.ReplaceHead(wanted.NumClasses);
        return model;
    }

    private const string LocalTag = "file";
    private const string UrlTag = "url";

    /// <summary>Splits <c>name:tag</c> when the whole string is not itself a catalog name.</summary>
    internal static (string Name, string? Tag) SplitName(string name)
    {
        int colon = name.LastIndexOf(':');
        if (colon <= 0 || Catalog.TryGet(name) is not null || name.Contains("://", StringComparison.Ordinal)) return (name, null);
        return (name[..colon], name[(colon + 1)..]);
    }

    /// <summary>The local file and the tag describing it, for a weights argument.</summary>
    internal static (string File, WeightTag Tag) ResolveWeights(ModelEntry entry, string? weights, WeightStore store, IProgress<DownloadProgress>? progress)
    {
        if (weights is null)
        {
            var tag = entry.Default ?? throw new KeyNotFoundException($"Model '{entry.Name}' has no pretrained weights; use Zoo.Create(\"{entry.Name}\") for a randomly initialised model.");
            return (store.Resolve(entry, tag, progress), tag);
        }
        if (weights.StartsWith("http://", StringComparison.OrdinalIgnoreCase) || weights.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
        {
            var file = store.ResolveUrl(weights, progress: progress);
            var format = FormatOf(file) ?? throw new ArgumentException($"Cannot tell the format of '{weights}' from its extension (.pth, .pt, .bin, .safetensors, .onnx).", nameof(weights));
            return (file, Synthesized(entry, UrlTag, WeightSource.FromUrl(weights), format));
        }
        if (FormatOf(weights) is { } localFormat || File.Exists(weights))
        {
            var full = Path.GetFullPath(weights);
            if (!File.Exists(full)) throw new FileNotFoundException($"Weight file '{full}' does not exist.", full);
            var format = FormatOf(full) ?? throw new ArgumentException($"Cannot tell the format of '{full}' from its extension (.pth, .pt, .bin, .safetensors, .onnx).", nameof(weights));
            return (full, Synthesized(entry, LocalTag, new WeightSource(WeightSourceKind.Url, new Uri(full).AbsoluteUri), format));
        }
        var named = entry.GetTag(weights);
        return (store.Resolve(entry, named, progress), named);
    }

    private static WeightTag Synthesized(ModelEntry entry, string tag, WeightSource source, WeightFormat format) =>
        new(tag, [source], format, "(see source)", entry.Default?.Preprocessing, entry.Default?.NumClasses ?? 0,
            Labels: entry.Default?.Labels, Description: $"Weights from {source}.");

    internal static WeightFormat? FormatOf(string path) => Path.GetExtension(path).ToLowerInvariant() switch
    {
        ".onnx" => WeightFormat.Onnx,
        ".pth" or ".pt" or ".bin" or ".ckpt" => WeightFormat.Pth,
        ".safetensors" => WeightFormat.SafeTensors,
        ".dat" => WeightFormat.TorchSharpDat,
        _ => null,
    };

    /// <summary>Classifier size of an ONNX file: the last fully connected layer whose result is a graph output, else 0.</summary>
    private static int OnnxHeadSize(string file)
    {
        var g = OnnxModel.Load(file).Graph;
        var outputs = g.Outputs.Select(o => o.Name).ToHashSet(StringComparer.Ordinal);
        var fc = g.LinearUnits().LastOrDefault(l => outputs.Contains(g.SkipPassthrough(l.Output)) || outputs.Contains(l.Output));
        return fc is null ? 0 : checked((int)fc.OutFeatures);
    }

    /// <summary>
    /// Loads a state-dict file (.pth/.safetensors/.dat) into a model. Set by the state-dict loader; null until it is
    /// wired in, in which case such files raise <see cref="NotSupportedException"/>.
    /// </summary>
    internal static Action<ZooModel, string, WeightFormat>? StateDictLoader { get; set; }

    private static void ApplyWeights(ZooModel model, string file, WeightFormat format)
    {
        if (format == WeightFormat.Onnx)
        {
            if (model is not IOnnxImportable importable)
                throw new NotSupportedException($"Family '{model.Entry?.Family}' has no ONNX mapping, so '{file}' cannot be imported into '{model.Entry?.Name}'.");
            importable.ImportOnnx(OnnxModel.Load(file));
            return;
        }
        var loader = StateDictLoader ?? throw new NotSupportedException($"Loading {format} state dicts ('{file}') is not available in this build.");
        loader(model, file, format);
    }
}
