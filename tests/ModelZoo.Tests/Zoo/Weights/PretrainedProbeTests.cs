using System.Diagnostics;
using ModelZoo.Data;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Zoo.Weights;

/// <summary>
/// Issue #4 item 5, the behavioural check of the imported CNTK weights: a linear probe on pretrained
/// <c>resnet18-cntk</c> pooled features of Fashion-MNIST must beat the same probe on random-init features. The
/// preprocessing is the tag's (gray replicated to 3 channels, 0–255 minus the BGR means); the probe is multinomial
/// logistic regression on standardized features, fitted full-batch with L-BFGS (sklearn's default C = 1 penalty).
/// Runs only where Debian's dataset-fashion-mnist is installed (scripts/setup.sh), like the other real-data tests.
/// </summary>
[Collection(FineTune.TorchGlobalRng.Name)]   // the random-init arm is seeded: no test beside it may draw from torch's RNG
public sealed class PretrainedProbeTests(ITestOutputHelper output)
{
    /// <summary>
    /// CI-sized: the first 2,000 training / 1,000 test images at 32 px (about 3,000 ResNet-18 forward passes per arm).
    /// Measured once on this project's shared 2-core machine: pretrained 78.40 %, random init (seed 0) 76.60 %, a
    /// 1.8-point margin, so this asserts 1 point (0.8 of headroom; everything is seeded, so the numbers repeat). At this
    /// size the margin is smaller than the full-size 2 points; the full-size test below asserts those.
    /// </summary>
    [Fact]
    public void Pretrained_features_beat_random_features_small()
    {
        if (!Directory.Exists(FashionMnist.DebianPath)) return; // dataset not installed: nothing to measure here
        var (pretrained, random) = Measure(2000, 1000, 32);
        Assert.True(pretrained - random >= 0.01, $"pretrained {pretrained:P2} vs random init {random:P2}: margin below 1 point (measured 1.8)");
    }

    /// <summary>The full-size check: 64 px, 20,000 training images, the whole 10,000-image test set.</summary>
    [Fact]
    [Trait("Category", "Heavy")]
    public void Pretrained_features_beat_random_features_full_size()
    {
        if (!Directory.Exists(FashionMnist.DebianPath)) return;
        var (pretrained, random) = Measure(20000, 10000, 64);
        Assert.True(pretrained - random >= 0.02, $"pretrained {pretrained:P2} vs random init {random:P2}: margin below 2 points");
    }

    private (double Pretrained, double Random) Measure(int nTrain, int nTest, int size)
    {
        var (train, test) = FashionMnist.Load();
        var (trainX, trainY) = train.ToTensors();
        var (testX, testY) = test.ToTensors();
        using var trX = trainX[..nTrain];
        using var trY = trainY[..nTrain];
        using var teX = testX[..nTest];
        using var teY = testY[..nTest];
        var pre = ModelZoo.Zoo.Load("resnet18-cntk");
        torch.manual_seed(0);
        var rnd = ModelZoo.Zoo.Load("resnet18-cntk", "none");
        double a = Probe(pre, "pretrained", trX, trY, teX, teY, size);
        double b = Probe(rnd, "random init", trX, trY, teX, teY, size);
        foreach (var t in new[] { trainX, trainY, testX, testY }) t.Dispose();
        pre.Dispose();
        rnd.Dispose();
        return (a, b);
    }

    private double Probe(ZooModel model, string name, Tensor trX, Tensor trY, Tensor teX, Tensor teY, int size)
    {
        var sw = Stopwatch.StartNew();
        using var fTrain = LinearProbe.Features(model, trX, trY, size);
        using var fTest = LinearProbe.Features(model, teX, teY, size);
        double featureSeconds = sw.Elapsed.TotalSeconds;
        var (acc, loss, iterations) = LinearProbe.FitAndScore(fTrain, trY, fTest, teY);
        var line = $"{name}: {size}px, {trX.shape[0]} train / {teX.shape[0]} test: accuracy {acc * 100:F2}% " +
            $"(train loss {loss:F4} after {iterations} L-BFGS evaluations; features {featureSeconds:F0}s, probe {sw.Elapsed.TotalSeconds - featureSeconds:F1}s)";
        output.WriteLine(line);
        if (Environment.GetEnvironmentVariable("ZOO_PROBE_LOG") is { Length: > 0 } logFile) File.AppendAllText(logFile, line + Environment.NewLine);
        return acc;
    }
}

/// <summary>Pooled features of a frozen model and a logistic-regression probe on them.</summary>
internal static class LinearProbe
{
    /// <summary>Pooled pre-logit features (eval mode, no gradients) of 28×28 gray images fed as the model's preprocessing says.</summary>
    public static Tensor Features(ZooModel model, Tensor images, Tensor labels, int size)
    {
        var p = model.Preprocessing;
        var mean = p.Mean.Select(m => m / p.ValueRange).ToArray();
        var std = p.Std.Select(s => s / p.ValueRange).ToArray();
        using var loader = new TensorDataLoader(images, labels, batchSize: 250, resize: size == images.shape[^1] ? 0 : size, channels: 3, mean: mean, std: std);
        var parts = new List<Tensor>();
        model.eval();
        using (no_grad())
        {
            foreach (var b in loader)
            {
                using var scope = NewDisposeScope();
                parts.Add(model.ForwardHead(model.ForwardFeatures(b.Input), preLogits: true).flatten(1).MoveToOuterDisposeScope());
            }
        }
        var all = cat(parts, 0);
        foreach (var t in parts) t.Dispose();
        return all;
    }

    /// <summary>
    /// Standardizes with the training statistics, fits softmax regression with an L2 penalty of
    /// <c>0.5·‖W‖²/N</c> (sklearn's <c>LogisticRegression(C=1)</c>) by full-batch L-BFGS, and returns test accuracy.
    /// </summary>
    public static (double Accuracy, double TrainLoss, int Evaluations) FitAndScore(Tensor trainF, Tensor trainY, Tensor testF, Tensor testY, double c = 1.0, int maxIterations = 500)
    {
        using var scope = NewDisposeScope();
        var mu = trainF.mean([0], keepdim: true);
        var sd = trainF.std(0, keepdim: true).clamp_min(1e-6);
        var xtr = (trainF - mu) / sd;
        var xte = (testF - mu) / sd;
        int classes = (int)trainY.max().item<long>() + 1;
        long n = xtr.shape[0], d = xtr.shape[1];
        var w = nn.Parameter(zeros(d, classes));
        var bias = nn.Parameter(zeros(classes));
        double l2 = 1.0 / (c * n);
        var opt = optim.LBFGS([w, bias], lr: 1, max_iter: maxIterations, tolerange_grad: 1e-6, tolerance_change: 1e-10, history_size: 20);
        int evaluations = 0;
        Tensor Closure()
        {
            opt.zero_grad();
            var loss = nn.functional.cross_entropy(xtr.matmul(w) + bias, trainY) + 0.5 * l2 * w.pow(2).sum();
            loss.backward();
            evaluations++;
            return loss;
        }
        opt.step(Closure);
        double final;
        using (no_grad()) final = (nn.functional.cross_entropy(xtr.matmul(w) + bias, trainY) + 0.5 * l2 * w.pow(2).sum()).item<float>();
        if (!double.IsFinite(final)) throw new InvalidOperationException("The L-BFGS probe diverged (non-finite loss).");
        double acc;
        using (no_grad()) acc = (xte.matmul(w) + bias).argmax(1).eq(testY).to(ScalarType.Float64).mean().item<double>();
        opt.Dispose();
        return (acc, final, evaluations);
    }
}
