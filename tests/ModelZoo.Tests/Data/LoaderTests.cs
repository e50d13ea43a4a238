using ModelZoo.Data;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Data;

[CollectionDefinition("TensorCounting", DisableParallelization = true)]
public class TensorCountingCollection;

/// <summary>Loader behaviour. Runs alone (live-tensor counts are process-wide).</summary>
[Collection("TensorCounting")]
public class LoaderTests
{
    /// <summary>A synthetic dataset: item i is a 1×2×2 tensor filled with i; items in <paramref name="bad"/> throw.</summary>
    private sealed class Numbers(int n, params int[] bad) : Dataset<ImageTensor>
    {
        public int Reads;
        public override int Count => n;
        public override IReadOnlyList<string> ClassNames => ["even", "odd"];
        public override string Source => "numbers";
        public override int LabelOf(int index) => index % 2;
        public override string Describe(int index) => $"numbers/{index}.png";

        protected override ImageTensor GetCore(int index, Random rng)
        {
            Interlocked.Increment(ref Reads);
            if (bad.Contains(index)) throw new InvalidDataException($"broken item {index}");
            return new ImageTensor([index, index, index, (float)rng.NextDouble()], 1, 2, 2, index % 2);
        }
    }

    private static List<(int[] Indices, float[] Values)> Run(DataLoader loader) =>
        loader.Select(b => (b.Indices, b.Input.data<float>().ToArray())).ToList();

    [Fact]
    public void BatchesCoverTheDatasetInOrderWithDropLast()
    {
        var loader = new DataLoader(new Numbers(10), batchSize: 4, workers: 2);
        var batches = Run(loader);
        Assert.Equal(3, batches.Count);
        Assert.Equal(Enumerable.Range(0, 10), batches.SelectMany(b => b.Indices));
        Assert.Equal(3, loader.BatchesPerEpoch);
        var dropped = Run(new DataLoader(new Numbers(10), batchSize: 4, dropLast: true));
        Assert.Equal(2, dropped.Count);
    }

    [Fact]
    public void ShuffleIsSeededPerEpochAndIndependentOfWorkerCount()
    {
        var a = new DataLoader(new Numbers(50), batchSize: 8, shuffle: true, workers: 1, seed: 11);
        var b = new DataLoader(new Numbers(50), batchSize: 8, shuffle: true, workers: 3, prefetch: 1, seed: 11);
        var a0 = Run(a);
        var b0 = Run(b);
        Assert.Equal(a0.SelectMany(x => x.Values), b0.SelectMany(x => x.Values)); // same order and same random draws
        Assert.Equal(Enumerable.Range(0, 50), a0.SelectMany(x => x.Indices).Order());
        Assert.NotEqual(Enumerable.Range(0, 50), a0.SelectMany(x => x.Indices));
        var a1 = Run(a);
        Assert.NotEqual(a0.SelectMany(x => x.Indices), a1.SelectMany(x => x.Indices));
        Assert.Equal(2, a.Epoch);
    }

    [Fact]
    public void CorruptItemsAreSkippedCountedAndNamed()
    {
        var skipped = new List<SkippedItem>();
        var progress = new List<LoaderProgress>();
        var loader = new DataLoader(new Numbers(10, 3, 4, 5, 6), new DataLoaderOptions
        {
            BatchSize = 4, Workers = 2, OnSkip = s => { lock (skipped) skipped.Add(s); }, Progress = progress.Add,
        });
        var batches = Run(loader);
        Assert.Equal([0, 1, 2, 7, 8, 9], batches.SelectMany(b => b.Indices));
        Assert.Equal(4, loader.SkippedCount);
        Assert.Equal(["numbers/3.png", "numbers/4.png", "numbers/5.png", "numbers/6.png"], loader.Skipped.Select(s => s.Item));
        Assert.Contains("broken item 3", loader.Skipped.First().Error);
        Assert.Equal(4, skipped.Count);
        Assert.Equal(batches.Count, progress.Count);
        Assert.Equal(4, progress[^1].Skipped);
        Assert.Equal(6, progress[^1].Items);
    }

    [Fact]
    public void CorruptImageFilesAreSkippedAndAllCorruptIsAnError()
    {
        using var d = DataTestHelpers.ImageFolderFixture(withCorrupt: true);
        var ds = ImageFolder.Open(d.Path);
        Assert.Equal(9, ds.Count);
        var loader = new DataLoader(ds.Map(VisionTransforms.Eval(DataTestHelpers.Tiny)), batchSize: 4, workers: 2);
        var n = loader.Sum(b => b.Count);
        Assert.Equal(7, n);
        Assert.Equal(2, loader.SkippedCount);
        Assert.All(loader.Skipped, s => Assert.Contains(Path.GetFileName(s.Item), new[] { "broken.jpg", "garbage.jpg" }));

        using var bad = new TempDir();
        bad.CopyFixture("corrupt_garbage.jpg", "a/x.jpg");
        bad.CopyFixture("corrupt_truncated.jpg", "b/y.jpg");
        var all = new DataLoader(ImageFolder.Open(bad.Path).Map(VisionTransforms.Eval(DataTestHelpers.Tiny)), batchSize: 1);
        var e = Assert.Throws<InvalidDataException>(() => all.ToList());
        Assert.Contains(Path.GetFullPath(bad.Path), e.Message);
    }

