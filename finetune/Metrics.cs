using System.Globalization;

namespace ModelZoo.FineTune;

/// <summary>A validation metric computed from an <see cref="Evaluation"/> (all predictions of one pass).</summary>
public sealed class Metric
{
    private readonly Func<Evaluation, double> _compute;

    private Metric(string name, bool higherIsBetter, Func<Evaluation, double> compute)
    {
        Name = name;
        HigherIsBetter = higherIsBetter;
        _compute = compute;
    }

    /// <summary>Name in logs, e.g. <c>accuracy</c>, <c>top5</c>, <c>macro_f1</c>.</summary>
    public string Name { get; }

    /// <summary>True when larger values are better.</summary>
    public bool HigherIsBetter { get; }

    /// <summary>Computes the metric.</summary>
    public double Compute(Evaluation e) => _compute(e);

    /// <summary>Top-1 accuracy.</summary>
    public static Metric Accuracy() => new("accuracy", true, e => e.Accuracy);

    /// <summary>Top-k accuracy (an item counts when its class is among the k highest logits).</summary>
    public static Metric TopK(int k) => new($"top{k}", true, e => e.TopK(k));

    /// <summary>Unweighted mean of per-class F1 over classes that occur (as target or prediction).</summary>
    public static Metric MacroF1() => new("macro_f1", true, e => e.MacroF1);

    /// <summary>Error rate, 1 - accuracy.</summary>
    public static Metric ErrorRate() => new("error_rate", false, e => 1 - e.Accuracy);

    /// <summary>A metric from your own function.</summary>
    public static Metric Custom(string name, bool higherIsBetter, Func<Evaluation, double> compute) => new(name, higherIsBetter, compute);
}

/// <summary>Precision, recall, F1 and support of one class.</summary>
/// <param name="Class">Class index.</param>
/// <param name="Precision">TP / (TP + FP); 0 when the class was never predicted.</param>
/// <param name="Recall">TP / (TP + FN); 0 when the class never occurs.</param>
/// <param name="F1">Harmonic mean of precision and recall; 0 when both are 0.</param>
/// <param name="Support">Number of items whose target is this class.</param>
public sealed record ClassReport(int Class, double Precision, double Recall, double F1, int Support);

/// <summary>A pair of classes the model confuses: items of <paramref name="Actual"/> predicted as <paramref name="Predicted"/>.</summary>
public sealed record ConfusedPair(int Actual, int Predicted, int Count);

/// <summary>One item with a high loss: its dataset index (map it to a file path or text yourself), loss, target, prediction and the predicted probability.</summary>
public sealed record TopLoss(int Index, double Loss, int Actual, int Predicted, double Probability);

/// <summary>
/// All predictions of one evaluation pass: logits, hard targets, per-item losses and dataset indices, with the usual
/// classification reports computed from them.
/// </summary>
public sealed class Evaluation
{
    private readonly float[] _logits;
    private int[,]? _confusion;

    /// <summary>Creates an evaluation from row-major logits (N×<paramref name="numClasses"/>) and per-item data.</summary>
    public Evaluation(float[] logits, int numClasses, int[] targets, float[] losses, int[] indices)
    {
        int n = targets.Length;
        if (logits.Length != n * numClasses || losses.Length != n || indices.Length != n)
            throw new ArgumentException($"Evaluation data disagree: {n} targets, {losses.Length} losses, {indices.Length} indices, {logits.Length} logits for {numClasses} classes.");
        _logits = logits;
        NumClasses = numClasses;
        Targets = targets;
        Losses = losses;
        Indices = indices;
        Predictions = new int[n];
        for (int i = 0; i < n; i++)
        {
            int best = 0;
            for (int c = 1; c < numClasses; c++) if (logits[i * numClasses + c] > logits[i * numClasses + best]) best = c;
            Predictions[i] = best;
        }
    }

    /// <summary>Number of items.</summary>
    public int Count => Targets.Length;
    /// <summary>Number of classes (logit width).</summary>
    public int NumClasses { get; }
    /// <summary>Target class of each item (argmax for soft targets).</summary>
    public int[] Targets { get; }
    /// <summary>Predicted class (argmax of the logits) of each item.</summary>
    public int[] Predictions { get; }
    /// <summary>Loss of each item.</summary>
    public float[] Losses { get; }
    /// <summary>Dataset index of each item.</summary>
    public int[] Indices { get; }

    /// <summary>Logits of item <paramref name="i"/>.</summary>
    public ReadOnlySpan<float> Logits(int i) => _logits.AsSpan(i * NumClasses, NumClasses);

    /// <summary>Mean loss.</summary>
    public double Loss => Count == 0 ? double.NaN : Losses.Average(l => (double)l);

    /// <summary>Top-1 accuracy.</summary>
    public double Accuracy => Count == 0 ? double.NaN : Enumerable.Range(0, Count).Count(i => Predictions[i] == Targets[i]) / (double)Count;

