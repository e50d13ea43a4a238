using static TorchSharp.torch;

namespace ModelZoo.Models;

/// <summary>
/// Key edits the families' checkpoint remaps are made of (see <see cref="ICheckpointAdapter"/>): leaving out the
/// tensors of parts a model does not build, and renaming keys of older checkpoint layouts. Tensors are passed through.
/// </summary>
public static class CheckpointKeys
{
    /// <summary>The state dict without the keys under any of <paramref name="prefixes"/> (each ending with a dot, e.g. <c>aux1.</c>).</summary>
    public static Dictionary<string, Tensor> Without(Dictionary<string, Tensor> stateDict, params string[] prefixes) =>
        stateDict.Where(kv => !prefixes.Any(p => kv.Key.StartsWith(p, StringComparison.Ordinal)))
            .ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);

    /// <summary>The state dict with every key mapped through <paramref name="rename"/>.</summary>
    public static Dictionary<string, Tensor> Renamed(Dictionary<string, Tensor> stateDict, Func<string, string> rename)
    {
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (key, value) in stateDict) result[rename(key)] = value;
        return result;
    }
}
