using System.Text.Json;
using Parquet;
using Parquet.Schema;

namespace ModelZoo.Data;

/// <summary>Glob patterns (<c>*</c>, <c>?</c> in the file name) and Parquet column reading shared by the readers.</summary>
internal static class ParquetSupport
{
    public static string[] Glob(string pattern)
    {
        if (File.Exists(pattern)) return [Path.GetFullPath(pattern)];
        var dir = Path.GetDirectoryName(pattern);
        dir = string.IsNullOrEmpty(dir) ? "." : dir;
        var name = Path.GetFileName(pattern);
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"Folder not found for '{pattern}': {Path.GetFullPath(dir)}");
        if (!name.Contains('*') && !name.Contains('?')) throw new FileNotFoundException($"File not found: {Path.GetFullPath(pattern)}", pattern);
        var files = Directory.GetFiles(dir, name).Select(Path.GetFullPath).Order(StringComparer.Ordinal).ToArray();
        if (files.Length == 0) throw new FileNotFoundException($"No files match '{pattern}' in {Path.GetFullPath(dir)}.");
        return files;
    }

    /// <summary>Most rows one row group may have here (readers allocate arrays of this many values up front).</summary>
    public const long MaxRowsPerRowGroup = 1L << 22;

    /// <summary>
    /// Opens <paramref name="file"/> with Parquet.Net after checking what Parquet.Net trusts: "PAR1" at both ends, a footer
    /// length that fits in the file, and the footer's Thrift encoding (<see cref="ParquetFooterCheck"/>). Parquet.Net reads
    /// through a stream that throws at the end of the file (its Thrift reader would otherwise loop forever) and stops
    /// after reading the file 8 times over (a page chain that does not advance).
    /// </summary>
    public static Task<ParquetReader> OpenAsync(string file) => Guard(file, async () =>
    {
        var fs = File.OpenRead(file);
        try
        {
            var head = new byte[4];
            var tail = new byte[8];
            if (fs.Length < 12 || await fs.ReadAtLeastAsync(head, 4, false).ConfigureAwait(false) < 4 || !head.AsSpan().SequenceEqual("PAR1"u8))
                throw new InvalidDataException($"{file} is not a Parquet file (it does not start with 'PAR1'); re-download or re-export it.");
            fs.Position = fs.Length - 8;
            await fs.ReadExactlyAsync(tail).ConfigureAwait(false);
            if (!tail.AsSpan(4).SequenceEqual("PAR1"u8))
                throw new InvalidDataException($"{file} is truncated: a Parquet file ends with 'PAR1' (re-download or re-export it).");
            long footerLength = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(tail);
            if (footerLength == 0 || footerLength > fs.Length - 12)
                throw new InvalidDataException($"{file} is corrupt: its footer claims {footerLength} bytes but the file has {fs.Length} (re-download or re-export it).");
            var footer = new byte[footerLength];
            fs.Position = fs.Length - 8 - footerLength;
            await fs.ReadExactlyAsync(footer).ConfigureAwait(false);
            ParquetFooterCheck.CheckFileMetaData(footer, file);
            fs.Position = 0;
            var guarded = new BoundedReadStream(fs, file, 8 * fs.Length + (1 << 20));
            fs = null!;
            return await ParquetReader.CreateAsync(guarded).ConfigureAwait(false);
        }
        finally
        {
            if (fs is not null) await fs.DisposeAsync().ConfigureAwait(false);
        }
    });

    /// <summary>
    /// Checks every page header of row group <paramref name="index"/> before Parquet.Net reads them (sizes inside the file,
    /// decompressed sizes a codec can reach, data pages that hold values) and bounds its row count.
    /// </summary>
    public static void CheckRowGroup(ParquetReader reader, int index, string file)
    {
        var meta = reader.Metadata ?? throw new InvalidDataException($"{file} has no metadata.");
        if (meta.RowGroups is null || index >= meta.RowGroups.Count) throw new InvalidDataException($"{file} has no row group {index}.");
        var rg = meta.RowGroups[index];
        if (rg.NumRows < 0 || rg.NumRows > MaxRowsPerRowGroup)
            throw new InvalidDataException($"{file}: row group {index} claims {rg.NumRows} rows; at most {MaxRowsPerRowGroup} per row group are read (rewrite the file with smaller row groups).");
        using var fs = File.OpenRead(file);
        long end = fs.Length - 8;
        foreach (var chunk in rg.Columns ?? [])
        {
            var md = chunk.MetaData ?? throw new InvalidDataException($"{file}: row group {index} has a column without metadata.");
            if (md.NumValues < 0 || md.NumValues > MaxRowsPerRowGroup * 16)
                throw new InvalidDataException($"{file}: row group {index} claims {md.NumValues} values in one column.");
            long offset = new[] { md.DictionaryPageOffset ?? 0, md.DataPageOffset, md.IndexPageOffset ?? 0 }.Where(o => o != 0).DefaultIfEmpty(0).Min();
            long values = 0;
            for (int pages = 0; values < md.NumValues; pages++)
            {
                if (offset < 4 || offset >= end || pages > end)
                    throw new InvalidDataException($"{file}: row group {index} has a page at byte {offset}, outside the file's data (the file is corrupt; re-download or re-export it).");
                var h = ReadPageHeader(fs, offset, end, file);
                if (h.Compressed < 0 || h.Uncompressed < 0 || offset + h.Length + h.Compressed > end)
                    throw new InvalidDataException($"{file}: the page at byte {offset} claims {h.Compressed} bytes, beyond the end of the file (it is truncated or corrupt).");
                long most = md.Codec == Parquet.Meta.CompressionCodec.UNCOMPRESSED ? h.Compressed : h.Compressed * 1100 + (16 << 20);
                if (h.Uncompressed > most)
                    throw new InvalidDataException($"{file}: the page at byte {offset} claims {h.Uncompressed} bytes once decompressed from {h.Compressed} ({md.Codec}); the file is corrupt.");
                if (h.Type is 0 or 3)
                {
                    if (h.Values <= 0) throw new InvalidDataException($"{file}: the data page at byte {offset} holds {h.Values} values (the file is corrupt).");
                    values += h.Values;
                }
                else if (h.Type != 2) throw new InvalidDataException($"{file}: the page at byte {offset} has page type {h.Type}, which cannot be read.");
                offset += h.Length + h.Compressed;
            }
        }
    }

    private static (int Length, long Type, long Uncompressed, long Compressed, long Values) ReadPageHeader(FileStream fs, long offset, long end, string file)
    {
        for (long size = 64 << 10; ; size *= 16)
        {
            var buf = new byte[Math.Min(size, end - offset)];
            fs.Position = offset;
            fs.ReadExactly(buf);
            try
            {
                return ParquetFooterCheck.CheckPageHeader(buf, file, offset);
            }
            catch (InvalidDataException) when (buf.Length < end - offset && size < (16 << 20))
            {
                // A header with large statistics: read more.
            }
        }
    }

    /// <summary>
    /// Runs a Parquet.Net read of <paramref name="file"/>; the exceptions it throws for malformed data (Thrift, decoding,
    /// decompression, index and cast errors) become an <see cref="InvalidDataException"/> naming the file.
    /// </summary>
    public static async Task<T> Guard<T>(string file, Func<Task<T>> read)
    {
        try
        {
            return await read().ConfigureAwait(false);
        }
        catch (Exception e) when (e is not (FileNotFoundException or DirectoryNotFoundException or UnauthorizedAccessException
                                      or OperationCanceledException or OutOfMemoryException)
                                  && !(e is InvalidDataException && e.Message.Contains(file, StringComparison.Ordinal)))
        {
            throw new InvalidDataException($"{file} is not a readable Parquet file ({e.GetType().Name}: {e.Message}); re-download or re-export it.", e);
        }
    }

    /// <summary>The leaf column for <paramref name="column"/>: a plain column, or the <c>bytes</c>/<c>text</c> member of a struct.</summary>
    public static DataField FindField(ParquetSchema schema, string column, string file, params string[] structMembers)
    {
        foreach (var f in schema.GetDataFields())
        {
            var parts = f.Path.ToList();
            if (parts.Count == 1 && parts[0] == column) return f;
            if (parts.Count == 2 && parts[0] == column && structMembers.Contains(parts[1])) return f;
        }
        var names = schema.GetDataFields().Select(f => string.Join(".", f.Path.ToList()));
        throw new InvalidDataException($"{file} has no column '{column}' (columns: {string.Join(", ", names)}).");
    }

    public static async Task<string[]> ReadStrings(ParquetRowGroupReader rg, DataField field, string file)
    {
        var n = (int)rg.RowCount;
        var t = field.ClrType;
        if (t == typeof(string) || t == typeof(ReadOnlyMemory<char>))
        {
            var s = new string?[n];
            await rg.ReadAsync(field, s.AsMemory()).ConfigureAwait(false);
            return s.Select(x => x ?? "").ToArray();
        }
        if (t == typeof(long)) return (await Read<long>(rg, field, n)).Select(v => v.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        if (t == typeof(int)) return (await Read<int>(rg, field, n)).Select(v => v.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        if (t == typeof(short)) return (await Read<short>(rg, field, n)).Select(v => v.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        if (t == typeof(sbyte)) return (await Read<sbyte>(rg, field, n)).Select(v => v.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        if (t == typeof(byte)) return (await Read<byte>(rg, field, n)).Select(v => v.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        if (t == typeof(bool)) return (await Read<bool>(rg, field, n)).Select(v => v ? "1" : "0").ToArray();
        throw new InvalidDataException($"{file}: column '{string.Join(".", field.Path.ToList())}' has type {t.Name}; expected integers or strings.");
    }

    private static async Task<T[]> Read<T>(ParquetRowGroupReader rg, DataField field, int n) where T : struct
    {
        if (field.IsNullable)
        {
            var v = new T?[n];
            await rg.ReadAsync(field, v.AsMemory()).ConfigureAwait(false);
            return v.Select(x => x ?? default).ToArray();
        }
        var a = new T[n];
        await rg.ReadAsync(field, a.AsMemory()).ConfigureAwait(false);
        return a;
    }

    public static async Task<byte[]?[]> ReadBytes(ParquetRowGroupReader rg, DataField field)
    {
        var b = new byte[]?[(int)rg.RowCount];
        await rg.ReadAsync(field, b.AsMemory()!).ConfigureAwait(false);
        return b;
    }

    /// <summary>Class names from the Hugging Face datasets metadata (<c>huggingface</c> key → info.features.&lt;col&gt;.names).</summary>
    public static string[]? HuggingFaceClassNames(ParquetReader reader, string labelColumn)
    {
        if (!reader.CustomMetadata.TryGetValue("huggingface", out var json)) return null;
        try
        {
            using var doc = JsonDocument.Parse(json);
            if (doc.RootElement.TryGetProperty("info", out var info) && info.TryGetProperty("features", out var feats) &&
                feats.TryGetProperty(labelColumn, out var col) && col.TryGetProperty("names", out var names))
                return names.EnumerateArray().Select(e => e.GetString() ?? "").ToArray();
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            // Malformed metadata: fall back to the label values themselves.
        }
        return null;
    }
}

/// <summary>
/// Images stored in Parquet files in the Hugging Face datasets layout: an <c>image</c> struct column
/// {<c>bytes</c>, <c>path</c>} (or a plain binary column) and an integer or string <c>label</c> column. Only labels are
/// read up front; image bytes are read one row group at a time and a few row groups are cached, so memory stays
/// bounded however large the files are. The loader shuffles row groups and rows within them (see
/// <see cref="IChunkedDataset"/>); a fully random order over a dataset larger than the cache re-reads row groups.
/// </summary>
public sealed class ParquetImages : Dataset<ImageSample>, IChunkedDataset
{
    private readonly string[] _files;
    private readonly (int File, int RowGroup, int Start, int Count)[] _groups;
    private readonly int[] _labels;
    private readonly string[] _classes;
    private readonly string _pattern;
    private readonly string _imageColumn;
    private readonly RowGroupCache _cache;

    private ParquetImages(string pattern, string[] files, (int, int, int, int)[] groups, int[] labels, string[] classes, string imageColumn, int cacheRowGroups)
    {
        _pattern = pattern;
        _files = files;
        _groups = groups;
        _labels = labels;
        _classes = classes;
        _imageColumn = imageColumn;
        _cache = new RowGroupCache(Math.Max(1, cacheRowGroups));
    }

    /// <summary>Opens the files matching <paramref name="pattern"/> (e.g. <c>data/train-*.parquet</c>), in name order.</summary>
    /// <param name="pattern">A file or a glob in the file name.</param>
    /// <param name="imageColumn">Image column (struct with <c>bytes</c>, or binary).</param>
    /// <param name="labelColumn">Label column (integers or strings).</param>
    /// <param name="cacheRowGroups">Row groups kept in memory (about one per worker is enough with chunked shuffling).</param>
    public static ParquetImages Open(string pattern, string imageColumn = "image", string labelColumn = "label", int cacheRowGroups = 8) =>
        OpenAsync(pattern, imageColumn, labelColumn, cacheRowGroups).GetAwaiter().GetResult();

    private static async Task<ParquetImages> OpenAsync(string pattern, string imageColumn, string labelColumn, int cacheRowGroups)
    {
        var files = ParquetSupport.Glob(pattern);
        var groups = new List<(int, int, int, int)>();
        var raw = new List<string>();
        string[]? hfNames = null;
        for (var fi = 0; fi < files.Length; fi++)
        {
            var file = files[fi];
            await using var reader = await ParquetSupport.OpenAsync(file).ConfigureAwait(false);
            hfNames ??= ParquetSupport.HuggingFaceClassNames(reader, labelColumn);
            await ParquetSupport.Guard(file, async () =>
            {
                ParquetSupport.FindField(reader.Schema, imageColumn, file, "bytes");
                var labelField = ParquetSupport.FindField(reader.Schema, labelColumn, file);
                for (var g = 0; g < reader.RowGroupCount; g++)
                {
                    ParquetSupport.CheckRowGroup(reader, g, file);
                    using var rg = reader.OpenRowGroupReader(g);
                    var labels = await ParquetSupport.ReadStrings(rg, labelField, file).ConfigureAwait(false);
                    if (labels.Length != rg.RowCount) throw new InvalidDataException($"{file}: row group {g} has {labels.Length} labels for {rg.RowCount} rows.");
                    groups.Add((fi, g, raw.Count, labels.Length));
                    raw.AddRange(labels);
                }
                return true;
            }).ConfigureAwait(false);
        }
        if (raw.Count == 0) throw new InvalidDataException($"No rows in {pattern} ({files.Length} files).");
        var (idx, names) = Labels.Index(raw, pattern, hfNames);
        return new ParquetImages(pattern, files, groups.ToArray(), idx, names, imageColumn, cacheRowGroups);
    }

    /// <summary>Parquet files read.</summary>
    public IReadOnlyList<string> Files => _files;

    /// <summary>Number of row groups over all files.</summary>
    public int RowGroups => _groups.Length;

    /// <inheritdoc />
    public override int Count => _labels.Length;

    /// <inheritdoc />
    public override IReadOnlyList<string> ClassNames => _classes;

    /// <inheritdoc />
    public override string Source => _pattern;

    /// <inheritdoc />
    public override int LabelOf(int index) => _labels[index];

    /// <inheritdoc />
    public int ChunkOf(int index)
    {
        int lo = 0, hi = _groups.Length - 1;
        while (lo < hi)
        {
            var mid = (lo + hi + 1) / 2;
            if (_groups[mid].Start <= index) lo = mid; else hi = mid - 1;
        }
        return lo;
    }

    /// <inheritdoc />
    public override string Describe(int index)
    {
        var g = _groups[ChunkOf(index)];
        return $"{_files[g.File]} row group {g.RowGroup} row {index - g.Start}";
    }

    /// <inheritdoc />
    protected override ImageSample GetCore(int index, Random rng)
    {
        var gi = ChunkOf(index);
        var g = _groups[gi];
        var rows = _cache.Get(gi, () => ReadGroup(g.File, g.RowGroup));
        var bytes = rows[index - g.Start];
        if (bytes is null || bytes.Length == 0) throw new InvalidDataException($"Empty image in {Describe(index)}.");
        return new ImageSample(ImageSource.FromBytes(bytes, Describe(index)), _labels[index]);
    }

    private byte[]?[] ReadGroup(int file, int rowGroup) => Task.Run(async () =>
    {
        var path = _files[file];
        await using var reader = await ParquetSupport.OpenAsync(path).ConfigureAwait(false);
        return await ParquetSupport.Guard(path, async () =>
        {
            var field = ParquetSupport.FindField(reader.Schema, _imageColumn, path, "bytes");
            if (rowGroup >= reader.RowGroupCount) throw new InvalidDataException($"{path} has {reader.RowGroupCount} row groups, no longer {rowGroup + 1}: it changed since it was opened.");
            ParquetSupport.CheckRowGroup(reader, rowGroup, path);
            using var rg = reader.OpenRowGroupReader(rowGroup);
            var rows = await ParquetSupport.ReadBytes(rg, field).ConfigureAwait(false);
            var g = _groups.First(x => x.File == file && x.RowGroup == rowGroup);
            if (rows.Length != g.Count) throw new InvalidDataException($"{path}: row group {rowGroup} has {rows.Length} rows, {g.Count} when it was opened: it changed since.");
            return rows;
        }).ConfigureAwait(false);
    }).GetAwaiter().GetResult();

    /// <summary>Row groups read from disk so far (for tests and diagnostics).</summary>
    internal int RowGroupReads => _cache.Misses;
}

/// <summary>
/// A read-only view of a file for Parquet.Net: reading past the end throws (Parquet.Net's Thrift reader takes
/// <c>ReadByte</c>'s -1 as a 0xFF byte and loops), and reading more than a budget in all throws (a page chain that does
/// not advance).
/// </summary>
internal sealed class BoundedReadStream(Stream inner, string file, long budget) : Stream
{
    private long _read;

    private void Count(int n)
    {
        _read += n;
        if (_read > budget) throw new InvalidDataException($"{file} is corrupt: reading it did not finish after {budget} bytes (its pages do not advance); re-download or re-export it.");
    }

    public override int ReadByte()
    {
        int b = inner.ReadByte();
        if (b < 0) throw new InvalidDataException($"{file} is corrupt: a Thrift structure runs past the end of the file (re-download or re-export it).");
        Count(1);
        return b;
    }

    public override int Read(byte[] buffer, int offset, int count)
    {
        int n = inner.Read(buffer, offset, count);
        Count(n);
        return n;
    }

    public override int Read(Span<byte> buffer)
    {
        int n = inner.Read(buffer);
        Count(n);
        return n;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        int n = await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        Count(n);
        return n;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override bool CanRead => true;
    public override bool CanSeek => true;
    public override bool CanWrite => false;
    public override long Length => inner.Length;

    public override long Position
    {
        get => inner.Position;
        set => inner.Position = value;
    }

    public override long Seek(long offset, SeekOrigin origin) => inner.Seek(offset, origin);
    public override void Flush() { }
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing) inner.Dispose();
        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        await inner.DisposeAsync().ConfigureAwait(false);
        await base.DisposeAsync().ConfigureAwait(false);
    }
}

/// <summary>A small LRU cache of row groups; concurrent readers of the same group share one read.</summary>
internal sealed class RowGroupCache(int capacity)
{
    private readonly LinkedList<(int Key, Lazy<byte[]?[]> Value)> _lru = new();
    private readonly object _lock = new();
    private int _misses;

    public int Misses => Volatile.Read(ref _misses);

    public byte[]?[] Get(int key, Func<byte[]?[]> load)
    {
        Lazy<byte[]?[]> lazy;
        lock (_lock)
        {
            var node = _lru.First;
            while (node is not null && node.Value.Key != key) node = node.Next;
            if (node is not null)
            {
                _lru.Remove(node);
                _lru.AddFirst(node);
                lazy = node.Value.Value;
            }
            else
            {
                lazy = new Lazy<byte[]?[]>(load, LazyThreadSafetyMode.ExecutionAndPublication);
                _lru.AddFirst((key, lazy));
                _misses++;
                while (_lru.Count > capacity) _lru.RemoveLast();
            }
        }
        return lazy.Value;
    }
}
