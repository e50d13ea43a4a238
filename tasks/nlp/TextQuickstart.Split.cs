using ModelZoo.Data;
using static TorchSharp.torch;

namespace ModelZoo.Tasks.Nlp;

// The held-out split: a stratified, seeded sample and train/test split of the labelled texts.
public static partial class TextQuickstart
{
    /// <summary>All indices, or a stratified seeded sample of <paramref name="limit"/>.</summary>
    internal static int[] StratifiedSample(TextDataset data, int limit, int seed)
    {
        if (limit <= 0 || limit >= data.Count) return Enumerable.Range(0, data.Count).ToArray();
        var (keep, _) = StratifiedSplit(data, Enumerable.Range(0, data.Count).ToArray(), 1 - limit / (double)data.Count, seed);
        return keep.Order().ToArray();
    }

    /// <summary>Per class, a seeded shuffle; the first round(fraction × count) go to the test side (at least one when the class has two or more).</summary>
    internal static (int[] Train, int[] Test) StratifiedSplit(TextDataset data, int[] indices, double testFraction, int seed)
    {
        var rng = new Random(seed);
        var train = new List<int>();
        var test = new List<int>();
        foreach (var group in indices.GroupBy(data.LabelOf).OrderBy(g => g.Key))
        {
            var items = group.ToArray();
            rng.Shuffle(items);
            int n = (int)Math.Round(items.Length * testFraction);
            if (n == 0 && items.Length >= 2 && testFraction > 0) n = 1;
            if (n >= items.Length && items.Length >= 2) n = items.Length - 1;
            test.AddRange(items[..n]);
            train.AddRange(items[n..]);
        }
        return (train.Order().ToArray(), test.Order().ToArray());
    }

    private static string Balance(TextDataset data, int[] indices) =>
        string.Join(", ", indices.GroupBy(data.LabelOf).OrderBy(g => g.Key).Select(g => $"{data.ClassNames[g.Key]} {g.Count():N0}"));
}
