using System.Collections;
using System.Collections.Concurrent;
using System.Threading.Channels;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Data;

/// <summary>An item the loader could not read; it was skipped.</summary>
/// <param name="Index">Dataset index.</param>
/// <param name="Item">File path or row the item comes from.</param>
/// <param name="Error">Why it failed.</param>
public sealed record SkippedItem(int Index, string Item, string Error);

/// <summary>Progress of one epoch.</summary>
/// <param name="Epoch">Epoch number (0-based).</param>
/// <param name="Batch">Batches delivered so far in this epoch.</param>
/// <param name="Batches">Batches this epoch will have (an upper bound when items are skipped).</param>
/// <param name="Items">Items delivered so far.</param>
/// <param name="Skipped">Items skipped so far in this epoch.</param>
public readonly record struct LoaderProgress(int Epoch, int Batch, int Batches, long Items, int Skipped);

/// <summary>Settings of a <see cref="DataLoader"/>.</summary>
public sealed record DataLoaderOptions
{
    /// <summary>Items per batch.</summary>
    public int BatchSize { get; init; } = 32;

    /// <summary>Reshuffle every epoch (seeded by <see cref="Seed"/> and the epoch number).</summary>
    public bool Shuffle { get; init; }

    /// <summary>Parallel workers that read, decode and transform whole batches (0 = one per core).</summary>
    public int Workers { get; init; }

    /// <summary>Finished batches kept ready ahead of the consumer.</summary>
    public int Prefetch { get; init; } = 2;

    /// <summary>Drop the last incomplete batch.</summary>
    public bool DropLast { get; init; }

    /// <summary>Seed for shuffling and for random transforms (each item's generator is seeded by seed, epoch and index).</summary>
    public int Seed { get; init; }

    /// <summary>Copy batches to page-locked memory so host→GPU copies can be asynchronous (no-op without CUDA).</summary>
    public bool PinMemory { get; init; }

    /// <summary>Called on the consumer's thread after each batch.</summary>
    public Action<LoaderProgress>? Progress { get; init; }

    /// <summary>Called (on a worker thread) for each item that cannot be read, e.g. to write it to the run log.</summary>
    public Action<SkippedItem>? OnSkip { get; init; }

    /// <summary>Stops the epoch: enumeration throws <see cref="OperationCanceledException"/>.</summary>
    public CancellationToken Cancellation { get; init; }

    /// <summary>Batch-level transform run on the worker after collation (Mixup/CutMix).</summary>
    public IBatchTransform? BatchTransform { get; init; }

    /// <summary>Length of item i (e.g. text length) for length bucketing: batches then hold items of similar length,
    /// which keeps padding small. Null = no bucketing.</summary>
    public Func<int, int>? LengthOf { get; init; }

    /// <summary>With <see cref="LengthOf"/>: items are sorted by length within windows of this many batches.</summary>
    public int BucketWindow { get; init; } = 50;
}

/// <summary>A transform of whole batches (Mixup, CutMix).</summary>
public interface IBatchTransform
{
    /// <summary>Transforms <paramref name="batch"/>; the result owns its tensors (the input may be disposed).</summary>
    Batch Apply(Batch batch, Random rng);
}

/// <summary>
/// Reads a dataset in mini-batches with parallel workers: each worker reads, decodes and transforms a whole batch and
/// stacks it into tensors; at most <see cref="DataLoaderOptions.Prefetch"/> finished batches wait ahead of the
/// consumer. Batches arrive in order, and the same seed gives the same batches.
/// <para>Ownership: tensors are made on worker threads outside any dispose scope, so a scope on the consumer's side
/// never captures them by accident. Each batch handed out is disposed when the next one is requested, and when the
/// enumeration ends or is abandoned (batches still prefetched are disposed too); call <see cref="Batch.Detach"/> to keep one.</para>
/// <para>Items that throw while being read are skipped, counted and listed in <see cref="Skipped"/>; an epoch never
/// stops because of them. If no item of the dataset can be read, the enumeration throws and names the source.</para>
/// </summary>
public sealed class DataLoader : IEnumerable<Batch>
{
    private Func<IReadOnlyList<int>, int, int, Batch?> _build;
    private readonly int _count;
    private readonly string _source;
    private readonly Func<int, int>? _chunkOf;
    private readonly ConcurrentDictionary<int, SkippedItem> _skipped = new();
    private int _epochSkips;
    private long _liveBatches;

    /// <summary>Loads transformed images (e.g. <c>dataset.Map(VisionTransforms.Train(p))</c>).</summary>
    public DataLoader(IDataset<ImageTensor> dataset, int batchSize = 32, bool shuffle = false, int workers = 0, int prefetch = 2,
        bool dropLast = false, int seed = 0, bool pinMemory = false, IBatchTransform? batchTransform = null)
        : this(dataset, Collate.Images, new DataLoaderOptions
        {
            BatchSize = batchSize, Shuffle = shuffle, Workers = workers, Prefetch = prefetch, DropLast = dropLast, Seed = seed,
            PinMemory = pinMemory, BatchTransform = batchTransform,
        })
    {
    }

