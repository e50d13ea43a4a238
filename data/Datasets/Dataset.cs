namespace ModelZoo.Data;

/// <summary>
/// The shape every dataset shares: a fixed number of items addressed by index, each with an integer class label that
/// can be read without loading the item, and the class names behind those labels.
/// </summary>
/// <typeparam name="T">Item type: an <see cref="ImageSample"/>, a <see cref="TextSample"/>, a transformed tensor...</typeparam>
public interface IDataset<out T>
{
    /// <summary>Number of items.</summary>
    int Count { get; }

    /// <summary>Class names, indexed by label.</summary>
    IReadOnlyList<string> ClassNames { get; }

    /// <summary>Where the data comes from (folder, file or pattern), for messages.</summary>
    string Source { get; }

    /// <summary>Item <paramref name="index"/>, with random transforms drawn from a generator seeded by the index.</summary>
    T this[int index] { get; }

    /// <summary>Item <paramref name="index"/>, with random transforms drawn from <paramref name="rng"/>.</summary>
    T Get(int index, Random rng);

    /// <summary>Label of item <paramref name="index"/> (cheap: never decodes the item).</summary>
    int LabelOf(int index);

    /// <summary>A name for item <paramref name="index"/> (file path, row), used when an item cannot be read.</summary>
    string Describe(int index);
}

/// <summary>Base class with the defaults most datasets share.</summary>
public abstract class Dataset<T> : IDataset<T>
{
    /// <inheritdoc />
    public abstract int Count { get; }

    /// <inheritdoc />
    public abstract IReadOnlyList<string> ClassNames { get; }

    /// <inheritdoc />
    public abstract string Source { get; }

    /// <inheritdoc />
    public T this[int index] => Get(index, new Random(index));

    /// <inheritdoc />
    public T Get(int index, Random rng)
    {
        if ((uint)index >= (uint)Count)
            throw new ArgumentOutOfRangeException(nameof(index), $"Index {index} is outside {Source} ({Count} items).");
        return GetCore(index, rng);
    }

    /// <summary>Reads item <paramref name="index"/> (already range-checked).</summary>
    protected abstract T GetCore(int index, Random rng);

    /// <inheritdoc />
    public abstract int LabelOf(int index);

    /// <inheritdoc />
    public virtual string Describe(int index) => $"{Source}#{index}";
}

/// <summary>Datasets whose items live in chunks that are expensive to open one item at a time (Parquet row groups).
/// The loader shuffles chunk order and items within a chunk, so only a few chunks are held in memory at once.</summary>
public interface IChunkedDataset
{
    /// <summary>Chunk that item <paramref name="index"/> lives in.</summary>
    int ChunkOf(int index);
}

/// <summary>A dataset view over another one (Map, Subset): lets the loader see chunking through wrappers.</summary>
internal interface IDatasetView
{
    object Inner { get; }
    int InnerIndex(int index);
}

internal static class Chunking
{
    /// <summary>The chunk-of-index function of <paramref name="dataset"/> or of the dataset it wraps; null when not chunked.</summary>
    public static Func<int, int>? Of(object dataset) => dataset switch
    {
        IChunkedDataset c => c.ChunkOf,
        IDatasetView v when Of(v.Inner) is { } inner => i => inner(v.InnerIndex(i)),
        _ => null,
    };
}

/// <summary>How many items each class has.</summary>
/// <param name="ClassNames">Class names.</param>
/// <param name="Counts">Items per class.</param>
public sealed record ClassBalance(IReadOnlyList<string> ClassNames, int[] Counts)
{
    /// <summary>Total number of items.</summary>
    public int Total => Counts.Sum();

    /// <summary>Largest class count divided by the smallest non-zero one (1 = balanced).</summary>
    public double ImbalanceRatio
    {
        get
        {
            var nz = Counts.Where(c => c > 0).ToArray();
            return nz.Length == 0 ? 1 : (double)nz.Max() / nz.Min();
        }
    }

    /// <summary>One line per class: name, count and share.</summary>
    public override string ToString()
    {
        var total = Math.Max(1, Total);
        var width = ClassNames.Count == 0 ? 0 : ClassNames.Max(n => n.Length);
        var lines = ClassNames.Select((n, i) =>
            $"{n.PadRight(width)}  {Counts[i],8}  {100.0 * Counts[i] / total,6:0.0}%");
        return string.Join(Environment.NewLine, lines.Append($"{"total".PadRight(width)}  {Total,8}  (max/min {ImbalanceRatio:0.00})"));
    }
}

/// <summary>Operations every dataset gets: splits, subsets, transforms and a class-balance summary.</summary>
public static class DatasetExtensions
{
    /// <summary>Applies <paramref name="transform"/> to every item lazily (when the item is read).</summary>
    public static IDataset<TOut> Map<TIn, TOut>(this IDataset<TIn> dataset, Func<TIn, Random, TOut> transform) =>
        new MappedDataset<TIn, TOut>(dataset, transform);

