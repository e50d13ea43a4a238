namespace ModelZoo.Data;

/// <summary>Turns raw label values (strings from CSV/JSONL/Parquet) into class indices and names.</summary>
internal static class Labels
{
    /// <summary>If every value is a small non-negative integer, labels are those integers and names "0".."max" (or
    /// <paramref name="knownNames"/>); otherwise names are the distinct values sorted ordinally.</summary>
    /// <exception cref="InvalidDataException">A label is empty, or an integer label has no entry in <paramref name="knownNames"/>; the message names the row.</exception>
    public static (int[] Labels, string[] Names) Index(IReadOnlyList<string> raw, string source, IReadOnlyList<string>? knownNames = null, Func<int, string>? row = null)
    {
        row ??= i => $"{source} row {i + 1}";
        for (var i = 0; i < raw.Count; i++)
            if (string.IsNullOrWhiteSpace(raw[i]))
                throw new InvalidDataException($"{row(i)} has an empty label. Every row needs a class label; fix or remove the row.");
        var ints = new int[raw.Count];
        var allInts = true;
        for (var i = 0; i < raw.Count && allInts; i++)
            allInts = int.TryParse(raw[i], System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out ints[i]) && ints[i] >= 0 && ints[i] < 1_000_000;
        if (allInts && raw.Count > 0)
        {
            var max = ints.Max();
            if (knownNames is { Count: > 0 } && knownNames.Count <= max)
            {
                int bad = Array.FindIndex(ints, v => v >= knownNames.Count);
                throw new InvalidDataException($"{row(bad)} has label {ints[bad]}, outside the {knownNames.Count} classes the file's metadata names " +
                    $"({string.Join(", ", knownNames.Take(12))}{(knownNames.Count > 12 ? ", …" : "")}). Fix the label or the class list.");
            }
            var names = knownNames is { Count: > 0 }
                ? knownNames.ToArray()
                : Enumerable.Range(0, max + 1).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
            return (ints, names);
        }
        var distinct = raw.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray();
        if (distinct.Length == 0) throw new InvalidDataException($"No labels found in {source}.");
        var map = distinct.Select((n, i) => (n, i)).ToDictionary(x => x.n, x => x.i, StringComparer.Ordinal);
        return (raw.Select(r => map[r]).ToArray(), distinct);
    }
}
