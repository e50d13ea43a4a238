using System.Diagnostics;
using ModelZoo.Data;
using ModelZoo.FineTune;
using ModelZoo.Tasks.Recipes;
using ModelZoo.Tasks.Reports;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tasks.Vision;

/// <summary>Settings of the Fashion-MNIST quickstart; the defaults are the measured recipe (docs/quickstarts.md).</summary>
public sealed record VisionQuickstartOptions
{
    /// <summary>Catalog model with offline pretrained weights.</summary>
    public string Model { get; init; } = "resnet18-cntk";

    /// <summary>Folder with the Fashion-MNIST IDX files; null to find or fetch them.</summary>
    public string? DataFolder { get; init; }

    /// <summary>Side the 28×28 images are fed at.</summary>
    public int ImageSize { get; init; } = 28;

    /// <summary>Last stage that stays frozen and is computed once and cached (fp16 in memory).</summary>
    public string CacheThrough { get; init; } = "layer2";

    /// <summary>Stages removed by surgery (replaced with identities) to save compute at this small resolution.</summary>
    public IReadOnlyList<string> DropStages { get; init; } = ["layer4"];

    /// <summary>Blocks removed from the trained stage (fewer blocks train faster: more passes fit the budget).</summary>
    public IReadOnlyList<string> RemoveBlocks { get; init; } = ["layer3.1"];

    /// <summary>Remove the stem max-pool (keeps spatial detail at small resolution).</summary>
    public bool DropMaxPool { get; init; } = true;

    /// <summary>Mini-batch size.</summary>
    public int BatchSize { get; init; } = 256;

    /// <summary>Passes over the training set (fractions allowed); shortened to fit <see cref="TimeBudgetSeconds"/>.</summary>
    public double Epochs { get; init; } = 3.0;

    /// <summary>Peak learning rate of the one-cycle schedule.</summary>
    public double Lr { get; init; } = 2e-3;

    /// <summary>AdamW weight decay.</summary>
    public double WeightDecay { get; init; } = 0.05;

    /// <summary>Label smoothing.</summary>
    public double LabelSmoothing { get; init; } = 0.1;

    /// <summary>Random horizontal flips of the cached feature maps.</summary>
    public bool Flip { get; init; }

    /// <summary>Wall-time budget for the whole run, from start to the printed accuracy; training is planned to fit.</summary>
    public int TimeBudgetSeconds { get; init; } = 280;

    /// <summary>Use only this many training images (0 = all 60,000); for smoke tests.</summary>
    public int TrainLimit { get; init; }

    /// <summary>Use only this many test images (0 = all 10,000); for smoke tests.</summary>
    public int TestLimit { get; init; }

    /// <summary><c>auto</c>, <c>cpu</c>, <c>cuda</c>, <c>cuda:N</c>.</summary>
    public string Device { get; init; } = "auto";

    /// <summary>Seed for the head, shuffling and flips.</summary>
    public int Seed { get; init; } = 42;

    /// <summary>Folder under which the run folder is created.</summary>
    public string Output { get; init; } = "runs";
}

/// <summary>What a quickstart produced.</summary>
/// <param name="RunFolder">Run folder with checkpoint, metrics and report.</param>
/// <param name="TestAccuracy">Accuracy on the test set.</param>
/// <param name="TestCount">Test items evaluated.</param>
/// <param name="Elapsed">Wall time from start to the evaluated result.</param>
/// <param name="Checkpoint">Path of the saved checkpoint.</param>
public sealed record QuickstartResult(string RunFolder, double TestAccuracy, int TestCount, TimeSpan Elapsed, string Checkpoint)
{
    /// <summary>The quickstart against its simple baseline on the same held-out items, when one was fitted (the text quickstart).</summary>
    public ModelZoo.Tasks.Baselines.BaselineComparison? Baseline { get; init; }
}

