namespace ModelZoo;

/// <summary>
/// The registry of named models. Families register their variants explicitly (see <see cref="CatalogRegistrations"/>);
/// a second entry with the same name throws.
/// </summary>
public sealed class ModelCatalog
{
    private readonly Dictionary<string, ModelEntry> _entries = new(StringComparer.OrdinalIgnoreCase);
    private readonly List<ModelEntry> _ordered = [];

    /// <summary>Every entry, in registration order.</summary>
    public IReadOnlyList<ModelEntry> Entries => _ordered;

    /// <summary>Adds an entry.</summary>
    /// <exception cref="InvalidOperationException">An entry with the same name (ignoring case) exists.</exception>
    public void Register(ModelEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        if (!_entries.TryAdd(entry.Name, entry))
            throw new InvalidOperationException($"The catalog already has a model named '{entry.Name}' (family '{_entries[entry.Name].Family}'); names must be unique.");
        var tags = entry.Weights.GroupBy(w => w.Tag, StringComparer.OrdinalIgnoreCase).FirstOrDefault(g => g.Count() > 1);
        if (tags is not null)
        {
            _entries.Remove(entry.Name);
            throw new InvalidOperationException($"Model '{entry.Name}' declares weight tag '{tags.Key}' twice.");
        }
        _ordered.Add(entry);
    }

    /// <summary>The entry called <paramref name="name"/>, or null.</summary>
    public ModelEntry? TryGet(string name) => _entries.GetValueOrDefault(name);

    /// <summary>The entry called <paramref name="name"/>.</summary>
    /// <exception cref="KeyNotFoundException">Unknown name; the message suggests close names.</exception>
    public ModelEntry Get(string name) => TryGet(name) ?? throw new KeyNotFoundException(
        $"No model named '{name}' in the catalog.{Suggest(name)} Run 'zoo list' to see every model.");

    /// <summary>Entries for a task and/or whose name matches a glob such as <c>resnet*</c>.</summary>
    public IEnumerable<ModelEntry> Filter(ModelTask? task = null, string? nameGlob = null) =>
        _ordered.Where(e => (task is null || e.Task == task) && (nameGlob is null || PathMatch.Glob(nameGlob.ToLowerInvariant(), e.Name.ToLowerInvariant())));

    private string Suggest(string name)
    {
        var close = _ordered.Select(e => (e.Name, Distance: Levenshtein(name.ToLowerInvariant(), e.Name.ToLowerInvariant())))
            .Where(x => x.Distance <= Math.Max(2, name.Length / 3) || x.Name.Contains(name, StringComparison.OrdinalIgnoreCase))
            .OrderBy(x => x.Distance).Take(5).Select(x => x.Name).ToList();
        return close.Count == 0 ? "" : $" Did you mean: {string.Join(", ", close)}?";
    }

    private static int Levenshtein(string a, string b)
    {
        var d = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++) d[j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            int prev = d[0];
            d[0] = i;
            for (int j = 1; j <= b.Length; j++)
            {
                int tmp = d[j];
                d[j] = Math.Min(Math.Min(d[j] + 1, d[j - 1] + 1), prev + (a[i - 1] == b[j - 1] ? 0 : 1));
                prev = tmp;
            }
        }
        return d[b.Length];
    }
}
