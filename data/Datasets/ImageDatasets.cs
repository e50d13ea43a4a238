using nietras.SeparatedValues;

namespace ModelZoo.Data;

/// <summary>An image dataset whose items are files (or in-memory encoded images) with labels; nothing is decoded
/// until an item is read through a pipeline.</summary>
public class ImageDataset : Dataset<ImageSample>
{
    private readonly ImageSource[] _sources;
    private readonly int[] _labels;
    private readonly string[] _classes;
    private readonly string _source;

    /// <summary>Creates a dataset over the given sources and labels.</summary>
    public ImageDataset(IReadOnlyList<ImageSource> sources, IReadOnlyList<int> labels, IReadOnlyList<string> classNames, string source)
    {
        if (sources.Count != labels.Count) throw new ArgumentException("sources and labels differ in length.");
        _sources = sources.ToArray();
        _labels = labels.ToArray();
        _classes = classNames.ToArray();
        _source = source;
    }

    /// <inheritdoc />
    public override int Count => _sources.Length;

    /// <inheritdoc />
    public override IReadOnlyList<string> ClassNames => _classes;

    /// <inheritdoc />
    public override string Source => _source;

    /// <inheritdoc />
    protected override ImageSample GetCore(int index, Random rng) => new(_sources[index], _labels[index]);

    /// <inheritdoc />
    public override int LabelOf(int index) => _labels[index];

    /// <inheritdoc />
    public override string Describe(int index) => _sources[index].ToString();

    /// <summary>File extensions read by default (Skia's formats).</summary>
    public static readonly string[] DefaultExtensions = [".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif"];
}

/// <summary>A folder with one sub-folder per class (torchvision's ImageFolder layout).</summary>
public static class ImageFolder
{
    /// <summary>
    /// Lists <paramref name="root"/>/&lt;class&gt;/**/*.{jpg,jpeg,png,webp,bmp,gif}. Classes are the sub-folder names in
    /// ordinal order; files are sorted. Nothing is decoded here.
    /// </summary>
    public static ImageDataset Open(string root, IEnumerable<string>? extensions = null)
    {
        if (!Directory.Exists(root))
            throw new DirectoryNotFoundException($"Image folder not found: {Path.GetFullPath(root)}. Pass a folder with one sub-folder per class.");
        var exts = new HashSet<string>(extensions ?? ImageDataset.DefaultExtensions, StringComparer.OrdinalIgnoreCase);
        var classes = Directory.GetDirectories(root).Select(Path.GetFileName).OfType<string>()
            .Where(n => !n.StartsWith('.')).Order(StringComparer.Ordinal).ToArray();
        var sources = new List<ImageSource>();
        var labels = new List<int>();
        var used = new List<string>();
        foreach (var cls in classes)
        {
            var files = Directory.EnumerateFiles(Path.Combine(root, cls), "*", SearchOption.AllDirectories)
                .Where(f => exts.Contains(Path.GetExtension(f))).Order(StringComparer.Ordinal).ToArray();
            if (files.Length == 0) continue;
            foreach (var f in files)
            {
                sources.Add(ImageSource.FromFile(f));
                labels.Add(used.Count);
            }
            used.Add(cls);
        }
        if (sources.Count == 0)
            throw new InvalidDataException(
                $"No images in {Path.GetFullPath(root)}: expected sub-folders (one per class) holding {string.Join("/", exts)} files" +
                (classes.Length == 0 ? ", found no sub-folders." : $", found sub-folders {string.Join(", ", classes.Take(5))} without images."));
        return new ImageDataset(sources, labels, used, Path.GetFullPath(root));
    }
}

/// <summary>A CSV/TSV file of (path, label) rows.</summary>
public static class ImageCsv
{
    /// <summary>
    /// Reads a CSV or TSV (separator detected from the header) with an image-path column and a label column. Relative
    /// paths are resolved against <paramref name="root"/> (default: the file's folder). String labels become classes in
    /// ordinal order; integer labels are used as they are.
    /// </summary>
    public static ImageDataset Open(string csvPath, string? root = null, string pathColumn = "path", string labelColumn = "label")
    {
        if (!File.Exists(csvPath)) throw new FileNotFoundException($"Label file not found: {Path.GetFullPath(csvPath)}", csvPath);
        root ??= Path.GetDirectoryName(Path.GetFullPath(csvPath))!;
        var paths = new List<string>();
        var raw = new List<string>();
        using (var reader = Sep.Reader(o => o with { Unescape = true, Trim = SepTrim.All }).FromFile(csvPath))
        {
            var cols = reader.Header.ColNames;
            foreach (var c in new[] { pathColumn, labelColumn })
                if (!cols.Contains(c))
                    throw new InvalidDataException($"{csvPath} has no column '{c}' (columns: {string.Join(", ", cols)}). Pass pathColumn/labelColumn.");
            foreach (var row in reader)
            {
                paths.Add(row[pathColumn].ToString());
                raw.Add(row[labelColumn].ToString());
            }
        }
        if (paths.Count == 0) throw new InvalidDataException($"No rows in {Path.GetFullPath(csvPath)}.");
        var (labels, names) = Labels.Index(raw, csvPath);
        var sources = paths.Select(p => ImageSource.FromFile(Path.IsPathRooted(p) ? p : Path.Combine(root, p))).ToArray();
        return new ImageDataset(sources, labels, names, Path.GetFullPath(csvPath));
    }
}
