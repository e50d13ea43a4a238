using System.Collections;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Data;

/// <summary>
/// The fast path for datasets that fit in memory as one uint8 tensor (Fashion-MNIST: 60,000×1×28×28 = 47 MB): batches
/// are cut with <c>index_select</c> and converted, resized (torch <c>interpolate</c> on the whole batch) and normalized
/// as tensors, with no per-item work. Same ownership rules as <see cref="DataLoader"/>: each batch is disposed when the
/// next is requested (call <see cref="Batch.Detach"/> to keep it).
/// </summary>
public sealed class TensorDataLoader : IEnumerable<Batch>, IDisposable
{
    private readonly Tensor _images;
    private readonly Tensor _labels;
    private readonly bool _ownsTensors;
    private readonly Tensor? _view;
    private readonly Tensor _original;

    /// <summary>Creates a loader over N×C×H×W (or N×H×W) uint8 <paramref name="images"/> and N int64 <paramref name="labels"/>.</summary>
    /// <param name="images">Images, uint8 (or float already in [0,1]).</param>
    /// <param name="labels">Labels.</param>
    /// <param name="batchSize">Items per batch.</param>
    /// <param name="shuffle">Reshuffle each epoch.</param>
    /// <param name="seed">Shuffle seed (combined with the epoch).</param>
    /// <param name="dropLast">Drop the last incomplete batch.</param>
    /// <param name="resize">Resize to this square size (bilinear, antialiased when shrinking); 0 = keep.</param>
    /// <param name="channels">Output channels: 1, or 3 to replicate a grayscale channel.</param>
    /// <param name="mean">Per-channel mean (after scaling to [0,1]); null = none.</param>
    /// <param name="std">Per-channel std; null = none.</param>
    /// <param name="takeOwnership">Dispose the given tensors with the loader.</param>
    public TensorDataLoader(Tensor images, Tensor labels, int batchSize = 256, bool shuffle = false, int seed = 0, bool dropLast = false,
        int resize = 0, int channels = 0, float[]? mean = null, float[]? std = null, bool takeOwnership = false)
    {
        if (images.shape[0] != labels.shape[0]) throw new ArgumentException($"images ({images.shape[0]}) and labels ({labels.shape[0]}) differ in count.");
        _images = images.dim() == 3 ? images.unsqueeze(1) : images;
        _labels = labels;
        _ownsTensors = takeOwnership;
        _view = ReferenceEquals(_images, images) ? null : _images;
        _original = images;
        BatchSize = batchSize;
        Shuffle = shuffle;
        Seed = seed;
        DropLast = dropLast;
        Resize = resize;
        Channels = channels;
        Mean = mean;
        Std = std;
    }

    /// <summary>A loader over an IDX dataset (tensors are created and owned by the loader).</summary>
    public static TensorDataLoader From(IdxDataset dataset, int batchSize = 256, bool shuffle = false, int seed = 0, bool dropLast = false,
        int resize = 0, int channels = 0, float[]? mean = null, float[]? std = null)
    {
        var (x, y) = dataset.ToTensors();
        return new TensorDataLoader(x, y, batchSize, shuffle, seed, dropLast, resize, channels, mean, std, takeOwnership: true);
    }

    /// <summary>Items per batch.</summary>
    public int BatchSize { get; }

    /// <summary>Whether each epoch is shuffled.</summary>
    public bool Shuffle { get; }

    /// <summary>Shuffle seed.</summary>
    public int Seed { get; }

    /// <summary>Whether the last incomplete batch is dropped.</summary>
    public bool DropLast { get; }

    /// <summary>Output size (0 = unchanged).</summary>
    public int Resize { get; }

    /// <summary>Output channels (0 = unchanged).</summary>
    public int Channels { get; }

    /// <summary>Per-channel mean.</summary>
    public float[]? Mean { get; }

    /// <summary>Per-channel std.</summary>
    public float[]? Std { get; }

    /// <summary>Number of items.</summary>
    public long Count => _images.shape[0];

    /// <summary>The epoch the next enumeration runs.</summary>
    public int Epoch { get; set; }

    /// <summary>Batches per epoch.</summary>
    public int BatchesPerEpoch => (int)(DropLast ? Count / BatchSize : (Count + BatchSize - 1) / BatchSize);

    /// <inheritdoc />
    public IEnumerator<Batch> GetEnumerator()
    {
        var epoch = Epoch++;
        var n = (int)Count;
        var order = Enumerable.Range(0, n).ToArray();
        if (Shuffle) new Random(Seeds.Combine(Seed, epoch, 0xba7c)).Shuffle(order);
        Batch? current = null;
        try
        {
            for (var start = 0; start < n; start += BatchSize)
            {
                var len = Math.Min(BatchSize, n - start);
                if (len < BatchSize && DropLast) break;
                if (current is { OwnedByLoader: true }) current.Dispose();
                current = Make(order, start, len);
                yield return current;
            }
        }
        finally
        {
            if (current is { OwnedByLoader: true }) current.Dispose();
        }
    }

    private Batch Make(int[] order, int start, int len)
    {
        var idx = order.AsSpan(start, len).ToArray();
        using var scope = NewDisposeScope();
        var sel = tensor(idx.Select(i => (long)i).ToArray());
        var x = _images.index_select(0, sel);
        using var byteRange = 255f.ToScalar();
        x = x.dtype == ScalarType.Byte ? x.to_type(ScalarType.Float32).div_(byteRange) : x.to_type(ScalarType.Float32);
        if (Resize > 0 && (x.shape[2] != Resize || x.shape[3] != Resize))
            x = nn.functional.interpolate(x, [Resize, Resize], mode: InterpolationMode.Bilinear, align_corners: false,
                antialias: x.shape[2] > Resize || x.shape[3] > Resize);
        if (Channels > 0 && x.shape[1] != Channels)
        {
            if (x.shape[1] != 1) throw new InvalidOperationException($"Cannot turn {x.shape[1]} channels into {Channels}.");
            x = x.expand(-1, Channels, -1, -1).contiguous();
        }
        if (Mean is not null && Std is not null)
        {
            var c = (int)x.shape[1];
            var m = tensor(Mean.Take(c).ToArray()).view(1, c, 1, 1);
            var s = tensor(Std.Take(c).ToArray()).view(1, c, 1, 1);
            x = x.sub(m).div_(s);
        }
        var y = _labels.index_select(0, sel);
        return new Batch(x.DetachFromDisposeScope(), y.DetachFromDisposeScope(), idx) { OwnedByLoader = true };
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <inheritdoc />
    public void Dispose()
    {
        _view?.Dispose();
        if (!_ownsTensors) return;
        _original.Dispose();
        _labels.Dispose();
    }
}