    /// <summary>Loads transformed images with full options.</summary>
    public DataLoader(IDataset<ImageTensor> dataset, DataLoaderOptions options) : this(dataset, Collate.Images, options) { }

    /// <summary>Loads token sequences, padded per batch to the longest one with <paramref name="padId"/>.</summary>
    public DataLoader(IDataset<TokenizedSample> dataset, int padId, DataLoaderOptions options)
        : this(dataset, items => Collate.Tokens(items, padId), options)
    {
    }

    private DataLoader(int count, string source, Func<int, int>? chunkOf, DataLoaderOptions options)
    {
        if (options.BatchSize <= 0) throw new ArgumentOutOfRangeException(nameof(options), "BatchSize must be positive.");
        _count = count;
        _source = source;
        _chunkOf = chunkOf;
        Options = options;
        _build = null!;
    }

    private DataLoader(IDataset<ImageTensor> dataset, Func<IReadOnlyList<(int Index, ImageTensor Item)>, Batch> collate, DataLoaderOptions options)
        : this(dataset.Count, dataset.Source, Chunking.Of(dataset), options) => _build = MakeBuild(dataset, collate);

    private DataLoader(IDataset<TokenizedSample> dataset, Func<IReadOnlyList<(int Index, TokenizedSample Item)>, Batch> collate, DataLoaderOptions options)
        : this(dataset.Count, dataset.Source, Chunking.Of(dataset), options) => _build = MakeBuild(dataset, collate);

    /// <summary>A loader over any dataset with a custom collate (items with their dataset indices → batch).</summary>
    public static DataLoader Create<T>(IDataset<T> dataset, Func<IReadOnlyList<(int Index, T Item)>, Batch> collate, DataLoaderOptions options)
    {
        var loader = new DataLoader(dataset.Count, dataset.Source, Chunking.Of(dataset), options);
        loader._build = loader.MakeBuild(dataset, collate);
        return loader;
    }

    /// <summary>The settings.</summary>
    public DataLoaderOptions Options { get; }

    /// <summary>Number of items in the dataset.</summary>
    public int DatasetCount => _count;

    /// <summary>Batches per epoch (before any skipped items).</summary>
    public int BatchesPerEpoch => Options.DropLast ? _count / Options.BatchSize : (_count + Options.BatchSize - 1) / Options.BatchSize;

    /// <summary>The epoch the next enumeration will run (incremented at the start of each enumeration).</summary>
    public int Epoch { get; set; }

    /// <summary>Items that could not be read (over all epochs, once per item).</summary>
    public IReadOnlyCollection<SkippedItem> Skipped => _skipped.Values.OrderBy(s => s.Index).ToArray();

    /// <summary>Number of distinct items that could not be read.</summary>
    public int SkippedCount => _skipped.Count;

    /// <summary>Batches created by workers and not disposed yet (for leak checks).</summary>
    internal long LiveBatches => Interlocked.Read(ref _liveBatches);

    private static int ItemSeed(int seed, int epoch, int index) => Seeds.Combine(seed, epoch, index);

    private Func<IReadOnlyList<int>, int, int, Batch?> MakeBuild<T>(IDataset<T> dataset, Func<IReadOnlyList<(int Index, T Item)>, Batch> collate) =>
        (indices, epoch, batchNo) =>
        {
            var items = new List<(int, T)>(indices.Count);
            foreach (var i in indices)
            {
                Options.Cancellation.ThrowIfCancellationRequested();
                try
                {
                    items.Add((i, dataset.Get(i, new Random(ItemSeed(Options.Seed, epoch, i)))));
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    var s = new SkippedItem(i, SafeDescribe(dataset, i), e.Message);
                    Interlocked.Increment(ref _epochSkips);
                    if (_skipped.TryAdd(i, s)) Options.OnSkip?.Invoke(s);
                }
            }
            if (items.Count == 0) return null;
            using var scope = NewDisposeScope();
            var batch = collate(items);
            if (Options.BatchTransform is { } bt)
                batch = bt.Apply(batch, new Random(Seeds.Combine(Options.Seed, epoch, batchNo, 0x5eed)));
            var input = batch.Input;
            if (Options.PinMemory && cuda.is_available()) input = input.pin_memory();
            var result = new Batch(input.DetachFromDisposeScope(), batch.Target.DetachFromDisposeScope(), batch.Indices)
            {
                Mask = batch.Mask?.DetachFromDisposeScope(),
                OwnedByLoader = true,
            };
            Interlocked.Increment(ref _liveBatches);
            return result;
        };

