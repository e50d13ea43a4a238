using ModelZoo.Onnx;
using ModelZoo.Weights.Store;

namespace ModelZoo;

// The resolution half of Zoo.Load (Zoo.cs): what the caller asked for (default tag, tag, "name:tag", URL, local file)
// becomes a local file through the WeightStore (cache → offline package → download) and a WeightTag; ONNX files are
// imported through the family's mapping (IOnnxImportable). State dicts are loaded in Zoo.cs.

public static partial class Zoo
{
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
    private static int OnnxHeadSize(OnnxModel onnx)
    {
        var g = onnx.Graph;
        var outputs = g.Outputs.Select(o => o.Name).ToHashSet(StringComparer.Ordinal);
        var fc = g.LinearUnits().LastOrDefault(l => outputs.Contains(g.SkipPassthrough(l.Output)) || outputs.Contains(l.Output));
        return fc is null ? 0 : checked((int)fc.OutFeatures);
    }

    /// <summary>Builds the model with the classifier the ONNX weights carry, imports them, then sizes the head as asked.</summary>
    private static ZooModel LoadOnnx(ModelEntry entry, string file, WeightTag tag, ModelOptions? options)
    {
        var onnx = OnnxModel.Load(file);
        int head = tag.Tag == LocalTag || tag.Tag == UrlTag ? OnnxHeadSize(onnx) : tag.NumClasses;
        var wanted = options ?? new ModelOptions(NumClasses: head);
        var model = entry.Factory(wanted with { NumClasses = head });
        model.Entry = entry;
        try
        {
            if (model is not IOnnxImportable importable)
                throw new NotSupportedException($"Family '{entry.Family}' has no ONNX mapping, so '{file}' cannot be imported into '{entry.Name}'.");
            var r = importable.ImportOnnx(onnx);
            model.LastLoadReport = new Weights.LoadReport(r.File, r.Loaded, r.NotLoaded, r.UnusedInitializers, [], [], r.Notes);
            model.LoadedWeights = tag;
            if (wanted.NumClasses != head) model.ReplaceHead(wanted.NumClasses);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }
}