/// <summary>
/// <c>zoo quickstart vision</c>: Fashion-MNIST → a fine-tuned pretrained ResNet-18 in a few minutes on a CPU.
/// The plan: feed the 28×28 images without the stem max-pool, remove the last stage (surgery), compute the frozen
/// stem, layer1 and layer2 once for all images (cached fp16 feature maps), fine-tune layer3 and a new head on the
/// cache with AdamW and a one-cycle schedule whose length is planned from the measured step time so the run fits its
/// budget, then put the frozen stages back and evaluate the whole model on the full test set.
/// </summary>
public static class VisionQuickstart
{
    /// <summary>Runs the quickstart, writing progress to <paramref name="log"/>.</summary>
    public static QuickstartResult Run(VisionQuickstartOptions o, TextWriter log)
    {
        var total = Stopwatch.StartNew();
        var choice = DeviceSelector.Resolve(o.Device);
        var device = choice.Device;
        Learner.SeedEverything(o.Seed);
        log.WriteLine($"device: {choice.Reason}; {torch.get_num_threads()} threads");

        // 1. Data
        var folder = FashionMnistSource.Ensure(o.DataFolder, log);
        var (train, test) = FashionMnist.Load(folder);
        var (trainX, trainY) = Take(train.ToTensors(), o.TrainLimit);
        var (testX, testY) = Take(test.ToTensors(), o.TestLimit);
        int nTrain = (int)trainX.shape[0], nTest = (int)testX.shape[0];
        log.WriteLine($"data: Fashion-MNIST from {folder}: {nTrain:N0} training and {nTest:N0} test images, {train.ClassNames.Count} classes");

        // 2. Model and surgery
        var model = Zoo.Load(o.Model);
        var pre = model.Preprocessing;
        var surgery = new List<SurgeryStep>();
        if (o.DropMaxPool) surgery.Add(new SurgeryStep { Replace = "maxpool", With = "identity" });
        surgery.AddRange(o.DropStages.Select(s => new SurgeryStep { Replace = s, With = "identity" }));
        surgery.AddRange(o.RemoveBlocks.Select(s => new SurgeryStep { Remove = s }));
        TrainedModelSpec.ApplySurgery(model, surgery);
        model.ReplaceHead(train.ClassNames.Count);
        model.to(device);
        log.WriteLine($"model: {o.Model} ({model.LoadedWeights?.Tag ?? "random init"}), input {o.ImageSize}×{o.ImageSize} gray→3 channels, " +
            $"preprocessing {pre.ChannelOrder} ×{pre.ValueRange:0} − mean; surgery: {Describe(surgery)}; new head {model.PreLogitsWidth()}→{train.ClassNames.Count}");

        // 3. Cache the frozen prefix once
        var mean = pre.Mean.Select(m => m / pre.ValueRange).ToArray();
        var std = pre.Std.Select(s => s / pre.ValueRange).ToArray();
        TensorDataLoader Images(Tensor x, Tensor y) => new(x, y, batchSize: 500, resize: o.ImageSize == 28 ? 0 : o.ImageSize, channels: 3, mean: mean, std: std);
        var cache = PrefixCache.Plan(model, o.CacheThrough, [3, o.ImageSize, o.ImageSize]);
        Tensor trainF, testF;
        TimeSpan cacheTime;
        using (var trainImages = Images(trainX, trainY))
        using (var testImages = Images(testX, testY))
        {
            (trainF, var t1) = cache.Compute(trainImages, nTrain);
            (testF, var t2) = cache.Compute(testImages, nTest);
            cacheTime = t1 + t2;
        }
        log.WriteLine($"cache: {string.Join("+", cache.Stages)} computed once for {nTrain + nTest:N0} images in {cacheTime.TotalSeconds:F1}s " +
            $"→ [{string.Join("×", cache.FeatureShape)}] fp16, {(trainF.numel() + testF.numel()) * 2 / 1e6:F0} MB");
        cache.Detach();

        // 4. Train the rest on the cache, planned to fit the budget
        var runFolder = RecipeRunner.NewRunFolder(o.Output, "quickstart-vision");
        var spec = new TrainedModelSpec
        {
            Task = "vision", Model = o.Model, Surgery = surgery, ClassNames = train.ClassNames.ToList(), ImageSize = o.ImageSize,
            Preprocessing = pre,
        };
        var options = new LearnerOptions
        {
            Optimizer = OptimizerSettings.AdamW(weightDecay: o.WeightDecay), Seed = o.Seed, Device = device, Output = log,
            Config = spec.ToJson(), RunFolder = runFolder,
        };
        var rng = new Random(o.Seed);
        using var trainLoader = new TensorDataLoader(trainF, trainY, o.BatchSize, shuffle: true, seed: o.Seed, dropLast: true);
        IEnumerable<Batch> Stream()
        {
            while (true)
                foreach (var b in trainLoader) yield return o.Flip ? FlipHalf(b, rng) : b;
        }
        int plannedSteps = Math.Max(1, (int)Math.Round(o.Epochs * nTrain / o.BatchSize));
        double stepSeconds = MeasureStep(model, trainF, trainY, o.BatchSize, device);
        double evalSeconds = EstimateEval(model, testF, device) + 8;
        double left = o.TimeBudgetSeconds - total.Elapsed.TotalSeconds - evalSeconds;
        int budgetSteps = Math.Max(1, Math.Min(plannedSteps, (int)(left / stepSeconds)));
        // The steps are split into equal epochs (at most one pass over the training set each), so that the learner's
        // per-epoch lines count the epochs announced here; the batch stream runs on across epochs.
        int epochs = Math.Max(1, (int)Math.Ceiling(budgetSteps * (double)o.BatchSize / nTrain - 1e-9));
        int stepsPerEpoch = (int)Math.Ceiling(budgetSteps / (double)epochs);
        int steps = stepsPerEpoch * epochs;
        log.WriteLine($"train: the rest of the model + new head on the cache, AdamW lr {o.Lr:G3} one-cycle, wd {o.WeightDecay}, label smoothing {o.LabelSmoothing}, " +
            $"batch {o.BatchSize}{(o.Flip ? ", random flips" : "")}; {epochs} epoch{(epochs == 1 ? "" : "s")} of {stepsPerEpoch} steps = " +
            $"{steps * (double)o.BatchSize / nTrain:F2} passes over the training set " +
            $"({stepSeconds * 1000:F0} ms/step measured{(budgetSteps < plannedSteps ? $", shortened from {plannedSteps} steps to fit the {o.TimeBudgetSeconds}s budget" : "")})");
        var loss = Loss.CrossEntropy(labelSmoothing: o.LabelSmoothing);
        using var testLoader = new TensorDataLoader(testF, testY, 500);
        using var batches = Stream().GetEnumerator();
        IEnumerable<Batch> NextBatches()
        {
            for (int i = 0; i < stepsPerEpoch && batches.MoveNext(); i++) yield return batches.Current;
        }
        var learner = new Learner(model, _ => new CountedBatches(NextBatches(), stepsPerEpoch), valid: null, loss: loss, metrics: [Metric.Accuracy()], options: options);
        var history = new StepHistory();
        var trainWatch = Stopwatch.StartNew();
        learner.Fit(epochs, Schedule.OneCycle(LrSpec.Single(o.Lr), pctStart: 0.25, divFactor: 10, finalDivFactor: 100), [history]);
        trainWatch.Stop();

        // 5. Evaluate on the cached test set (same arithmetic as the full model), then reattach the frozen stages
        var eval = learner.Evaluate(testLoader);
        cache.Reattach();
        CheckReattached(model, cache, testX, testY, eval, mean, std, o.ImageSize, device);
        total.Stop();
        log.WriteLine($"test accuracy: {eval.Accuracy * 100:F2}% on {nTest:N0} images (macro-F1 {eval.MacroF1:F4}); " +
            $"wall time {total.Elapsed.TotalSeconds:F0}s (cache {cacheTime.TotalSeconds:F0}s, training {trainWatch.Elapsed.TotalSeconds:F0}s)");

        // 6. Save the checkpoint and the report
        var ckpt = Path.Combine(runFolder, "best.ckpt");
        learner.Save(ckpt);
        var summary = new EvaluationSummary("test", train.ClassNames, ToLong(eval.ConfusionMatrix), eval.Loss,
            eval.TopLosses(16).Select(t => new Reports.TopLoss($"test image #{t.Index}", train.ClassNames[t.Actual], train.ClassNames[t.Predicted],
                t.Loss, t.Probability, Thumbnail(testX, t.Index))).ToList());
        var facts = new List<(string, string)>
        {
            ("model", $"{o.Model} ({model.LoadedWeights?.Tag ?? "random init"}) with surgery {Describe(surgery)}"),
            ("data", $"Fashion-MNIST: {nTrain:N0} train, {nTest:N0} test"),
            ("device", choice.Reason),
            ("plan", $"cache {string.Join("+", cache.Stages)} (frozen), fine-tune the rest for {steps} steps of {o.BatchSize}"),
            ("time", $"{total.Elapsed.TotalSeconds:F0}s total; cache {cacheTime.TotalSeconds:F0}s; training {trainWatch.Elapsed.TotalSeconds:F0}s"),
            ("test accuracy", $"{eval.Accuracy * 100:F2}%"),
            ("checkpoint", ckpt),
        };
        RunReport.Write(runFolder, "Quickstart: Fashion-MNIST with a pretrained ResNet-18", facts, history.ToHistory(train: eval.Loss), [summary]);
        File.WriteAllText(Path.Combine(runFolder, "result.json"), System.Text.Json.JsonSerializer.Serialize(new
        {
            test_accuracy = eval.Accuracy, test_count = nTest, seconds = total.Elapsed.TotalSeconds, steps, batch_size = o.BatchSize, device = choice.Reason,
        }));
        log.WriteLine($"run folder: {runFolder} (best.ckpt, report.md, report.html, plots)");
        trainF.Dispose(); testF.Dispose();
        return new QuickstartResult(runFolder, eval.Accuracy, nTest, total.Elapsed, ckpt);
    }

