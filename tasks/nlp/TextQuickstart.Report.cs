using ModelZoo.Data;
using ModelZoo.FineTune;
using ModelZoo.Tasks.Reports;
using static TorchSharp.torch;

namespace ModelZoo.Tasks.Nlp;

// Before saving: the whole model must reproduce the cached path; then what the report shows of the held-out texts.
public static partial class TextQuickstart
{
    /// <summary>Runs the whole model (encoder + head) on a few test texts and checks it predicts what the cached path predicted.</summary>
    private static void CheckFullModel(ModelZoo.Models.Nlp.TextEncoder model, List<int[]> rows, Evaluation eval, int padId, Device device)
    {
        if (rows.Count == 0) return;
        model.eval();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var x = Pad(rows, padId, device);
        var pred = model.Forward(x, x.ne(padId).to_type(ScalarType.Int64)).argmax(1).cpu().data<long>().ToArray();
        int agree = Enumerable.Range(0, rows.Count).Count(i => pred[i] == eval.Predictions[i]);
        if (agree < rows.Count - 1)
            throw new InvalidOperationException($"The full model disagrees with the cached evaluation on {rows.Count - agree} of {rows.Count} test texts; the embedding cache is inconsistent.");
    }

    /// <summary>The held-out evaluation as the report shows it: the confusion matrix, the loss and the 12 worst texts with a snippet each.</summary>
    private static EvaluationSummary TestSummary(Evaluation eval, TextDataset dataset, Dictionary<int, string> texts, IReadOnlyList<string> classes) =>
        new("test", classes, ToLong(eval.ConfusionMatrix), eval.Loss,
            eval.TopLosses(12).Select(t => new Reports.TopLoss(ShortSource(dataset, t.Index), classes[t.Actual], classes[t.Predicted], t.Loss, t.Probability,
                Text: Snippet(texts[t.Index]))).ToList());

    private static string ShortSource(TextDataset data, int index)
    {
        var d = data.Describe(index);
        return Directory.Exists(data.Source) && d.StartsWith(data.Source, StringComparison.Ordinal) ? Path.GetRelativePath(data.Source, d) : d;
    }

    private static string Snippet(string text)
    {
        var s = string.Join(' ', text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));
        return s.Length > 240 ? s[..240] + "…" : s;
    }

    private static long[,] ToLong(int[,] m)
    {
        var r = new long[m.GetLength(0), m.GetLength(1)];
        for (int i = 0; i < m.GetLength(0); i++) for (int j = 0; j < m.GetLength(1); j++) r[i, j] = m[i, j];
        return r;
    }
}
