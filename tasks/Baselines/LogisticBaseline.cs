using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tasks.Baselines;

/// <summary>What a baseline scored on the held-out items a quickstart is scored on.</summary>
/// <param name="Method">The baseline in words (features, model, settings).</param>
/// <param name="Accuracy">Accuracy on the held-out items.</param>
/// <param name="MacroF1">Macro-averaged F1 on the held-out items (classes absent from them count as 0 only when predicted).</param>
/// <param name="TrainCount">Training items it was fitted on.</param>
/// <param name="HeldOutCount">Held-out items it was scored on.</param>
/// <param name="Elapsed">Wall time: features, fitting and scoring.</param>
/// <param name="Note">Anything that makes the comparison less than exact (a sampled training set, unreadable items), or null.</param>
public sealed record BaselineResult(string Method, double Accuracy, double MacroF1, int TrainCount, int HeldOutCount, TimeSpan Elapsed, string? Note = null);

/// <summary>
/// Multinomial logistic regression as scikit-learn's <c>LogisticRegression()</c> fits it by default: cross-entropy
/// summed over the items plus ½‖W‖² (C = 1; the bias is not penalized), full-batch L-BFGS for at most 100 iterations,
/// in TorchSharp. Features may be dense or a sparse COO matrix (TF-IDF). The simple baselines of the quickstarts
/// (<see cref="PixelBaseline"/>, <see cref="TfidfBaseline"/>) are built on it.
/// </summary>
public static class LogisticBaseline
{
    /// <summary>Most L-BFGS iterations (scikit-learn's <c>max_iter</c> default).</summary>
    public const int MaxIterations = 100;

    /// <summary>
    /// Fits weights on <paramref name="x"/> (N×F, dense or sparse COO, float32, CPU) and <paramref name="y"/> (N labels in
    /// 0..<paramref name="numClasses"/>−1). Returns the weight F×C and the bias C. Should L-BFGS (which TorchSharp runs
    /// without a line search) end on a non-finite or higher loss than it started from, the fit is redone with 300
    /// full-batch Adam steps.
    /// </summary>
    public static (Tensor Weight, Tensor Bias) Fit(Tensor x, long[] y, int numClasses, double c = 1.0)
    {
        if (x.shape[0] != y.Length) throw new ArgumentException($"{x.shape[0]} feature rows but {y.Length} labels.");
        using var scope = NewDisposeScope();
        var target = tensor(y);
        long n = y.Length, f = x.shape[1];
        // sum CE + ½‖W‖²/C, divided by N so the loss stays near 1 whatever N is (the minimum is the same).
        double l2 = 0.5 / (c * n);
        var w = nn.Parameter(zeros(f, numClasses));
        var b = nn.Parameter(zeros(numClasses));
        Tensor Loss() => nn.functional.cross_entropy(x.matmul(w).add(b), target).add(w.square().sum().mul(l2));
        double start;
        using (no_grad()) start = Loss().item<float>();
        using (var lbfgs = optim.LBFGS([w, b], lr: 1, max_iter: MaxIterations, tolerange_grad: 1e-6, tolerance_change: 1e-9, history_size: 10))
        {
            lbfgs.step(() =>
            {
                lbfgs.zero_grad();
                var loss = Loss();
                loss.backward();
                return loss;
            });
        }
        double final;
        using (no_grad()) final = Loss().item<float>();
        if (!double.IsFinite(final) || final > start)
        {
            using (no_grad()) { w.zero_(); b.zero_(); }
            using var adam = optim.Adam([w, b], lr: 0.05);
            for (int step = 0; step < 300; step++)
            {
                using var stepScope = NewDisposeScope();
                adam.zero_grad();
                Loss().backward();
                adam.step();
            }
        }
        return (w.detach().MoveToOuterDisposeScope(), b.detach().MoveToOuterDisposeScope());
    }

    /// <summary>Predicted class of each row of <paramref name="x"/> (dense or sparse COO).</summary>
    public static int[] Predict(Tensor x, Tensor weight, Tensor bias)
    {
        if (x.shape[0] == 0) return [];
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        return x.matmul(weight).add(bias).argmax(1).to(ScalarType.Int32).data<int>().ToArray();
    }

    /// <summary>Accuracy and macro-F1 of <paramref name="predicted"/> against <paramref name="actual"/>.</summary>
    public static (double Accuracy, double MacroF1) Score(IReadOnlyList<int> predicted, IReadOnlyList<long> actual, int numClasses)
    {
        if (predicted.Count != actual.Count) throw new ArgumentException($"{predicted.Count} predictions for {actual.Count} labels.");
        if (actual.Count == 0) return (double.NaN, double.NaN);
        var tp = new int[numClasses];
        var predCount = new int[numClasses];
        var trueCount = new int[numClasses];
        for (int i = 0; i < actual.Count; i++)
        {
            predCount[predicted[i]]++;
            trueCount[actual[i]]++;
            if (predicted[i] == actual[i]) tp[predicted[i]]++;
        }
        double f1Sum = 0;
        int counted = 0;
        for (int k = 0; k < numClasses; k++)
        {
            if (trueCount[k] == 0 && predCount[k] == 0) continue;
            counted++;
            f1Sum += 2.0 * tp[k] / (trueCount[k] + predCount[k]);
        }
        return (tp.Sum() / (double)actual.Count, counted == 0 ? 0 : f1Sum / counted);
    }

    /// <summary>Fits on the training features, scores on the held-out ones, and times the whole (features included from <paramref name="clock"/>).</summary>
    internal static BaselineResult FitAndScore(string method, Tensor trainX, long[] trainY, Tensor testX, long[] testY, int numClasses, Stopwatch clock, string? note)
    {
        var (w, b) = Fit(trainX, trainY, numClasses);
        using (w)
        using (b)
        {
            var predicted = Predict(testX, w, b);
            var (acc, f1) = Score(predicted, testY, numClasses);
            return new BaselineResult(method, acc, f1, trainY.Length, testY.Length, clock.Elapsed, note);
        }
    }
}
