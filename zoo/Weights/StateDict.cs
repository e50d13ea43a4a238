using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Weights;

/// <summary>
/// Tensors read from a weight file, by name, in file order. Owns its tensors: dispose it when done (tensors you take
/// out and keep must be detached from it with <see cref="Dictionary{TKey,TValue}.Remove(TKey)"/> first).
/// </summary>
public sealed class StateDict : Dictionary<string, Tensor>, IDisposable
{
    /// <summary>Creates an empty state dict read from <paramref name="source"/>.</summary>
    public StateDict(string source, IEnumerable<string>? notes = null) : base(StringComparer.Ordinal)
    {
        Source = source;
        Notes = notes?.ToList() ?? [];
    }

    /// <summary>The file the tensors came from.</summary>
    public string Source { get; }

    /// <summary>What the reader did beyond reading, e.g. "took the state dict under 'model'" or "removed the 'module.' prefix".</summary>
    public List<string> Notes { get; }

    /// <summary>Disposes every tensor.</summary>
    public void Dispose()
    {
        foreach (var t in Values) t.Dispose();
        Clear();
    }

    /// <summary>Keys commonly used for the state dict inside a training checkpoint, tried in this order.</summary>
    internal static readonly string[] WrapperKeys = ["state_dict", "model_state_dict", "model", "module", "net", "network", "params", "model_ema", "state_dict_ema"];

    /// <summary>Finds the state dict (a dict of tensors) in an unpickled object, unwrapping {"state_dict": …} and friends.</summary>
    internal static List<KeyValuePair<string, TensorRef>> Unwrap(object? root, string path, string? unwrapKey, List<string> notes)
    {
        if (root is not PyDict dict) throw new InvalidDataException($"{path} holds a {root?.GetType().Name ?? "None"}, not a dict of tensors.");
        if (unwrapKey is not null)
        {
            var inner = Walk(dict, unwrapKey) ?? throw new InvalidDataException(
                $"{path} has no dict under '{unwrapKey}'. Top-level keys: {string.Join(", ", dict.Items.Select(i => i.Key).Take(20))}.");
            notes.Add($"took the state dict under '{unwrapKey}'");
            return Tensors(inner, path);
        }
        if (IsTensorDict(dict)) return StripModulePrefix(Tensors(dict, path), notes);
        foreach (var key in WrapperKeys)
        {
            if (dict.Get(key) is PyDict inner && IsTensorDict(inner))
            {
                notes.Add($"the file is a training checkpoint; took the state dict under '{key}' (other keys: {string.Join(", ", dict.Items.Select(i => i.Key).Where(k => !Equals(k, key)).Take(10))})");
                return StripModulePrefix(Tensors(inner, path), notes);
            }
        }
        throw new InvalidDataException($"{path} holds a dict that is not a state dict, and none of {string.Join(", ", WrapperKeys)} holds one. " +
            $"Top-level keys: {string.Join(", ", dict.Items.Select(i => i.Key).Take(20))}. Name the key that holds the weights (unwrap: \"...\").");
    }

    private static PyDict? Walk(PyDict dict, string dotted)
    {
        PyDict? cur = dict;
        foreach (var part in dotted.Split('.'))
            cur = cur?.Get(part) as PyDict;
        return cur;
    }

    private static bool IsTensorDict(PyDict d) => d.Items.Count > 0 && d.Items.All(i => i.Key is string && i.Value is TensorRef);

    private static List<KeyValuePair<string, TensorRef>> Tensors(PyDict d, string path)
    {
        var list = new List<KeyValuePair<string, TensorRef>>();
        foreach (var (k, v) in d.Items)
        {
            if (k is not string name) throw new InvalidDataException($"{path}: state dict key {k} is not a string.");
            if (v is TensorRef r) list.Add(new(name, r));
            else throw new InvalidDataException($"{path}: '{name}' holds a {v?.GetType().Name ?? "None"}, not a tensor.");
        }
        return list;
    }

    private static List<KeyValuePair<string, TensorRef>> StripModulePrefix(List<KeyValuePair<string, TensorRef>> list, List<string> notes)
    {
        if (list.Count == 0 || !list.All(kv => kv.Key.StartsWith("module.", StringComparison.Ordinal))) return list;
        notes.Add("removed the 'module.' prefix that (Distributed)DataParallel adds");
        return list.Select(kv => new KeyValuePair<string, TensorRef>(kv.Key["module.".Length..], kv.Value)).ToList();
    }
}
