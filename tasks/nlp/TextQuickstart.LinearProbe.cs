using System.Diagnostics;
using ModelZoo.FineTune;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tasks.Nlp;

// The frozen-encoder path: a linear probe on cached pooled features, folded into the model's head.
public static partial class TextQuickstart
{
    /// <summary>
    /// 4b. Pools every layer's states of every text once with the frozen encoder; 5b. trains a linear head on the cache
    /// (and, with a token bag, 5c. adds the bag's own head); the folded weights go into the model's sequence head.
    /// </summary>
    private static Trained TrainFrozenProbe(Prepared p, int maxLength, Curves curves)
    {
        var (model, o, log, device) = (p.Model, p.Options, p.Log, p.Device);
        var (trainIdx, testIdx, history) = (p.TrainIdx, p.TestIdx, curves.Losses);
        model.Pooling = ModelZoo.Models.Nlp.TextPooling.LayerMeanMax;
        var sw = Stopwatch.StartNew();
        var trainF = Embed(model, trainIdx.Select(i => p.Ids[i]).ToList(), p.PadId, o.BatchSize, device, log, "train");
        var testF = Embed(model, testIdx.Select(i => p.Ids[i]).ToList(), p.PadId, o.BatchSize, device, log, "test");
        var twEmbed = sw.Elapsed;
        int denseFeatures = model.NumFeatures;
        log.WriteLine($"cache: {trainIdx.Length + testIdx.Length:N0} pooled {denseFeatures}-d feature vectors in {twEmbed.TotalSeconds:F0}s");
        sw.Restart();
        // The head's share of what is left of the budget: most of it, but with a token bag to fit after it, 60 %.
        double headSeconds = Math.Max(0, p.SecondsLeft) * (p.BagIds is null ? 0.9 : 0.6);
        var (w, b, steps, stepSeconds) = TrainProbe(trainF, p.TrainY, p.NumClasses, device, o, history, curves.Lrs, headSeconds);
        var logits = Logits(testF, w, b);
        log.WriteLine($"train: linear head {denseFeatures}→{p.NumClasses} on standardized embeddings, full-batch Adam lr {o.Lr:G3} (warm-up + cosine), " +
            $"L2 {o.L2:G3}, {steps} steps in {sw.Elapsed.TotalSeconds:F1}s; final train loss {history[^1].Item2:F4}" +
            (steps < o.HeadSteps ? $" (fewer than --head-steps {o.HeadSteps}: a step measured {stepSeconds * 1000:F0} ms on {trainIdx.Length:N0} texts × {p.NumClasses} classes, and {headSeconds:F0}s of the budget were left for the head)" : ""));
        string method = $"frozen encoder; mean and max of all {model.NumLayers + 1} hidden states ({denseFeatures} features); linear head ({steps} full-batch steps)";
        ModelZoo.Models.Nlp.TokenBag? bag = null;
        if (p.BagIds is not null)
        {
            (logits, w, b, bag) = AddTokenBag(p, trainF, logits, w, b);
            method += $" + token bag over the first {o.BagTokens} tokens (TF-IDF, logistic regression), logits balanced by their training spread and averaged";
        }
        var twHead = sw.Elapsed;
        // The model: encoder (+ token bag) and one linear head holding the folded weights
        if (bag is not null)
        {
            model.UseTokenBag();
            model.EncoderWindow = maxLength;
            using (no_grad()) model.TokenBag!.Idf.copy_(bag.Idf);
            bag.Dispose();
        }
        model.ReplaceSequenceHead(p.NumClasses);
        model.to(device);
        SetHead(model, w, b);
        var eval = EvaluateLogits(logits, p.TestY, testIdx);
        curves.Epochs.Add(new(1, "train", history.Average(h => h.Item2), eval.Loss, new Dictionary<string, double> { ["accuracy"] = eval.Accuracy }, twHead.TotalSeconds));
        trainF.Dispose(); testF.Dispose(); logits.Dispose(); w.Dispose(); b.Dispose();
        return new Trained(eval, twEmbed, twHead, method);
    }