    private static string SafeDescribe<T>(IDataset<T> ds, int i)
    {
        try { return ds.Describe(i); }
        catch { return $"{ds.Source}#{i}"; }
    }

    /// <summary>The batches of one epoch as index lists.</summary>
    internal List<int[]> PlanEpoch(int epoch)
    {
        var bs = Options.BatchSize;
        var rng = new Random(Seeds.Combine(Options.Seed, epoch, 0xba7c));
        List<int[]> batches;
        if (Options.Shuffle && Options.LengthOf is { } len)
        {
            var idx = Enumerable.Range(0, _count).ToArray();
            rng.Shuffle(idx);
            batches = [];
            var window = bs * Math.Max(1, Options.BucketWindow);
            for (var w = 0; w < idx.Length; w += window)
            {
                var part = idx.Skip(w).Take(window).OrderBy(len).ToArray();
                batches.AddRange(part.Chunk(bs));
            }
            var full = batches.Where(b => b.Length == bs).ToArray();
            var partial = batches.Where(b => b.Length < bs).ToArray();
            rng.Shuffle(full);
            batches = [.. full, .. partial];
            if (partial.Length > 1)
            {
                // Re-chunk the leftovers so only one batch is short.
                var rest = partial.SelectMany(b => b).ToArray();
                batches = [.. full, .. rest.Chunk(bs)];
            }
        }
        else if (Options.Shuffle && _chunkOf is { } chunkOf)
        {
            // Chunked storage (Parquet row groups): shuffle chunk order, then items within each chunk, so workers
            // touch one chunk at a time and memory stays bounded.
            var groups = Enumerable.Range(0, _count).GroupBy(chunkOf).Select(g => g.ToArray()).ToArray();
            rng.Shuffle(groups);
            foreach (var g in groups) rng.Shuffle(g);
            batches = groups.SelectMany(g => g).Chunk(bs).ToList();
        }
        else
        {
            var idx = Enumerable.Range(0, _count).ToArray();
            if (Options.Shuffle) rng.Shuffle(idx);
            batches = idx.Chunk(bs).ToList();
        }
        if (Options.DropLast && batches.Count > 0 && batches[^1].Length < bs) batches.RemoveAt(batches.Count - 1);
        return batches;
    }

