using System.Text.Json;
using nietras.SeparatedValues;

namespace ModelZoo.Data;

/// <summary>Labelled texts: from CSV/TSV, JSON Lines or Parquet columns, or a loader such as <see cref="SpamAssassin"/>.</summary>
public sealed class TextDataset : Dataset<TextSample>
{
    private readonly Func<int, string> _text;
    private readonly Func<int, string> _describe;
    private readonly int[] _labels;
    private readonly string[] _classes;
    private readonly string _source;

    internal TextDataset(int[] labels, string[] classes, string source, Func<int, string> text, Func<int, string>? describe = null, IReadOnlyList<string>? emptySkipped = null)
    {
        EmptyTextsSkipped = emptySkipped ?? [];
        _labels = labels;
        _classes = classes;
        _source = source;
        _text = text;
        _describe = describe ?? (i => $"{source} row {i + 1}");
    }

    /// <summary>A dataset over texts held in memory.</summary>
    public static TextDataset FromTexts(IReadOnlyList<string> texts, IReadOnlyList<int> labels, IReadOnlyList<string> classNames, string source = "memory")
    {
        if (texts.Count != labels.Count) throw new ArgumentException("texts and labels differ in length.");
        var t = texts.ToArray();
        return new TextDataset(labels.ToArray(), classNames.ToArray(), source, i => t[i]);
    }

    /// <summary>Rows whose text was empty or only white space; they are left out of the dataset (skip and count), each named as "&lt;file&gt; row N" (or "line N").</summary>
    public IReadOnlyList<string> EmptyTextsSkipped { get; }

    // Rows with an empty text are dropped (a classifier would learn its label from [CLS][SEP] alone) and listed;
    // `row(i)` names data row i for messages. Labels are indexed over the rows kept.
    private static TextDataset FromPairs(List<string> texts, List<string> raw, string source, Func<int, string>? row = null, string[]? knownNames = null)
    {
        row ??= i => $"{source} row {i + 1}";
        if (texts.Count == 0) throw new InvalidDataException($"No rows in {source}.");
        var keep = Enumerable.Range(0, texts.Count).Where(i => !string.IsNullOrWhiteSpace(texts[i])).ToArray();
        var skipped = Enumerable.Range(0, texts.Count).Where(i => string.IsNullOrWhiteSpace(texts[i])).Select(row).ToList();
        if (keep.Length == 0) throw new InvalidDataException($"{source}: all {texts.Count} texts are empty. Check the text column name.");
        var (labels, names) = Labels.Index(keep.Select(i => raw[i]).ToList(), source, knownNames, i => row(keep[i]));
        var t = keep.Select(i => texts[i]).ToArray();
        return new TextDataset(labels, names, source, i => t[i], i => row(keep[i]), skipped);
    }

