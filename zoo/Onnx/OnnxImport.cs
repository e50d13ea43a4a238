using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Onnx;

/// <summary>
/// A model family that can take its weights from an ONNX file by walking the graph. Each family implements it next to
/// its own code (e.g. <c>ResNet.Onnx.cs</c>); <see cref="Zoo"/> uses it for <see cref="WeightFormat.Onnx"/> tags and
/// for <c>.onnx</c> paths.
/// </summary>
public interface IOnnxImportable
{
    /// <summary>
    /// Copies the weights of <paramref name="onnx"/> into this model, validating every shape.
    /// </summary>
    /// <exception cref="OnnxImportException">The graph does not match this architecture; the message says where.</exception>
    OnnxImportReport ImportOnnx(OnnxModel onnx);
}

/// <summary>What an ONNX import did.</summary>
/// <param name="File">The ONNX file.</param>
/// <param name="Loaded">Model tensors (state dict names) that received values.</param>
/// <param name="NotLoaded">Model tensors left as they were (e.g. a classifier the graph does not have).</param>
/// <param name="UnusedInitializers">Initializers of the graph that were not mapped.</param>
/// <param name="Notes">Remarks on the mapping (e.g. padding conventions).</param>
public sealed record OnnxImportReport(string File, IReadOnlyList<string> Loaded, IReadOnlyList<string> NotLoaded,
    IReadOnlyList<string> UnusedInitializers, IReadOnlyList<string> Notes)
{
    /// <inheritdoc />
    public override string ToString() =>
        $"{Path.GetFileName(File)}: {Loaded.Count} tensors loaded, {NotLoaded.Count} not loaded{(NotLoaded.Count > 0 ? " (" + string.Join(", ", NotLoaded) + ")" : "")}, " +
        $"{UnusedInitializers.Count} unused initializers{(Notes.Count > 0 ? "; " + string.Join("; ", Notes) : "")}";
}

/// <summary>An ONNX graph does not match the architecture it is imported into.</summary>
public sealed class OnnxImportException : Exception
{
    /// <summary>Creates the exception for <paramref name="file"/> and <paramref name="model"/>.</summary>
    public OnnxImportException(string file, string model, string message)
        : base($"Cannot import '{file}' into {model}: {message}") => File = file;

    /// <summary>The ONNX file.</summary>
    public string File { get; }
}

/// <summary>
/// Helper for family mappings: copies ONNX tensors into a model's state dict by name, checking shapes, and tracks
/// which tensors were used so the report is complete.
/// </summary>
internal sealed class OnnxStateWriter
{
    private readonly Dictionary<string, Tensor> _state;
    private readonly OnnxModel _onnx;
    private readonly string _modelName;
    private readonly HashSet<string> _loaded = new(StringComparer.Ordinal);
    private readonly HashSet<OnnxTensor> _used = [];
    private readonly List<string> _notes = [];

    internal OnnxStateWriter(nn.Module model, OnnxModel onnx, string modelName)
    {
        _state = model.state_dict();
        _onnx = onnx;
        _modelName = modelName;
    }

    internal OnnxImportException Error(string message) => new(_onnx.File, _modelName, message);

    internal void Note(string note)
    {
        if (!_notes.Contains(note)) _notes.Add(note);
    }

    /// <summary>Copies <paramref name="source"/> into state entry <paramref name="key"/> (same element count and shape, or a reshape when <paramref name="allowReshape"/>).</summary>
    internal void Set(string key, OnnxTensor source, bool allowReshape = false)
    {
        using var t = source.ToTensor();
        Set(key, t, source.ToString(), allowReshape);
        _used.Add(source);
    }

    internal void Set(string key, Tensor value, string what, bool allowReshape = false)
    {
        if (!_state.TryGetValue(key, out var target))
            throw Error($"the model has no tensor '{key}' (mapping {what}).");
        if (_loaded.Contains(key)) throw Error($"'{key}' would be loaded twice (second time from {what}).");
        var shape = target.shape;
        bool same = shape.SequenceEqual(value.shape);
        if (!same && !(allowReshape && value.numel() == target.numel()))
            throw Error($"'{key}' has shape [{string.Join(", ", shape)}] but {what} has [{string.Join(", ", value.shape)}].");
        using (no_grad())
        {
            using var v = value.to(target.dtype).reshape(shape);
            target.copy_(v);
        }
        _loaded.Add(key);
    }

    internal void MarkUsed(OnnxTensor t) => _used.Add(t);

    internal OnnxImportReport Report() => new(
        _onnx.File,
        [.. _loaded.Order(StringComparer.Ordinal)],
        [.. _state.Keys.Where(k => !_loaded.Contains(k) && !k.EndsWith("num_batches_tracked", StringComparison.Ordinal))],
        [.. _onnx.Graph.InitializerList.Where(t => !_used.Contains(t)).Select(t => t.Name)],
        _notes);
}
