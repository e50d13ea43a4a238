using System.Diagnostics;
using ModelZoo.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.FineTune;

/// <summary>Where cached features live.</summary>
public enum FeatureStorage
{
    /// <summary>A CPU tensor in memory.</summary>
    Memory,
    /// <summary>A raw file on disk (rows read on demand), for caches larger than memory.</summary>
    Disk,
}

/// <summary>Whether <see cref="Learner.FineTune"/> trains the head on cached features during the frozen phase.</summary>
public enum FeatureCacheMode
{
    /// <summary>Never cache.</summary>
    Off,
    /// <summary>Cache when a probe finds the training loader deterministic (<see cref="FeatureCache.IsDeterministic"/>).</summary>
    Auto,
    /// <summary>Always cache (you assert the training transform is deterministic).</summary>
    On,
}

/// <summary>Options for building a <see cref="FeatureCache"/>.</summary>
/// <param name="Storage">Memory or disk.</param>
/// <param name="Half">Store features as float16 (half the memory; batches are returned as float32).</param>
/// <param name="Folder">Folder for disk storage (default: a temporary folder, deleted on dispose).</param>
/// <param name="BatchSize">Batch size of the batches the cache hands out.</param>
/// <param name="Seed">Seed of the default shuffled order.</param>
/// <param name="Order">Batches of cache rows for each epoch; default <see cref="BatchOrder.Shuffled"/> with <paramref name="Seed"/>.</param>
public sealed record FeatureCacheOptions(FeatureStorage Storage = FeatureStorage.Memory, bool Half = false, string? Folder = null,
    int BatchSize = 64, int Seed = 0, Func<int, IEnumerable<int[]>>? Order = null);

/// <summary>Reproducible batch orders (stateless: epoch e's order depends only on the seed and e).</summary>
public static class BatchOrder
{
    /// <summary>A fresh shuffle of 0..<paramref name="count"/>-1 per epoch (SplitMix64-seeded Fisher–Yates), cut into batches.</summary>
    public static Func<int, IEnumerable<int[]>> Shuffled(int count, int batchSize, int seed, bool dropLast = false) => epoch =>
    {
        var idx = Enumerable.Range(0, count).ToArray();
        ulong state = (ulong)(uint)seed * 0x9E3779B97F4A7C15UL ^ (ulong)(uint)epoch * 0xD1B54A32D192ED03UL;
        for (int i = count - 1; i > 0; i--)
        {
            int j = (int)(SplitMix(ref state) % (ulong)(i + 1));
            (idx[i], idx[j]) = (idx[j], idx[i]);
        }
        return Cut(idx, batchSize, dropLast);
    };

    /// <summary>0..<paramref name="count"/>-1 in order, cut into batches (the same every epoch).</summary>
    public static Func<int, IEnumerable<int[]>> Sequential(int count, int batchSize) => _ => Cut(Enumerable.Range(0, count).ToArray(), batchSize, false);

    private static IEnumerable<int[]> Cut(int[] idx, int batchSize, bool dropLast)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        for (int s = 0; s < idx.Length; s += batchSize)
        {
            int n = Math.Min(batchSize, idx.Length - s);
            if (dropLast && n < batchSize) yield break;
            yield return idx[s..(s + n)];
        }
    }

    internal static ulong SplitMix(ref ulong x)
    {
        ulong z = x += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}

/// <summary>
/// Pooled backbone features (<c>ForwardHead(ForwardFeatures(x), preLogits: true)</c>) computed once per item, with the
/// items' targets and dataset indices, so a head can be trained without running the frozen backbone again. Only valid
/// when the backbone is frozen and the transform that produced the inputs is deterministic.
/// </summary>
public sealed class FeatureCache : IDisposable
{
    private readonly Tensor? _memory;        // N×D, float32 or float16, CPU
    private readonly string? _file;           // disk storage
    private readonly bool _ownsFolder;
    private readonly string? _folder;
    private readonly long[] _targets;
    private readonly FeatureCacheOptions _options;

    private FeatureCache(Tensor? memory, string? file, string? folder, bool ownsFolder, int dim, long[] targets, int[] indices, FeatureCacheOptions options, TimeSpan build)
    {
        (_memory, _file, _folder, _ownsFolder, FeatureDim, _targets, Indices, _options, BuildTime) = (memory, file, folder, ownsFolder, dim, targets, indices, options, build);
    }

    /// <summary>Number of cached items.</summary>
    public int Count => Indices.Length;

    /// <summary>Width of each feature row.</summary>
    public int FeatureDim { get; }

    /// <summary>Dataset index of each row.</summary>
    public int[] Indices { get; }

    /// <summary>Time taken to build the cache.</summary>
    public TimeSpan BuildTime { get; }

    /// <summary>Bytes used by the stored features.</summary>
    public long StoredBytes => (long)Count * FeatureDim * (_options.Half ? 2 : 4);

