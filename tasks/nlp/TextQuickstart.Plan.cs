using System.Diagnostics;
using static TorchSharp.torch;

namespace ModelZoo.Tasks.Nlp;

// The plan: the measured encoder speed decides how many top layers to fine-tune, and for how many epochs, within the budget.
public static partial class TextQuickstart
{
    /// <summary>Encoder throughput (real tokens per second) on a few of the longest texts: the fastest of three passes after a warm-up.</summary>
    private static double MeasureEncoder(ModelZoo.Models.Nlp.TextEncoder model, List<int[]> rows, int padId, Device device)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var small = rows.Take(Math.Max(1, rows.Count / 4)).ToList();
        var x = Pad(small, padId, device);
        var mask = x.ne(padId).to_type(ScalarType.Int64);
        model.LastHiddenState(x, mask);
        double best = double.MaxValue;
        for (int i = 0; i < 3; i++)
        {
            var sw = Stopwatch.StartNew();
            model.LastHiddenState(x, mask);
            best = Math.Min(best, sw.Elapsed.TotalSeconds);
        }
        return small.Sum(r => r.Length) / Math.Max(1e-6, best);
    }

    /// <summary>
    /// How many training texts the encoder can read when one pass over all of them does not fit: what 70 % of
    /// <paramref name="budget"/> leaves after the held-out texts (<paramref name="testSeconds"/>), in proportion to
    /// <paramref name="trainSeconds"/> for all <paramref name="nTrain"/>; at least 20 per class and 200 (or all there are).
    /// </summary>
    internal static int TrainTextsThatFit(double trainSeconds, double testSeconds, int nTrain, int classes, double budget)
    {
        int least = Math.Min(nTrain, Math.Max(200, 20 * classes));
        double room = Math.Max(0, budget * 0.7 - testSeconds);
        int fits = trainSeconds <= room ? nTrain : (int)Math.Floor(nTrain * room / Math.Max(trainSeconds, 1e-9));
        return Math.Clamp(fits, least, nTrain);
    }

    /// <summary>How many top layers to fine-tune, for how many epochs, and the projected seconds.</summary>
    internal readonly record struct TuningPlan(int Layers, int Epochs, double Seconds);

    /// <summary>
    /// Picks the deepest fine-tune that fits <paramref name="budget"/> seconds, given the projected seconds of one
    /// forward pass of the whole encoder over all texts: caching the lower layers costs their share of a pass; an epoch
    /// of the top layers costs about 3.5× their share of a pass over the training texts (forward, backward, update);
    /// testing costs their share of a pass over the test texts. Explicit options are taken as given.
    /// </summary>
    internal static TuningPlan PlanTuning(TextQuickstartOptions o, int numLayers, double fullPassSeconds, double trainShare, double budget)
    {
        double Cost(int k, int e) => fullPassSeconds * ((numLayers - k) / (double)numLayers + e * 3.5 * trainShare * k / numLayers + (1 - trainShare) * k / numLayers);
        if (o.TuneLayers == 0) return new(0, 0, fullPassSeconds);
        if (o.TuneLayers > 0)
        {
            int k = Math.Min(o.TuneLayers, numLayers);
            int e = o.Epochs > 0 ? o.Epochs : Enumerable.Range(1, 3).Reverse().FirstOrDefault(n => Cost(k, n) <= budget, 1);
            return new(k, e, Cost(k, e));
        }
        (int K, int E)[] options = o.Epochs > 0 ? [(2, o.Epochs), (1, o.Epochs)] : [(2, 3), (2, 2), (1, 3), (1, 2), (1, 1)];
        foreach (var (k, e) in options)
            if (k <= numLayers && Cost(k, e) <= budget) return new(k, e, Cost(k, e));
        return new(0, 0, fullPassSeconds);
    }
}