    [Fact]
    public void NoTensorsLeakAfterAnEpochOrAnAbandonedOne()
    {
        var loader = new DataLoader(new Numbers(64), batchSize: 4, workers: 2, prefetch: 3);
        Run(loader); // warm-up
        var before = Tensor.TotalCount;
        var seen = new List<Tensor>();
        using (var scope = NewDisposeScope())
        {
            foreach (var b in loader)
            {
                seen.Add(b.Input);
                seen.Add(b.Target);
                using var step = NewDisposeScope();
                _ = b.Input.sum();
            }
            Assert.Equal(before, Tensor.TotalCount);
        }
        Assert.All(seen, t => Assert.True(t.IsInvalid));
        Assert.Equal(0, loader.LiveBatches);

        // Abandon mid-epoch: prefetched batches are disposed too.
        foreach (var b in loader)
            if (b.Indices[0] >= 8) break;
        Assert.Equal(0, loader.LiveBatches);
        Assert.Equal(before, Tensor.TotalCount);

        // A detached batch survives the next step; the caller disposes it.
        Batch? kept = null;
        foreach (var b in loader) kept ??= b.Detach();
        Assert.False(kept!.Input.IsInvalid);
        Assert.Equal([0f, 0f, 0f], kept.Input.data<float>().ToArray()[..3]);
        kept.Dispose();
        Assert.Equal(before, Tensor.TotalCount);
    }

    [Fact]
    public void CancellationStopsTheEpoch()
    {
        using var cts = new CancellationTokenSource();
        var loader = new DataLoader(new Numbers(100), new DataLoaderOptions { BatchSize = 2, Workers = 2, Cancellation = cts.Token });
        var count = 0;
        Assert.ThrowsAny<OperationCanceledException>(() =>
        {
            foreach (var _ in loader)
                if (++count == 3) cts.Cancel();
        });
        Assert.Equal(3, count);
        Assert.Equal(0, loader.LiveBatches);
    }

    [Fact]
    public void TextBatchesArePaddedPerBatchAndBucketedByLength()
    {
        var texts = Enumerable.Range(0, 64).Select(i => new string('x', 1 + (i * 37 % 60))).ToArray();
        var ds = TextDataset.FromTexts(texts, texts.Select(t => t.Length % 2).ToArray(), ["a", "b"]);
        Func<string, int[]> tok = s => s.Select(c => (int)c).ToArray();
        var plain = TextBatching.Loader(ds, tok, padId: -1, batchSize: 8, shuffle: true, seed: 1, bucketByLength: false);
        var bucketed = TextBatching.Loader(ds, tok, padId: -1, batchSize: 8, shuffle: true, seed: 1, bucketByLength: true);
        long Padding(DataLoader l) => l.Sum(b => b.Mask!.numel() - b.Mask!.sum().item<long>());
        var first = plain.Select(b => b.Detach()).First();
        Assert.Equal(ScalarType.Int64, first.Input.dtype);
        var maxLen = first.Indices.Max(i => texts[i].Length);
        Assert.Equal(maxLen, first.Input.shape[1]);
        var row = first.Input[0].data<long>().ToArray();
        var len = texts[first.Indices[0]].Length;
        Assert.All(row[len..], v => Assert.Equal(-1, v));
        Assert.Equal(len, first.Mask![0].sum().item<long>());
        Assert.True(Padding(bucketed) * 3 < Padding(plain), $"bucketed {Padding(bucketed)} vs plain {Padding(plain)}");
        Assert.Equal(Enumerable.Range(0, 64), bucketed.SelectMany(b => b.Indices).Order());
        first.Dispose();
    }

    [Fact]
    public void MixupAndCutMixGiveSoftTargets()
    {
        foreach (var mix in new[] { new MixupCutMix(2, MixupAlpha: 0.4, CutMixAlpha: 0), new MixupCutMix(2, MixupAlpha: 0, CutMixAlpha: 1) })
        {
            var loader = new DataLoader(new Numbers(8), new DataLoaderOptions { BatchSize = 4, BatchTransform = mix, Seed = 2 });
            foreach (var b in loader)
            {
                Assert.Equal([4L, 2L], b.Target.shape);
                var sums = b.Target.sum(1).data<float>().ToArray();
                Assert.All(sums, s => Assert.Equal(1f, s, 5));
            }
            Assert.Equal(0, loader.LiveBatches);
        }
    }

    [Fact]
    public void TensorLoaderBatchesResizesAndNormalizesInMemoryImages()
    {
        var before = Tensor.TotalCount;
        var px = new byte[10 * 4 * 4];
        for (var i = 0; i < 10; i++) px.AsSpan(i * 16, 16).Fill((byte)(i * 20));
        var ds = new IdxDataset(px, Enumerable.Range(0, 10).Select(i => (byte)(i % 3)).ToArray(), 4, 4, ["a", "b", "c"], "mem");
        using (var loader = TensorDataLoader.From(ds, batchSize: 4, shuffle: true, seed: 1, resize: 8, channels: 3, mean: [0.5f, 0.5f, 0.5f], std: [0.5f, 0.5f, 0.5f]))
        {
            var seen = new List<int>();
            foreach (var b in loader)
            {
                using var step = NewDisposeScope();
                Assert.Equal(3, b.Input.shape[1]);
                Assert.Equal(8, b.Input.shape[3]);
                var i0 = b.Indices[0];
                Assert.Equal((i0 * 20 / 255f - 0.5f) / 0.5f, b.Input[0, 2, 7, 7].item<float>(), 4);
                Assert.Equal(i0 % 3, b.Target[0].item<long>());
                seen.AddRange(b.Indices);
            }
            Assert.Equal(Enumerable.Range(0, 10), seen.Order());
            Assert.Equal(3, loader.BatchesPerEpoch);
        }
        Assert.Equal(before, Tensor.TotalCount);
    }
}