    /// <summary>
    /// Runs the model's backbone and pooling (eval mode, no gradients) over <paramref name="data"/> once and stores the
    /// pooled features. Targets must be class indices (soft targets come from random mixing and cannot be cached).
    /// </summary>
    public static FeatureCache Build(ZooModel model, IEnumerable<Batch> data, FeatureCacheOptions? options = null, Device? device = null)
    {
        options ??= new FeatureCacheOptions();
        device ??= model.parameters().FirstOrDefault()?.device ?? CPU;
        var sw = Stopwatch.StartNew();
        bool wasTraining = model.training;
        var rows = new List<Tensor>();
        var targets = new List<long>();
        var indices = new List<int>();
        string? folder = null, file = null;
        bool ownsFolder = false;
        FileStream? fs = null;
        int dim = -1;
        var storeType = options.Half ? ScalarType.Float16 : ScalarType.Float32;
        try
        {
            if (options.Storage == FeatureStorage.Disk)
            {
                ownsFolder = options.Folder is null;
                folder = options.Folder ?? Path.Combine(Path.GetTempPath(), "modelzoo-features-" + Guid.NewGuid().ToString("N"));
                Directory.CreateDirectory(folder);
                file = Path.Combine(folder, $"features-{Guid.NewGuid():N}.bin");
                fs = new FileStream(file, FileMode.CreateNew, FileAccess.Write);
            }
            model.eval();
            using var noGrad = no_grad();
            foreach (var raw in data)
            {
                using var scope = NewDisposeScope();
                using var b = raw;
                if (b.Target.dim() != 1)
                    throw new InvalidOperationException("The feature cache stores class-index targets only; this loader yields soft targets (Mixup/CutMix?), " +
                        "which are random per epoch. Turn mixing off for the cached head phase or train without the cache.");
                var f = model.ForwardHead(model.ForwardFeatures(b.Input.to(device)), preLogits: true);
                if (f.dim() != 2) f = f.flatten(1);
                if (dim < 0) dim = (int)f.shape[1];
                var stored = f.to(storeType).cpu().contiguous();
                if (fs is not null) fs.Write(stored.bytes);
                else rows.Add(stored.DetachFromDisposeScope());
                targets.AddRange(b.Target.cpu().to(ScalarType.Int64).data<long>().ToArray());
                indices.AddRange(b.Indices);
            }
            if (indices.Count == 0) throw new InvalidOperationException("The feature cache got no items: the loader yielded no batches.");
            Tensor? memory = null;
            if (fs is null)
            {
                memory = cat(rows, 0).DetachFromDisposeScope();
            }
            else
            {
                fs.Flush(flushToDisk: true);
                fs.Dispose();
                fs = null;
            }
            return new FeatureCache(memory, file, folder, ownsFolder, dim, [.. targets], [.. indices], options, sw.Elapsed);
        }
        catch
        {
            fs?.Dispose();
            if (ownsFolder && folder is not null) try { Directory.Delete(folder, true); } catch (IOException) { }
            throw;
        }
        finally
        {
            foreach (var r in rows) r.Dispose();
            if (wasTraining) model.train();
        }
    }

    /// <summary>
    /// Probes whether <paramref name="data"/> is deterministic: enumerates its first batch twice and compares the
    /// inputs item by item (same dataset index). No overlap, or any difference, means "not deterministic".
    /// </summary>
    public static bool IsDeterministic(IEnumerable<Batch> data)
    {
        using var scope = NewDisposeScope();
        // Loaders dispose the batch they handed out when their enumerator ends: keep each first batch with Detach().
        static Batch? First(IEnumerable<Batch> source)
        {
            using var e = source.GetEnumerator();
            return e.MoveNext() ? e.Current.Detach() : null;
        }
        var a = First(data);
        var b = First(data);
        if (a is null || b is null) return false;
        using (a)
        using (b)
        {
            var posB = b.Indices.Select((ix, i) => (ix, i)).GroupBy(p => p.ix).ToDictionary(g => g.Key, g => g.First().i);
            bool any = false;
            for (int i = 0; i < a.Indices.Length; i++)
            {
                if (!posB.TryGetValue(a.Indices[i], out int j)) continue;
                any = true;
                if (!a.Input[i].cpu().eq(b.Input[j].cpu()).all().item<bool>()) return false;
            }
            return any;
        }
    }

    /// <summary>Training batches for <paramref name="epoch"/>, in the order of <see cref="FeatureCacheOptions.Order"/>.</summary>
    public IEnumerable<Batch> Batches(int epoch) =>
        (_options.Order ?? BatchOrder.Shuffled(Count, _options.BatchSize, _options.Seed))(epoch).Select(Gather);

    /// <summary>All rows in stored order (for validation).</summary>
    public IEnumerable<Batch> Sequential() => BatchOrder.Sequential(Count, _options.BatchSize)(0).Select(Gather);

    /// <summary>A batch of the given rows: float32 features, int64 targets and dataset indices.</summary>
    public Batch Gather(int[] rows)
    {
        foreach (var r in rows)
            if ((uint)r >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(rows), r, $"The cache has {Count} rows.");
        var target = tensor(rows.Select(r => _targets[r]).ToArray());
        var ix = rows.Select(r => Indices[r]).ToArray();
        if (_memory is not null)
        {
            using var idx = tensor(rows.Select(r => (long)r).ToArray());
            using var part = _memory.index_select(0, idx);
            return new Batch(part.to(ScalarType.Float32, copy: true), target, ix);
        }
        var storeType = _options.Half ? ScalarType.Float16 : ScalarType.Float32;
        int rowBytes = FeatureDim * (_options.Half ? 2 : 4);
        using var t = empty([rows.Length, FeatureDim], storeType);
        var buffer = new byte[rows.Length * rowBytes];
        using (var handle = File.OpenHandle(_file!, FileMode.Open, FileAccess.Read))
        {
            for (int i = 0; i < rows.Length; i++)
            {
                int read = RandomAccess.Read(handle, buffer.AsSpan(i * rowBytes, rowBytes), (long)rows[i] * rowBytes);
                if (read != rowBytes) throw new IOException($"Feature file '{_file}' is shorter than expected (row {rows[i]}).");
            }
        }
        t.bytes = buffer;
        return new Batch(t.to(ScalarType.Float32, copy: true), target, ix);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _memory?.Dispose();
        if (_file is not null) try { File.Delete(_file); } catch (IOException) { }
        if (_ownsFolder && _folder is not null) try { Directory.Delete(_folder, true); } catch (IOException) { }
    }
}