    private static string Describe(IEnumerable<SurgeryStep> steps) => RecipeRunner.Describe(steps);

    private static (Tensor X, Tensor Y) Take((Tensor X, Tensor Y) data, int limit) =>
        limit <= 0 || limit >= data.X.shape[0] ? data : (data.X[..limit], data.Y[..limit]);

    private static Batch FlipHalf(Batch b, Random rng)
    {
        var mask = new bool[b.Count];
        for (int i = 0; i < mask.Length; i++) mask[i] = rng.Next(2) == 1;
        using var scope = NewDisposeScope();
        var m = tensor(mask).view(-1, 1, 1, 1).to(b.Input.device);
        var flipped = where(m, b.Input.flip(3), b.Input).MoveToOuterDisposeScope();
        b.Input.Dispose();
        return b with { Input = flipped };
    }

    /// <summary>Times one optimizer step of the trainable part (median of a few), restoring the weights afterwards.</summary>
    private static double MeasureStep(ZooModel model, Tensor features, Tensor labels, int batchSize, Device device)
    {
        var saved = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        var opt = optim.AdamW(model.parameters().Where(p => p.requires_grad), lr: 1e-6);
        var times = new List<double>();
        model.train();
        for (int i = 0; i < 4; i++)
        {
            using var scope = NewDisposeScope();
            var sw = Stopwatch.StartNew();
            var x = features[..batchSize].to(ScalarType.Float32).to(device);
            var y = labels[..batchSize].to(device);
            opt.zero_grad();
            nn.functional.cross_entropy(model.call(x), y).backward();
            opt.step();
            times.Add(sw.Elapsed.TotalSeconds);
        }
        using (no_grad())
            foreach (var (k, v) in model.state_dict()) v.copy_(saved[k]);
        foreach (var t in saved.Values) t.Dispose();
        opt.Dispose();
        return times.Skip(1).Order().ElementAt(1);
    }

