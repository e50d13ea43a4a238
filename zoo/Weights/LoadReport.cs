using System.Text;

namespace ModelZoo.Weights;

/// <summary>A tensor whose shape in the checkpoint differs from the model's.</summary>
/// <param name="Key">State-dict key.</param>
/// <param name="Expected">Shape in the model.</param>
/// <param name="Found">Shape in the checkpoint.</param>
public sealed record ShapeMismatch(string Key, long[] Expected, long[] Found)
{
    /// <inheritdoc />
    public override string ToString() => $"{Key}: model [{string.Join(", ", Expected)}], checkpoint [{string.Join(", ", Found)}]";
}

/// <summary>What <see cref="ZooModel.LoadStateDict"/> did: which keys loaded, which were missing, unexpected, mismatched or skipped.</summary>
/// <param name="Source">Where the tensors came from (a file path, or "state dict").</param>
/// <param name="Loaded">Keys copied into the model.</param>
/// <param name="Missing">Model keys the checkpoint lacks (they keep their current values).</param>
/// <param name="Unexpected">Checkpoint keys the model lacks.</param>
/// <param name="Mismatched">Keys whose shapes differ (not loaded).</param>
/// <param name="Skipped">Keys left out on purpose (the head with <c>skipHead</c>).</param>
/// <param name="Notes">Adaptations made on the way (unwrapped checkpoint, in_chans conversion, tolerated buffers).</param>
public sealed record LoadReport(
    string Source,
    IReadOnlyList<string> Loaded,
    IReadOnlyList<string> Missing,
    IReadOnlyList<string> Unexpected,
    IReadOnlyList<ShapeMismatch> Mismatched,
    IReadOnlyList<string> Skipped,
    IReadOnlyList<string> Notes)
{
    /// <summary>True when every model key was loaded and nothing was left over.</summary>
    public bool IsExact => Missing.Count == 0 && Unexpected.Count == 0 && Mismatched.Count == 0;

    /// <inheritdoc />
    public override string ToString()
    {
        var sb = new StringBuilder();
        sb.Append($"{Source}: loaded {Loaded.Count} tensors");
        if (Skipped.Count > 0) sb.Append($", skipped {Skipped.Count} ({Short(Skipped)})");
        sb.Append('.');
        if (Missing.Count > 0) sb.Append($"\n  missing from the checkpoint ({Missing.Count}): {Short(Missing)}");
        if (Unexpected.Count > 0) sb.Append($"\n  unexpected in the checkpoint ({Unexpected.Count}): {Short(Unexpected)}");
        if (Mismatched.Count > 0) sb.Append($"\n  shape mismatches ({Mismatched.Count}): {string.Join("; ", Mismatched.Take(10))}{(Mismatched.Count > 10 ? "; …" : "")}");
        foreach (var n in Notes) sb.Append($"\n  note: {n}");
        return sb.ToString();
    }

    private static string Short(IReadOnlyList<string> keys) => string.Join(", ", keys.Take(12)) + (keys.Count > 12 ? $", … ({keys.Count - 12} more)" : "");
}

/// <summary>A checkpoint does not fit the model in strict mode; the model was left unchanged.</summary>
public sealed class WeightLoadException(string message, LoadReport report) : Exception(message)
{
    /// <summary>The full comparison of checkpoint and model.</summary>
    public LoadReport Report { get; } = report;
}
