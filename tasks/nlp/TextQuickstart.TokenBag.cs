using System.Diagnostics;
using static TorchSharp.torch;

namespace ModelZoo.Tasks.Nlp;

// The token-bag branch of the frozen-encoder path: TF-IDF over many more tokens, its own logistic regression, merged into the head.
public static partial class TextQuickstart
{
    /// <summary>
    /// 5c. The token bag over the first BagTokens tokens: fits a bag's vocabulary and IDF on the training texts, trains its own
    /// logistic regression, then makes the two linear heads one over [pooled features, bag features] (their logits add).
    /// Returns the combined test logits, weight and bias, and the fitted bag (for the model).
    /// </summary>
    private static (Tensor Logits, Tensor Weight, Tensor Bias, ModelZoo.Models.Nlp.TokenBag Bag) AddTokenBag(Prepared p, Tensor trainF, Tensor logits, Tensor w, Tensor b)
    {
        var (model, o, log, bagIds) = (p.Model, p.Options, p.Log, p.BagIds!);
        // The bag reads every training text, also when the encoder read only a sample of them (it costs no encoder pass).
        var (trainIdx, testIdx, trainY, testY) = (p.BagTrainIdx, p.TestIdx, p.BagTrainY, p.TestY);
        var swBag = Stopwatch.StartNew();
        var bag = new ModelZoo.Models.Nlp.TokenBag(model.VocabSize);
        bag.Fit(trainIdx.Select(i => bagIds[i]));
        var active = tensor(bag.ActiveIds());
        var trainB = BagFeatures(bag, trainIdx.Select(i => bagIds[i]).ToList(), active, p.PadId);
        var testB = BagFeatures(bag, testIdx.Select(i => bagIds[i]).ToList(), active, p.PadId);
        var (wb, bb, bagLoss, bagEvals) = TrainBag(trainB, trainY, p.NumClasses, p.Device, o, Math.Max(0, p.SecondsLeft) * 0.9);
        var bagLogits = Logits(testB, wb, bb);
        log.WriteLine($"train: token bag over the first {o.BagTokens} tokens ({active.shape[0]:N0} of {model.VocabSize:N0} word pieces in 2+ training texts), " +
            $"logistic regression (L-BFGS, L2 {o.BagL2:G3}, loss {bagLoss:F4} after {bagEvals} evaluations) in {swBag.Elapsed.TotalSeconds:F1}s; held-out accuracy of the parts: " +
            $"pooled-feature head {Accuracy(logits, testY) * 100:F2}%, token bag {Accuracy(bagLogits, testY) * 100:F2}%");
        // Balance the two before summing: the probe's logits spread far wider (measured ≈ 2.4× on SpamAssassin),
        // so a plain sum is the probe's vote. Each part is divided by its logits' spread over the training
        // texts, and the sum scaled by their mean spread (one temperature: the predicted class is unchanged).
        double probeSpread, bagSpread;
        using (var probeTrain = Logits(trainF, w, b)) probeSpread = Spread(probeTrain);
        using (var bagTrain = Logits(trainB, wb, bb)) bagSpread = Spread(bagTrain);
        double scale = (probeSpread + bagSpread) / 2;
        double a1 = scale / probeSpread / 2, a2 = scale / bagSpread / 2;
        logits = logits.mul(a1).add(bagLogits.mul(a2));
        w = cat([w.mul(a1), zeros(w.shape[0], model.VocabSize, device: w.device).index_copy_(1, active.to(w.device), wb.mul(a2))], 1);
        b = b.mul(a1).add(bb.mul(a2));
        log.WriteLine($"combine: logit spreads on the training texts: probe {probeSpread:F2}, token bag {bagSpread:F2}; each scaled to the mean spread and averaged");
        trainB.Dispose(); testB.Dispose(); active.Dispose();
        return (logits, w, b, bag);
    }

    /// <summary>Bag features of <paramref name="rows"/> restricted to the <paramref name="active"/> vocabulary columns (N×A, CPU), in order.</summary>
    private static Tensor BagFeatures(ModelZoo.Models.Nlp.TokenBag bag, List<int[]> rows, Tensor active, int padId)
    {
        var parts = new List<Tensor>();
        using var noGrad = no_grad();
        for (int start = 0; start < rows.Count; start += 64)
        {
            using var scope = NewDisposeScope();
            var x = Pad(rows.GetRange(start, Math.Min(64, rows.Count - start)), padId, CPU);
            parts.Add(bag.Forward(x, x.ne(padId).to_type(ScalarType.Int64)).index_select(1, active).MoveToOuterDisposeScope());
        }
        var all = cat(parts, 0);
        foreach (var p in parts) p.Dispose();
        return all;
    }

    /// <summary>
    /// Logistic regression on bag features (unit-length rows, so no standardization): class-balanced cross-entropy
    /// plus <see cref="TextQuickstartOptions.BagL2"/>·‖W‖², full-batch L-BFGS. Returns weight C×A and bias C on <paramref name="device"/>.
    /// At most 200 iterations, fewer when one evaluation (measured) times 200 would not fit <paramref name="seconds"/>
    /// (but at least <see cref="MinBagIterations"/>).
    /// </summary>
    private static (Tensor Weight, Tensor Bias, double Loss, int Evaluations) TrainBag(Tensor features, Tensor labels, int numClasses, Device device, TextQuickstartOptions o,
        double seconds)
    {
        using var outer = NewDisposeScope();
        var x = features.to(device);
        var y = labels.to(device);
        var weights = BalancedWeights(y, numClasses);
        var w = nn.Parameter(zeros(numClasses, x.shape[1], device: device));
        var b = nn.Parameter(zeros(numClasses, device: device));
        double evalSeconds;
        using (NewDisposeScope())
        {
            var sw = Stopwatch.StartNew();
            nn.functional.cross_entropy(x.matmul(w.t()).add(b), y, weight: weights).add(w.square().sum().mul(o.BagL2)).backward();
            _ = w.grad!.sum().item<float>();
            evalSeconds = sw.Elapsed.TotalSeconds;
            w.grad!.zero_();
            b.grad?.zero_();
        }
        int maxIter = (int)Math.Clamp(Math.Floor(seconds / 1.25 / Math.Max(evalSeconds, 1e-9)), MinBagIterations, 200);
        using var opt = optim.LBFGS([w, b], lr: 1, max_iter: maxIter, tolerange_grad: 1e-7, tolerance_change: 1e-10, history_size: 20);
        int evaluations = 0;
        double last = double.NaN;
        Tensor Closure()
        {
            opt.zero_grad();
            var loss = nn.functional.cross_entropy(x.matmul(w.t()).add(b), y, weight: weights).add(w.square().sum().mul(o.BagL2));
            loss.backward();
            evaluations++;
            last = loss.item<float>();
            return loss;
        }
        opt.step(Closure);
        return (w.detach().MoveToOuterDisposeScope(), b.detach().MoveToOuterDisposeScope(), last, evaluations);
    }

    /// <summary>Fewest L-BFGS iterations of the token bag's regression, however little time is left.</summary>
    internal const int MinBagIterations = 30;

    /// <summary>Standard deviation of logits around each row's mean: how strongly a linear head votes.</summary>
    private static double Spread(Tensor logits)
    {
        using var scope = NewDisposeScope();
        return Math.Max(1e-6, logits.sub(logits.mean([1], keepdim: true)).std().item<float>());
    }
}