    private static double EstimateEval(ZooModel model, Tensor features, Device device)
    {
        model.eval();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var sw = Stopwatch.StartNew();
        model.call(features[..500].to(ScalarType.Float32).to(device));
        model.train();
        return sw.Elapsed.TotalSeconds * features.shape[0] / 500.0;
    }

    /// <summary>Checks that the reattached full model predicts like the cached path did, on the first test images.</summary>
    private static void CheckReattached(ZooModel model, PrefixCache cache, Tensor testX, Tensor testY, Evaluation eval, float[] mean, float[] std, int size, Device device)
    {
        int n = (int)Math.Min(256, testX.shape[0]);
        using var loader = new TensorDataLoader(testX[..n], testY[..n], n, resize: size == 28 ? 0 : size, channels: 3, mean: mean, std: std);
        model.eval();
        using var noGrad = no_grad();
        foreach (var b in loader)
        {
            using var scope = NewDisposeScope();
            var pred = model.call(b.Input.to(device)).argmax(1).cpu().data<long>().ToArray();
            var agree = Enumerable.Range(0, n).Count(i => pred[i] == eval.Predictions[Array.IndexOf(eval.Indices, i)]);
            if (agree < n - 2)
                throw new InvalidOperationException($"The reattached model disagrees with the cached evaluation on {n - agree} of {n} test images; the prefix cache is inconsistent.");
        }
        _ = cache;
    }

    private static long[,] ToLong(int[,] m)
    {
        var r = new long[m.GetLength(0), m.GetLength(1)];
        for (int i = 0; i < m.GetLength(0); i++) for (int j = 0; j < m.GetLength(1); j++) r[i, j] = m[i, j];
        return r;
    }

    private static ReportImage Thumbnail(Tensor images, int index)
    {
        var px = images[index].flatten().data<byte>().ToArray();
        var rgb = new byte[px.Length * 3];
        for (int i = 0; i < px.Length; i++) rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = px[i];
        int side = (int)Math.Sqrt(px.Length);
        return new ReportImage(side, side, rgb);
    }
}