    /// <summary>Applies a deterministic <paramref name="transform"/> to every item lazily.</summary>
    public static IDataset<TOut> Map<TIn, TOut>(this IDataset<TIn> dataset, Func<TIn, TOut> transform) =>
        new MappedDataset<TIn, TOut>(dataset, (x, _) => transform(x));

    /// <summary>Applies a transform pipeline to every item lazily.</summary>
    public static IDataset<TOut> Map<TIn, TOut>(this IDataset<TIn> dataset, ITransform<TIn, TOut> transform) =>
        new MappedDataset<TIn, TOut>(dataset, transform.Apply);

    /// <summary>Runs an image pipeline on every item lazily (decode, transforms, normalize).</summary>
    public static IDataset<ImageTensor> Map(this IDataset<ImageSample> dataset, VisionPipeline pipeline) =>
        new MappedDataset<ImageSample, ImageTensor>(dataset, pipeline.Apply);

    /// <summary>The items at <paramref name="indices"/>, in that order.</summary>
    public static IDataset<T> Subset<T>(this IDataset<T> dataset, IReadOnlyList<int> indices) =>
        new SubsetDataset<T>(dataset, indices);

    /// <summary>Counts items per class (labels only; nothing is decoded).</summary>
    public static ClassBalance ClassBalance<T>(this IDataset<T> dataset)
    {
        var counts = new int[dataset.ClassNames.Count];
        for (var i = 0; i < dataset.Count; i++)
        {
            var l = dataset.LabelOf(i);
            if ((uint)l < (uint)counts.Length) counts[l]++;
        }
        return new ClassBalance(dataset.ClassNames, counts);
    }

    /// <summary>
    /// Splits into train and validation parts. With <paramref name="stratified"/>, each class contributes
    /// round(<paramref name="valFraction"/> × its count) items to validation (at least one when the class has two or more),
    /// so both parts keep the class balance. The same seed always gives the same split.
    /// </summary>
    public static (IDataset<T> Train, IDataset<T> Val) Split<T>(this IDataset<T> dataset, double valFraction, bool stratified = true, int seed = 42)
    {
        if (valFraction is <= 0 or >= 1)
            throw new ArgumentOutOfRangeException(nameof(valFraction), $"valFraction must be in (0, 1), got {valFraction}.");
        var rng = new Random(seed);
        var train = new List<int>();
        var val = new List<int>();
        if (stratified)
        {
            var byClass = new Dictionary<int, List<int>>();
            for (var i = 0; i < dataset.Count; i++)
            {
                var l = dataset.LabelOf(i);
                if (!byClass.TryGetValue(l, out var list)) byClass[l] = list = [];
                list.Add(i);
            }
            foreach (var label in byClass.Keys.Order())
            {
                var idx = byClass[label].ToArray();
                rng.Shuffle(idx);
                var nVal = (int)Math.Round(valFraction * idx.Length, MidpointRounding.AwayFromZero);
                if (nVal == 0 && idx.Length >= 2) nVal = 1;
                if (nVal == idx.Length && idx.Length >= 2) nVal = idx.Length - 1;
                val.AddRange(idx.Take(nVal));
                train.AddRange(idx.Skip(nVal));
            }
            train.Sort();
            val.Sort();
        }
        else
        {
            var idx = Enumerable.Range(0, dataset.Count).ToArray();
            rng.Shuffle(idx);
            var nVal = (int)Math.Round(valFraction * idx.Length, MidpointRounding.AwayFromZero);
            val.AddRange(idx.Take(nVal).Order());
            train.AddRange(idx.Skip(nVal).Order());
        }
        return (dataset.Subset(train), dataset.Subset(val));
    }
}

internal sealed class MappedDataset<TIn, TOut>(IDataset<TIn> inner, Func<TIn, Random, TOut> f) : Dataset<TOut>, IDatasetView
{
    public override int Count => inner.Count;
    public override IReadOnlyList<string> ClassNames => inner.ClassNames;
    public override string Source => inner.Source;
    protected override TOut GetCore(int index, Random rng) => f(inner.Get(index, rng), rng);
    public override int LabelOf(int index) => inner.LabelOf(index);
    public override string Describe(int index) => inner.Describe(index);
    public object Inner => inner;
    public int InnerIndex(int index) => index;
}

internal sealed class SubsetDataset<T>(IDataset<T> inner, IReadOnlyList<int> indices) : Dataset<T>, IDatasetView
{
    public object Inner => inner;
    public int InnerIndex(int index) => indices[index];
    public override int Count => indices.Count;
    public override IReadOnlyList<string> ClassNames => inner.ClassNames;
    public override string Source => inner.Source;
    protected override T GetCore(int index, Random rng) => inner.Get(indices[index], rng);
    public override int LabelOf(int index) => inner.LabelOf(indices[index]);
    public override string Describe(int index) => inner.Describe(indices[index]);
}

/// <summary>A step that turns one item into another, drawing any randomness from the given generator.</summary>
public interface ITransform<in TIn, out TOut>
{
    /// <summary>Transforms <paramref name="input"/>.</summary>
    TOut Apply(TIn input, Random rng);
}