    /// <summary>Reads a CSV/TSV (separator detected from the header) with a text column and a label column.</summary>
    public static TextDataset FromCsv(string path, string text = "text", string label = "label")
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Text file not found: {Path.GetFullPath(path)}", path);
        var texts = new List<string>();
        var raw = new List<string>();
        try
        {
            using var reader = Sep.Reader(o => o with { Unescape = true }).FromFile(path);
            var cols = reader.Header.ColNames;
            foreach (var c in new[] { text, label })
                if (!cols.Contains(c))
                    throw new InvalidDataException($"{path} has no column '{c}' (columns: {string.Join(", ", cols)}). Pass text:/label: column names.");
            foreach (var row in reader)
            {
                texts.Add(row[text].ToString());
                raw.Add(row[label].ToString().Trim());
            }
        }
        catch (Exception e) when (e is InvalidDataException or ArgumentException && !e.Message.Contains(path, StringComparison.Ordinal))
        {
            // Sep's own errors (ragged rows, unterminated quotes, a column name found twice in the header) do not name the file.
            throw new InvalidDataException($"{path}: malformed CSV: {e.Message}", e);
        }
        var fullCsv = Path.GetFullPath(path);
        return FromPairs(texts, raw, fullCsv, i => $"{fullCsv} row {i + 1} (line {i + 2})");
    }

    /// <summary>Reads JSON Lines: one object per line with a string <paramref name="text"/> field and a string or integer
    /// <paramref name="label"/> field. Blank lines are ignored.</summary>
    public static TextDataset FromJsonl(string path, string text = "text", string label = "label")
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Text file not found: {Path.GetFullPath(path)}", path);
        var texts = new List<string>();
        var raw = new List<string>();
        var lines = new List<int>();
        var lineNo = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            JsonDocument doc;
            try { doc = JsonDocument.Parse(line); }
            catch (JsonException e) { throw new InvalidDataException($"{path} line {lineNo}: not valid JSON ({e.Message})."); }
            using (doc)
            {
                if (doc.RootElement.ValueKind != JsonValueKind.Object)
                    throw new InvalidDataException($"{path} line {lineNo}: expected a JSON object with fields '{text}' and '{label}', found a {doc.RootElement.ValueKind}.");
                if (!doc.RootElement.TryGetProperty(text, out var t) || !doc.RootElement.TryGetProperty(label, out var l))
                    throw new InvalidDataException($"{path} line {lineNo}: needs fields '{text}' and '{label}'.");
                texts.Add(t.ValueKind == JsonValueKind.String ? t.GetString()! : t.ValueKind == JsonValueKind.Null ? "" : t.GetRawText());
                lines.Add(lineNo);
                raw.Add(l.ValueKind == JsonValueKind.String ? l.GetString()! : l.GetRawText());
            }
        }
        var full = Path.GetFullPath(path);
        return FromPairs(texts, raw, full, i => $"{full} line {lines[i]}");
    }

    /// <summary>Reads a text column and a label column from Parquet files (a file or a glob such as <c>train-*.parquet</c>).
    /// Texts are held in memory.</summary>
    public static TextDataset FromParquet(string pattern, string text = "text", string label = "label") =>
        FromParquetAsync(pattern, text, label).GetAwaiter().GetResult();

    private static async Task<TextDataset> FromParquetAsync(string pattern, string text, string label)
    {
        var texts = new List<string>();
        var raw = new List<string>();
        string[]? hf = null;
        foreach (var file in ParquetSupport.Glob(pattern))
        {
            await using var reader = await ParquetSupport.OpenAsync(file).ConfigureAwait(false);
            hf ??= ParquetSupport.HuggingFaceClassNames(reader, label);
            await ParquetSupport.Guard(file, async () =>
            {
                var tf = ParquetSupport.FindField(reader.Schema, text, file);
                var lf = ParquetSupport.FindField(reader.Schema, label, file);
                for (var g = 0; g < reader.RowGroupCount; g++)
                {
                    ParquetSupport.CheckRowGroup(reader, g, file);
                    using var rg = reader.OpenRowGroupReader(g);
                    var t = await ParquetSupport.ReadStrings(rg, tf, file).ConfigureAwait(false);
                    var l = await ParquetSupport.ReadStrings(rg, lf, file).ConfigureAwait(false);
                    if (t.Length != l.Length) throw new InvalidDataException($"{file}: row group {g} has {t.Length} texts but {l.Length} labels.");
                    texts.AddRange(t);
                    raw.AddRange(l);
                }
                return true;
            }).ConfigureAwait(false);
        }
        if (texts.Count == 0) throw new InvalidDataException($"No rows in {pattern}.");
        return FromPairs(texts, raw, pattern, null, hf);
    }

    /// <inheritdoc />
    public override int Count => _labels.Length;

    /// <inheritdoc />
    public override IReadOnlyList<string> ClassNames => _classes;

    /// <inheritdoc />
    public override string Source => _source;

    /// <inheritdoc />
    public override int LabelOf(int index) => _labels[index];

    /// <inheritdoc />
    public override string Describe(int index) => _describe(index);

    /// <inheritdoc />
    protected override TextSample GetCore(int index, Random rng) => new(_text(index), _labels[index]);
}

/// <summary>Tokenization and batching helpers for text datasets (the tokenizer is any <c>string → int[]</c> function).</summary>
public static class TextBatching
{
    /// <summary>Tokenizes each text lazily with <paramref name="tokenize"/>, truncating to <paramref name="maxLength"/> tokens.</summary>
    public static IDataset<TokenizedSample> Tokenize(this IDataset<TextSample> dataset, Func<string, int[]> tokenize, int maxLength = 512) =>
        dataset.Map(s =>
        {
            var ids = tokenize(s.Text);
            return new TokenizedSample(ids.Length > maxLength ? ids[..maxLength] : ids, s.Label);
        });

    /// <summary>A loader that pads each batch to its longest sequence with <paramref name="padId"/> and, when shuffling,
    /// groups texts of similar length (length bucketing by character count) to keep padding small.</summary>
    public static DataLoader Loader(IDataset<TextSample> texts, Func<string, int[]> tokenize, int padId, int batchSize = 32, bool shuffle = true,
        int seed = 0, int maxLength = 512, bool bucketByLength = true, int workers = 0)
    {
        // Text lengths (characters) are computed once, in parallel, the first time an epoch is planned.
        int[]? lengths = null;
        int LengthOf(int i)
        {
            lengths ??= ParallelEnumerable.Range(0, texts.Count).AsOrdered().Select(j => texts.Get(j, new Random(0)).Text.Length).ToArray();
            return lengths[i];
        }
        var options = new DataLoaderOptions
        {
            BatchSize = batchSize, Shuffle = shuffle, Seed = seed, Workers = workers,
            LengthOf = bucketByLength ? LengthOf : null,
        };
        return new DataLoader(texts.Tokenize(tokenize, maxLength), padId, options);
    }
}
