using System.IO.Compression;
using ModelZoo.Data;
using ModelZoo.FineTune;
using ModelZoo.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.FineTune;

/// <summary>A tiny CNN on the zoo contract: conv-bn-relu ×2, global average pool, optional dropout, linear head "fc".</summary>
internal sealed class TinyCnn : ZooModel
{
    private readonly int _width;
    private readonly double _dropout;

    private readonly int _pool;

    public TinyCnn(int numClasses = 10, int inChans = 1, int width = 8, double dropout = 0.0, int pool = 1) : base(nameof(TinyCnn), numClasses, inChans)
    {
        _width = width;
        _dropout = dropout;
        _pool = pool;
        Add("conv1", nn.Conv2d(inChans, width, 3, stride: 2, padding: 1, bias: false));
        Add("bn1", nn.BatchNorm2d(width));
        Add("relu1", nn.ReLU());
        Add("conv2", nn.Conv2d(width, 2 * width, 3, stride: 2, padding: 1, bias: false));
        Add("bn2", nn.BatchNorm2d(2 * width));
        Add("relu2", nn.ReLU());
        Add("pool", nn.AdaptiveAvgPool2d(pool));
        Add("drop", nn.Dropout(dropout));
        Add("fc", CreateHead(numClasses));
    }

    public override int NumFeatures => 2 * _width * _pool * _pool;
    public override string HeadPath => "fc";
    public override long[] DryRunInputShape => [1, InChans, 16, 16];

    public override Tensor ForwardFeatures(Tensor x) =>
        Run("relu2", Run("bn2", Run("conv2", Run("relu1", Run("bn1", Run("conv1", x))))));

    public override Tensor ForwardHead(Tensor features, bool preLogits = false)
    {
        var pooled = Run("drop", Run("pool", features).flatten(1));
        return preLogits ? pooled : Run("fc", pooled);
    }

    protected override nn.Module<Tensor, Tensor> CreateHead(int numClasses) =>
        numClasses == 0 ? nn.Identity() : nn.Linear(NumFeatures, numClasses);

    public override IReadOnlyList<ParameterGroup> ParameterGroups() =>
        Layers.GroupsByPrefix(this, [("stem", ["conv1", "bn1"]), ("body", ["conv2", "bn2"]), ("head", ["fc"])]);
}

/// <summary>In-memory images and labels served as batches in a reproducible per-epoch order.</summary>
internal sealed class MemoryData(Tensor images, long[] labels)
{
    public Tensor Images { get; } = images;
    public long[] Labels { get; } = labels;
    public int Count => Labels.Length;

    public Batch Gather(int[] rows)
    {
        using var idx = tensor(rows.Select(r => (long)r).ToArray());
        return new Batch(Images.index_select(0, idx), tensor(rows.Select(r => Labels[r]).ToArray()), rows);
    }

    /// <summary>Batches of epoch e, shuffled with <see cref="BatchOrder.Shuffled"/> (stateless, so exact resume works).</summary>
    public Func<int, IEnumerable<Batch>> Shuffled(int batchSize, int seed) =>
        epoch => BatchOrder.Shuffled(Count, batchSize, seed)(epoch).Select(Gather);

    /// <summary>The items at <paramref name="rows"/> as a new data set.</summary>
    public MemoryData Subset(IEnumerable<int> rows)
    {
        var r = rows.ToArray();
        using var idx = tensor(r.Select(i => (long)i).ToArray());
        return new MemoryData(Images.index_select(0, idx).DetachFromDisposeScope(), r.Select(i => Labels[i]).ToArray());
    }

    public IEnumerable<Batch> Sequential(int batchSize) => BatchOrder.Sequential(Count, batchSize)(0).Select(Gather);