/// <summary>A fixed number of batches from an endless stream, with a known count (so the learner need not enumerate to count).</summary>
internal sealed class CountedBatches(IEnumerable<Batch> stream, int count) : IReadOnlyCollection<Batch>
{
    public int Count => count;

    public IEnumerator<Batch> GetEnumerator() => stream.Take(count).GetEnumerator();

    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
}

/// <summary>Records per-step loss and learning rate for the report's plots.</summary>
/// <remarks>With <paramref name="runClock"/>, each epoch also records the wall time since the run started (time to accuracy).</remarks>
internal sealed class StepHistory(Stopwatch? runClock = null) : Callback, ICheckpointState
{
    private double _wallOffset;
    private readonly List<(long, double)> _lrs = [];
    private readonly List<(long, double)> _losses = [];
    private readonly List<EpochRecord> _epochs = [];
    private double _sum;
    private long _n;
    private readonly Stopwatch _epochWatch = new();

    public override void BeforeEpoch(Learner learner)
    {
        _sum = 0;
        _n = 0;
        _epochWatch.Restart();
    }

    public override void AfterStep(Learner learner)
    {
        if (learner.CurrentLrs.Count > 0) _lrs.Add((learner.GlobalStep, learner.CurrentLrs[^1]));
        if (!double.IsNaN(learner.LastLoss))
        {
            _losses.Add((learner.GlobalStep, learner.LastLoss));
            _sum += learner.LastLoss;
            _n++;
        }
    }

    public override void AfterEpoch(Learner learner)
    {
        var metrics = learner.EpochMetrics.Where(kv => kv.Key != "valid_loss" && kv.Key != "train_loss" && kv.Key != "epoch").ToDictionary(kv => kv.Key, kv => kv.Value);
        double? val = learner.EpochMetrics.TryGetValue("valid_loss", out var v) ? v : null;
        double? wall = runClock is null ? null : _wallOffset + runClock.Elapsed.TotalSeconds;
        _epochs.Add(new EpochRecord(_epochs.Count + 1, "train", _n == 0 ? double.NaN : _sum / _n, val, metrics, _epochWatch.Elapsed.TotalSeconds, wall));
    }

    // Checkpointed so that a resumed run's report shows the steps and epochs from before the interruption.
    public string StateKey => "step_history";

    public string? SaveJson() => System.Text.Json.JsonSerializer.Serialize(new HistoryState(
        _lrs.Select(x => new[] { x.Item1, x.Item2 }).ToList(), _losses.Select(x => new[] { x.Item1, x.Item2 }).ToList(),
        _epochs.Select(e => new EpochState(e.Epoch, e.Phase, e.TrainLoss, e.ValLoss, e.Metrics.ToDictionary(), e.Seconds, e.WallSeconds)).ToList(), _sum, _n), JsonOptions);

    public IReadOnlyDictionary<string, Tensor> SaveTensors() => new Dictionary<string, Tensor>();

    public void Load(string? json, IReadOnlyDictionary<string, Tensor> tensors)
    {
        if (json is null) return;
        var s = System.Text.Json.JsonSerializer.Deserialize<HistoryState>(json, JsonOptions)!;
        _lrs.Clear();
        _lrs.AddRange(s.Lrs.Select(x => ((long)x[0], x[1])));
        _losses.Clear();
        _losses.AddRange(s.Losses.Select(x => ((long)x[0], x[1])));
        _epochs.Clear();
        _epochs.AddRange(s.Epochs.Select(e => new EpochRecord(e.Epoch, e.Phase, e.TrainLoss, e.ValLoss, e.Metrics, e.Seconds, e.WallSeconds)));
        // A resumed run's clock starts at zero: continue from the wall time of the last epoch before the interruption.
        _wallOffset = (_epochs.LastOrDefault()?.WallSeconds ?? 0) - (runClock?.Elapsed.TotalSeconds ?? 0);
        (_sum, _n) = (s.Sum, s.N);
    }

    private static readonly System.Text.Json.JsonSerializerOptions JsonOptions = new() { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

    private sealed record EpochState(int Epoch, string Phase, double TrainLoss, double? ValLoss, Dictionary<string, double> Metrics, double Seconds, double? WallSeconds = null);

    private sealed record HistoryState(List<double[]> Lrs, List<double[]> Losses, List<EpochState> Epochs, double Sum, long N);

    public TrainingHistory ToHistory(double? train = null)
    {
        _ = train;
        return new TrainingHistory(_epochs, _lrs, _losses);
    }
}