    /// <inheritdoc />
    public IEnumerator<Batch> GetEnumerator() => new Enumerator(this, Epoch++);

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    private sealed class Enumerator : IEnumerator<Batch>
    {
        private readonly DataLoader _loader;
        private readonly int _epoch;
        private readonly List<int[]> _plan;
        private readonly CancellationTokenSource _cts;
        private readonly Channel<Task<Batch?>> _ready;
        private readonly Task _producer;
        private Batch? _current;
        private int _delivered;
        private long _items;
        private bool _done;

        public Enumerator(DataLoader loader, int epoch)
        {
            _loader = loader;
            _epoch = epoch;
            _plan = loader.PlanEpoch(epoch);
            _cts = CancellationTokenSource.CreateLinkedTokenSource(loader.Options.Cancellation);
            _ready = Channel.CreateBounded<Task<Batch?>>(new BoundedChannelOptions(Math.Max(1, loader.Options.Prefetch))
            {
                SingleReader = true, SingleWriter = true, FullMode = BoundedChannelFullMode.Wait,
            });
            Interlocked.Exchange(ref loader._epochSkips, 0);
            var workers = loader.Options.Workers > 0 ? loader.Options.Workers : Environment.ProcessorCount;
            _producer = Task.Run(() => Produce(workers));
        }

        private async Task Produce(int workers)
        {
            var ct = _cts.Token;
            using var slots = new SemaphoreSlim(workers);
            try
            {
                for (var b = 0; b < _plan.Count; b++)
                {
                    await slots.WaitAsync(ct).ConfigureAwait(false);
                    var indices = _plan[b];
                    var batchNo = b;
                    var task = Task.Run(() =>
                    {
                        try { return _loader._build(indices, _epoch, batchNo); }
                        finally { slots.Release(); }
                    }, CancellationToken.None);
                    try
                    {
                        await _ready.Writer.WriteAsync(task, ct).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException)
                    {
                        // Cancelled while the channel was full: this batch never reaches the reader, so dispose it here.
                        try
                        {
                            if (await task.ConfigureAwait(false) is { } orphan)
                            {
                                orphan.Dispose();
                                Interlocked.Decrement(ref _loader._liveBatches);
                            }
                        }
                        catch (Exception e) when (e is not OutOfMemoryException) { }
                        throw;
                    }
                }
                _ready.Writer.TryComplete();
            }
            catch (Exception e)
            {
                _ready.Writer.TryComplete(e is OperationCanceledException ? null : e);
            }
            // Wait for running workers before the semaphore is disposed.
            for (var i = 0; i < workers; i++) await slots.WaitAsync(CancellationToken.None).ConfigureAwait(false);
        }

        public Batch Current => _current ?? throw new InvalidOperationException("No current batch.");

        object IEnumerator.Current => Current;

        public bool MoveNext()
        {
            ReleaseCurrent();
            if (_done) return false;
            var reader = _ready.Reader;
            while (true)
            {
                _loader.Options.Cancellation.ThrowIfCancellationRequested();
                Task<Batch?> task;
                try
                {
                    if (!reader.TryRead(out task!))
                    {
                        if (!reader.WaitToReadAsync(_loader.Options.Cancellation).AsTask().GetAwaiter().GetResult())
                        {
                            _done = true;
                            if (_delivered == 0 && _loader._epochSkips > 0)
                                throw new InvalidDataException(
                                    $"No readable items in {_loader._source}: all {_loader._epochSkips} items this epoch failed to load " +
                                    $"(first: {_loader.Skipped.FirstOrDefault()?.Item}: {_loader.Skipped.FirstOrDefault()?.Error}). Check the files or the folder path.");
                            return false;
                        }
                        continue;
                    }
                }
                catch (ChannelClosedException e) when (e.InnerException is not null)
                {
                    throw e.InnerException;
                }
                var batch = task.GetAwaiter().GetResult();
                if (batch is null) continue;
                _current = batch;
                _delivered++;
                _items += batch.Count;
                _loader.Options.Progress?.Invoke(new LoaderProgress(_epoch, _delivered, _plan.Count, _items, _loader._epochSkips));
                return true;
            }
        }

        private void ReleaseCurrent()
        {
            if (_current is { OwnedByLoader: true } c)
            {
                c.Dispose();
                Interlocked.Decrement(ref _loader._liveBatches);
            }
            else if (_current is not null)
            {
                Interlocked.Decrement(ref _loader._liveBatches);
            }
            _current = null;
        }

        public void Reset() => throw new NotSupportedException("Enumerate the loader again for a new epoch.");

        public void Dispose()
        {
            ReleaseCurrent();
            _cts.Cancel();
            try { _producer.Wait(); } catch (AggregateException) { }
            while (_ready.Reader.TryRead(out var t))
            {
                try
                {
                    if (t.GetAwaiter().GetResult() is { } b)
                    {
                        b.Dispose();
                        Interlocked.Decrement(ref _loader._liveBatches);
                    }
                }
                catch (Exception) { }
            }
            _cts.Dispose();
        }
    }
}

/// <summary>Built-in collate functions.</summary>
public static class Collate
{
    /// <summary>Stacks C×H×W items into an N×C×H×W float tensor and their labels into int64 targets.</summary>
    public static Batch Images(IReadOnlyList<(int Index, ImageTensor Item)> items)
    {
        var first = items[0].Item;
        var per = first.Channels * first.Height * first.Width;
        var data = new float[items.Count * per];
        var labels = new long[items.Count];
        var indices = new int[items.Count];
        for (var i = 0; i < items.Count; i++)
        {
            var t = items[i].Item;
            if (t.Channels != first.Channels || t.Height != first.Height || t.Width != first.Width)
                throw new InvalidOperationException(
                    $"Items in a batch differ in size ({first.Channels}x{first.Height}x{first.Width} vs {t.Channels}x{t.Height}x{t.Width} at index {items[i].Index}); add a Resize and CenterCrop to the pipeline.");
            Array.Copy(t.Data, 0, data, i * per, per);
            labels[i] = t.Label;
            indices[i] = items[i].Index;
        }
        return new Batch(tensor(data, [items.Count, first.Channels, first.Height, first.Width]), tensor(labels), indices);
    }

    /// <summary>Pads token sequences to the longest one in the batch: N×T int64 ids plus an N×T attention mask.</summary>
    public static Batch Tokens(IReadOnlyList<(int Index, TokenizedSample Item)> items, int padId)
    {
        var t = Math.Max(1, items.Max(x => x.Item.Tokens.Length));
        var ids = new long[items.Count * t];
        var mask = new long[items.Count * t];
        Array.Fill(ids, padId);
        var labels = new long[items.Count];
        var indices = new int[items.Count];
        for (var i = 0; i < items.Count; i++)
        {
            var tok = items[i].Item.Tokens;
            for (var j = 0; j < tok.Length; j++)
            {
                ids[i * t + j] = tok[j];
                mask[i * t + j] = 1;
            }
            labels[i] = items[i].Item.Label;
            indices[i] = items[i].Index;
        }
        return new Batch(tensor(ids, [items.Count, t]), tensor(labels), indices) { Mask = tensor(mask, [items.Count, t]) };
    }
}