    /// <summary>Random images with labels that depend on the mean of a quadrant (learnable).</summary>
    public static MemoryData Synthetic(int n, int size = 16, int classes = 4, int seed = 1)
    {
        using var g = new Generator((ulong)seed);
        var x = randn([n, 1, size, size], generator: g);
        var score = x[.., 0, ..(size / 2), ..(size / 2)].mean([1, 2]);
        var ranks = score.argsort().argsort();
        var y = (ranks * classes / n).to(ScalarType.Int64).data<long>().ToArray();
        return new MemoryData(x.DetachFromDisposeScope(), y);
    }
}

/// <summary>Reads Fashion-MNIST IDX files (gzip) from /usr/share/datasets/fashion-mnist.</summary>
internal static class FashionMnist
{
    public const string Folder = "/usr/share/datasets/fashion-mnist";

    public static MemoryData Load(bool train, int limit)
    {
        string prefix = train ? "train" : "t10k";
        var images = ReadIdx(Path.Combine(Folder, $"{prefix}-images-idx3-ubyte.gz"), 2051, limit, out var dims);
        var labels = ReadIdx(Path.Combine(Folder, $"{prefix}-labels-idx1-ubyte.gz"), 2049, limit, out _);
        int n = labels.Length;
        var floats = new float[images.Length];
        // Normalise with Fashion-MNIST's mean/std (0.2860, 0.3530).
        for (int i = 0; i < floats.Length; i++) floats[i] = (images[i] / 255f - 0.2860f) / 0.3530f;
        var x = tensor(floats).reshape(n, 1, dims[1], dims[2]);
        return new MemoryData(x.DetachFromDisposeScope(), labels.Select(b => (long)b).ToArray());
    }

    private static byte[] ReadIdx(string path, int magic, int limit, out int[] dims)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Fashion-MNIST file '{path}' is missing; the FashionMnist test needs the IDX files in {Folder}.", path);
        using var gz = new GZipStream(File.OpenRead(path), CompressionMode.Decompress);
        using var r = new BinaryReader(gz);
        int ReadBE() => System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(r.ReadBytes(4));
        int m = ReadBE();
        if (m != magic) throw new InvalidDataException($"'{path}': magic {m}, expected {magic}.");
        int rank = m & 0xFF;
        dims = Enumerable.Range(0, rank).Select(_ => ReadBE()).ToArray();
        dims[0] = Math.Min(dims[0], limit);
        int count = dims.Aggregate(1, (a, b) => a * b);
        var data = r.ReadBytes(count);
        if (data.Length != count) throw new EndOfStreamException($"'{path}' ended early.");
        return data;
    }
}

internal static class Weights
{
    public static Dictionary<string, float[]> Snapshot(nn.Module m) =>
        m.state_dict().Where(kv => kv.Value.dtype == ScalarType.Float32).ToDictionary(kv => kv.Key, kv => kv.Value.detach().cpu().data<float>().ToArray());

    public static void AssertBitIdentical(Dictionary<string, float[]> a, Dictionary<string, float[]> b)
    {
        Assert.Equal(a.Keys.OrderBy(k => k), b.Keys.OrderBy(k => k));
        foreach (var k in a.Keys)
            Assert.True(a[k].AsSpan().SequenceEqual(b[k]), $"'{k}' differs: max |Δ| = {a[k].Zip(b[k], (x, y) => Math.Abs(x - y)).Max()}");
    }

    public static double MaxAbsDiff(Dictionary<string, float[]> a, Dictionary<string, float[]> b, Func<string, bool>? keys = null) =>
        a.Keys.Where(k => keys?.Invoke(k) ?? true).Max(k => a[k].Zip(b[k], (x, y) => (double)Math.Abs(x - y)).DefaultIfEmpty(0).Max());
}

/// <summary>
/// Tests that depend on torch's process-global RNG (seeded initialisation, dropout, exact resume, RNG restore) must not
/// run beside other tests that draw from it, so they share this non-parallel collection.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TorchGlobalRng
{
    public const string Name = "torch global RNG";
}