    /// <summary>
    /// A linear probe on cached pooled features: standardize, full-batch Adam (warm-up + cosine) with an L2 penalty and
    /// class-balanced cross-entropy, then fold the standardization into the weights. Returns the folded weight C×F and
    /// bias C, on <paramref name="device"/>, the steps taken and the measured seconds per step. A step costs about
    /// N × F × C multiply-adds three times over, so on many texts and many classes the
    /// <see cref="TextQuickstartOptions.HeadSteps"/> would not fit: the steps are then cut to what
    /// <paramref name="seconds"/> allows (<see cref="PlanSteps"/>), the schedule spread over them.
    /// </summary>
    private static (Tensor Weight, Tensor Bias, int Steps, double StepSeconds) TrainProbe(Tensor features, Tensor labels, int numClasses, Device device, TextQuickstartOptions o,
        List<(long, double)> losses, List<(long, double)> lrs, double seconds)
    {
        using var outer = NewDisposeScope();
        var x = features.to(device);
        var y = labels.to(device);
        var mean = x.mean([0]);
        // Features (nearly) constant over the training set carry nothing and would make the folded weights W/σ huge
        // (catastrophic cancellation in float32 against W·μ/σ), so they are left out: σ is set to 1 and the value to 0.
        var rawStd = x.std(0);
        var keep = rawStd.gt(mean.abs().clamp_min(1).mul(1e-4)).to(x.dtype);
        var std = torch.where(keep.to(ScalarType.Bool), rawStd, ones_like(rawStd));
        var xs = (x - mean) / std * keep;
        torch.manual_seed(o.Seed);
        using var linear = nn.Linear(x.shape[1], numClasses).to(device);
        using (no_grad()) { linear.weight!.zero_(); linear.bias!.zero_(); }
        var weights = BalancedWeights(y, numClasses);
        // The cost of a step, measured: forward and backward three times (the weights are still zero, nothing is updated).
        double stepSeconds = double.MaxValue;
        for (int i = 0; i < 3; i++)
        {
            using var scope = NewDisposeScope();
            var sw = Stopwatch.StartNew();
            nn.functional.cross_entropy(linear.call(xs), y, weight: weights).add(linear.weight!.square().sum().mul(o.L2)).backward();
            _ = linear.weight!.grad!.sum().item<float>();
            stepSeconds = Math.Min(stepSeconds, sw.Elapsed.TotalSeconds);
            linear.zero_grad();
        }
        int steps = PlanSteps(o.HeadSteps, stepSeconds * 1.2, seconds); // the update adds a little to forward + backward
        using var opt = optim.Adam(linear.parameters(), lr: o.Lr);
        int warm = Math.Max(1, steps / 20);
        for (int step = 0; step < steps; step++)
        {
            using var scope = NewDisposeScope();
            double lr = step < warm ? o.Lr * (step + 1) / warm : o.Lr * 0.5 * (1 + Math.Cos(Math.PI * (step - warm) / Math.Max(1, steps - warm)));
            foreach (var g in opt.ParamGroups) g.LearningRate = lr;
            opt.zero_grad();
            var loss = nn.functional.cross_entropy(linear.call(xs), y, weight: weights).add(linear.weight!.square().sum().mul(o.L2));
            loss.backward();
            opt.step();
            losses.Add((step + 1, loss.item<float>()));
            lrs.Add((step + 1, lr));
        }
        // classifier(x) = W ((x − μ)/σ) + b = (W/σ) x + (b − W (μ/σ))
        using (no_grad())
        {
            var w = linear.weight!.mul(keep).div(std);
            var b = linear.bias!.sub(w.matmul(mean));
            return (w.detach().MoveToOuterDisposeScope(), b.detach().MoveToOuterDisposeScope(), steps, stepSeconds);
        }
    }

    /// <summary>Fewest full-batch steps a head gets, however little time is left (then the run overruns its budget, and says so).</summary>
    internal const int MinHeadSteps = 200;

    /// <summary>
    /// The steps of a full-batch head: <paramref name="wanted"/>, or as many as <paramref name="seconds"/> allow at
    /// <paramref name="stepSeconds"/> each, but at least <see cref="MinHeadSteps"/> (or <paramref name="wanted"/> when fewer are asked for).
    /// </summary>
    internal static int PlanSteps(int wanted, double stepSeconds, double seconds) =>
        Math.Max(Math.Min(wanted, MinHeadSteps), (int)Math.Min(wanted, Math.Floor(seconds / Math.Max(stepSeconds, 1e-9))));

    /// <summary>Class weights n / (C · n_c) of the labels <paramref name="y"/> (<see cref="Loss.BalancedClassWeights"/>), so a rare class is not ignored on skewed data.</summary>
    private static Tensor BalancedWeights(Tensor y, int numClasses)
    {
        using var counts = bincount(y.cpu(), minlength: numClasses);
        return tensor(Loss.BalancedClassWeights(counts.data<long>().ToArray())).to(y.device);
    }

    /// <summary>Logits x·Wᵀ + b of cached features (on the weights' device), returned on the CPU.</summary>
    private static Tensor Logits(Tensor features, Tensor weight, Tensor bias)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        return features.to(weight.device).matmul(weight.t()).add(bias).to(ScalarType.Float32).cpu().MoveToOuterDisposeScope();
    }

    private static double Accuracy(Tensor logits, Tensor labels)
    {
        using var scope = NewDisposeScope();
        return logits.argmax(1).eq(labels.cpu()).to(ScalarType.Float32).mean().item<float>();
    }

    /// <summary>Copies a folded linear classifier into the model's sequence head.</summary>
    private static void SetHead(ModelZoo.Models.Nlp.TextEncoder model, Tensor weight, Tensor bias)
    {
        var p = model.Get(model.HeadPath)!.named_parameters().ToDictionary(kv => kv.name, kv => kv.parameter);
        if (p["weight"].shape[1] != weight.shape[1])
            throw new InvalidOperationException($"The head takes {p["weight"].shape[1]} features but the trained weights have {weight.shape[1]}.");
        using var noGrad = no_grad();
        p["weight"].copy_(weight);
        p["bias"].copy_(bias);
    }

    private static Evaluation EvaluateLogits(Tensor logits, Tensor labels, int[] indices)
    {
        using var scope = NewDisposeScope();
        var y = labels.cpu();
        var per = nn.functional.cross_entropy(logits, y, reduction: nn.Reduction.None);
        return new Evaluation(logits.data<float>().ToArray(), (int)logits.shape[1], y.data<long>().ToArray().Select(v => (int)v).ToArray(),
            per.data<float>().ToArray(), indices);
    }
}