    /// <summary>Top-k accuracy: ties broken towards the target's disadvantage (strictly greater logits count against it).</summary>
    public double TopK(int k)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(k, 1);
        if (Count == 0) return double.NaN;
        int hits = 0;
        for (int i = 0; i < Count; i++)
        {
            var row = Logits(i);
            float t = row[Targets[i]];
            int above = 0;
            foreach (var v in row) if (v > t) above++;
            if (above < k) hits++;
        }
        return hits / (double)Count;
    }

    /// <summary>Confusion matrix: [actual, predicted] counts.</summary>
    public int[,] ConfusionMatrix
    {
        get
        {
            if (_confusion is not null) return _confusion;
            var m = new int[NumClasses, NumClasses];
            for (int i = 0; i < Count; i++) m[Targets[i], Predictions[i]]++;
            return _confusion = m;
        }
    }

    /// <summary>Precision, recall and F1 for every class.</summary>
    public IReadOnlyList<ClassReport> PerClass()
    {
        var m = ConfusionMatrix;
        var list = new List<ClassReport>(NumClasses);
        for (int c = 0; c < NumClasses; c++)
        {
            int tp = m[c, c], predicted = 0, actual = 0;
            for (int j = 0; j < NumClasses; j++) { predicted += m[j, c]; actual += m[c, j]; }
            double p = predicted == 0 ? 0 : tp / (double)predicted;
            double r = actual == 0 ? 0 : tp / (double)actual;
            list.Add(new ClassReport(c, p, r, p + r == 0 ? 0 : 2 * p * r / (p + r), actual));
        }
        return list;
    }

    /// <summary>Macro-F1 over the classes that occur as a target or a prediction (sklearn's <c>labels=present</c>).</summary>
    public double MacroF1
    {
        get
        {
            var m = ConfusionMatrix;
            var present = PerClass().Where(r => r.Support > 0 || Enumerable.Range(0, NumClasses).Any(j => m[j, r.Class] > 0)).ToList();
            return present.Count == 0 ? double.NaN : present.Average(r => r.F1);
        }
    }

    /// <summary>The off-diagonal confusion cells with the most items, largest first (at least <paramref name="minCount"/>).</summary>
    public IReadOnlyList<ConfusedPair> MostConfused(int top = 10, int minCount = 1)
    {
        var m = ConfusionMatrix;
        var pairs = new List<ConfusedPair>();
        for (int a = 0; a < NumClasses; a++)
            for (int p = 0; p < NumClasses; p++)
                if (a != p && m[a, p] >= minCount) pairs.Add(new ConfusedPair(a, p, m[a, p]));
        return pairs.OrderByDescending(x => x.Count).ThenBy(x => x.Actual).ThenBy(x => x.Predicted).Take(top).ToList();
    }

    /// <summary>The <paramref name="top"/> items with the highest loss.</summary>
    public IReadOnlyList<TopLoss> TopLosses(int top = 10) =>
        Enumerable.Range(0, Count).OrderByDescending(i => Losses[i]).ThenBy(i => Indices[i]).Take(top)
            .Select(i => new TopLoss(Indices[i], Losses[i], Targets[i], Predictions[i], Softmax(i)[Predictions[i]])).ToList();

    private double[] Softmax(int i)
    {
        var row = Logits(i);
        double max = double.NegativeInfinity;
        foreach (var v in row) max = Math.Max(max, v);
        var e = new double[row.Length];
        double sum = 0;
        for (int c = 0; c < row.Length; c++) sum += e[c] = Math.Exp(row[c] - max);
        for (int c = 0; c < row.Length; c++) e[c] /= sum;
        return e;
    }

    /// <summary>A plain-text report: loss, accuracy, macro-F1, per-class table (with optional class names) and most confused pairs.</summary>
    public string Report(IReadOnlyList<string>? classNames = null)
    {
        string Name(int c) => classNames is not null && c < classNames.Count ? classNames[c] : c.ToString(CultureInfo.InvariantCulture);
        var sb = new System.Text.StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"items {Count}  loss {Loss:F4}  accuracy {Accuracy:F4}  macro_f1 {MacroF1:F4}");
        sb.AppendLine("class\tprecision\trecall\tf1\tsupport");
        foreach (var r in PerClass())
            sb.AppendLine(CultureInfo.InvariantCulture, $"{Name(r.Class)}\t{r.Precision:F4}\t{r.Recall:F4}\t{r.F1:F4}\t{r.Support}");
        sb.AppendLine("most confused (actual -> predicted: count)");
        foreach (var p in MostConfused(5))
            sb.AppendLine(CultureInfo.InvariantCulture, $"{Name(p.Actual)} -> {Name(p.Predicted)}: {p.Count}");
        return sb.ToString();
    }
}
