using System.Diagnostics;
using static TorchSharp.torch;

namespace ModelZoo.Tasks.Nlp;

// Encoding: token windows, padded length-sorted batches, and the caches of pooled features or lower-layer hidden states.
public static partial class TextQuickstart
{
    /// <summary>The first <paramref name="length"/> ids of a tokenized text, ending with its last (special) token when cut, as <c>TextEncoder.EncoderWindow</c> cuts them.</summary>
    internal static int[] Window(int[] ids, int length) => ids.Length <= length ? ids : [.. ids[..(length - 1)], ids[^1]];

    private static Tensor Pad(IReadOnlyList<int[]> rows, int padId, Device device)
    {
        int len = rows.Max(r => r.Length);
        var flat = new long[rows.Count * len];
        Array.Fill(flat, padId);
        for (int i = 0; i < rows.Count; i++)
            for (int j = 0; j < rows[i].Length; j++) flat[i * len + j] = rows[i][j];
        return tensor(flat, [rows.Count, len]).to(device);
    }

    /// <summary>
    /// Runs <paramref name="body"/> on padded batches of <paramref name="rows"/> in order of length (little padding), with
    /// the rows' positions, the ids and the mask; no gradients, one dispose scope per batch, progress every 30 s.
    /// </summary>
    private static void ForEachSortedBatch(List<int[]> rows, int padId, int batchSize, Device device, TextWriter log, string what, Action<int[], Tensor, Tensor> body)
    {
        var order = Enumerable.Range(0, rows.Count).OrderBy(i => rows[i].Length).ThenBy(i => i).ToArray();
        var sw = Stopwatch.StartNew();
        var lastReport = TimeSpan.Zero;
        using var noGrad = no_grad();
        for (int start = 0; start < order.Length; start += batchSize)
        {
            using var scope = NewDisposeScope();
            var chunk = order[start..Math.Min(order.Length, start + batchSize)];
            var x = Pad(chunk.Select(i => rows[i]).ToList(), padId, device);
            body(chunk, x, x.ne(padId).to_type(ScalarType.Int64));
            if (sw.Elapsed - lastReport > TimeSpan.FromSeconds(30))
            {
                lastReport = sw.Elapsed;
                log.WriteLine($"  {what}: {start + chunk.Length:N0}/{rows.Count:N0} texts, {sw.Elapsed.TotalSeconds:F0}s");
            }
        }
    }

    /// <summary>Pooled features as the model's pooling defines them (N×NumFeatures, float32, CPU), in the order of <paramref name="rows"/>.</summary>
    private static Tensor Embed(ModelZoo.Models.Nlp.TextEncoder model, List<int[]> rows, int padId, int batchSize, Device device, TextWriter log, string what)
    {
        var result = zeros(rows.Count, model.NumFeatures);
        ForEachSortedBatch(rows, padId, batchSize, device, log, "embedding " + what, (chunk, x, mask) =>
            result.index_copy_(0, tensor(chunk.Select(i => (long)i).ToArray()), model.PooledFeatures(x, mask).to(ScalarType.Float32).cpu()));
        return result;
    }

    /// <summary>Hidden states of the lower layers, cached per length-sorted batch (B×T×H with its B×T mask and the rows' positions).</summary>
    internal sealed class HiddenCache : IDisposable
    {
        public List<(Tensor Hidden, Tensor Mask, long[] Rows)> Batches { get; } = [];
        public long Bytes => Batches.Sum(b => b.Hidden.NumberOfElements * b.Hidden.ElementSize);
        public int Count => Batches.Sum(b => b.Rows.Length);
        public void Dispose() { foreach (var b in Batches) { b.Hidden.Dispose(); b.Mask.Dispose(); } Batches.Clear(); }
    }

    /// <summary>Runs the embeddings and the first <paramref name="layers"/> layers once over <paramref name="rows"/> (length-sorted batches, no gradients).</summary>
    private static HiddenCache CacheHidden(ModelZoo.Models.Nlp.TextEncoder model, int layers, List<int[]> rows, int padId, int batchSize, Device device, TextWriter log, string what)
    {
        model.eval();
        var cache = new HiddenCache();
        ForEachSortedBatch(rows, padId, batchSize, device, log, "caching " + what, (chunk, x, mask) =>
            cache.Batches.Add((model.HiddenStateAfter(layers, x, mask).DetachFromDisposeScope(), mask.DetachFromDisposeScope(), chunk.Select(i => (long)i).ToArray())));
        return cache;
    }
}
