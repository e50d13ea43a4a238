using System.Diagnostics;
using System.Globalization;
using ModelZoo.Data;
using ModelZoo.FineTune;
using ModelZoo.Tasks.Reports;
using ModelZoo.Tasks.Vision;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tasks.Recipes;

/// <summary>What a recipe run produced.</summary>
/// <param name="RunFolder">The run folder (recipe.yaml, metrics, checkpoints, report).</param>
/// <param name="BestCheckpoint">Path of <c>best.ckpt</c> (the weights the report evaluates).</param>
/// <param name="LastCheckpoint">Path of <c>last.ckpt</c> (the weights at the end of training).</param>
/// <param name="ValidationAccuracy">Accuracy of the best weights on the validation split (NaN without one).</param>
/// <param name="TestAccuracy">Accuracy on the test set, when there is one.</param>
/// <param name="Elapsed">Wall time of the run.</param>
public sealed record RecipeResult(string RunFolder, string BestCheckpoint, string LastCheckpoint, double ValidationAccuracy, double? TestAccuracy, TimeSpan Elapsed);

/// <summary>
/// Runs a <see cref="Recipe"/>: builds the data source and splits, loads the model with its weights, applies the
/// surgery and a new head, trains as <c>train.mode</c> says (linear probe, full fine-tune with discriminative rates,
/// or fastai's freeze-then-unfreeze), and writes the run folder <c>&lt;output&gt;/&lt;date&gt;-&lt;name&gt;/</c> with
/// <c>recipe.yaml</c>, <c>metrics.jsonl</c>/<c>metrics.csv</c>, <c>best.ckpt</c>/<c>last.ckpt</c> and the report.
/// </summary>
public static class RecipeRunner
{
    /// <summary>Runs <paramref name="recipe"/>, writing progress to <paramref name="log"/>.</summary>
    /// <exception cref="RecipeException">The recipe cannot run as written (missing data, wrong source for the model, …); the message says what to change.</exception>
    public static RecipeResult Run(Recipe recipe, TextWriter log) => RunCore(recipe, log, null, null, resumeFolder: null);

    /// <summary>Runs <paramref name="recipe"/>; <paramref name="title"/> and <paramref name="notes"/> (a quickstart's choices) go into the report.</summary>
    internal static RecipeResult Run(Recipe recipe, TextWriter log, string? title, IReadOnlyList<(string, string)>? notes) => RunCore(recipe, log, title, notes, resumeFolder: null);

    /// <summary>
    /// Continues the run in <paramref name="runFolder"/> (written by <see cref="Run(Recipe, TextWriter)"/>, possibly killed):
    /// reads its <c>recipe.yaml</c>, loads <c>last.ckpt</c> and trains on from there. On CPU the result equals an
    /// uninterrupted run bit for bit. Without a <c>last.ckpt</c> (killed before the first checkpoint) it starts over in the
    /// same folder. Temporary files of checkpoint writes that were cut off are deleted.
    /// </summary>
    /// <exception cref="RecipeException">The folder is not a run folder (no recipe.yaml).</exception>
    public static RecipeResult Resume(string runFolder, TextWriter log)
    {
        var recipePath = Path.Combine(runFolder, "recipe.yaml");
        if (!File.Exists(recipePath))
            throw new RecipeException($"'{runFolder}' is not a run folder: it has no recipe.yaml. Pass the folder 'zoo train' created (runs/<date>-<name>/).");
        return RunCore(RecipeLoader.Load(recipePath), log, null, null, Path.GetFullPath(runFolder));
    }

    private static RecipeResult RunCore(Recipe recipe, TextWriter log, string? title, IReadOnlyList<(string, string)>? notes, string? resumeFolder)
    {
        var total = Stopwatch.StartNew();
        var r = recipe;
        var choice = DeviceSelector.Resolve(r.Device);
        var device = choice.Device;
        Learner.SeedEverything(r.Seed);
        log.WriteLine($"recipe '{r.Name}': {r.Description ?? r.Train.Mode}");
        log.WriteLine($"device: {choice.Reason}; {torch.get_num_threads()} threads");

        // 1. Model: weights, surgery, head
        var entry = Zoo.Catalog.Get(r.Model.Name);
        string task = entry.Task == ModelTask.Nlp ? "nlp" : "vision";
        var options = new ModelOptions(NumClasses: 0, InChans: r.Model.InChans);
        ZooModel model;
        try
        {
            model = Zoo.Load(r.Model.Name, r.Model.Weights, options);
        }
        catch (Exception e) when (e is KeyNotFoundException or ModelZoo.Weights.Store.WeightNotAvailableException or FileNotFoundException)
        {
            throw new RecipeException($"model.weights '{r.Model.Weights}' for '{r.Model.Name}' could not be loaded: {e.Message} " +
                "Use 'default', 'none' (random init), a tag from 'zoo info " + r.Model.Name + "', or a state-dict file path.", e);
        }
        var pre = model.Preprocessing;
        int imageSize = task == "vision" ? (r.Data.ImageSize > 0 ? r.Data.ImageSize : pre.CropSize) : 0;
        if (task == "vision" && imageSize != pre.CropSize)
            pre = pre with { CropSize = imageSize, ResizeSize = pre.ResizeSize == 0 ? 0 : (int)Math.Round(imageSize * (double)pre.ResizeSize / pre.CropSize) };
        var plan = new InputPlan(task, r.Model.Name, r.Model.InChans, imageSize, task == "vision" ? pre : null, task == "nlp" ? r.Data.MaxLength : 0);

        // 2. Data: source, limit, stratified validation split, test set
        using var data = DataSources.Open(r.Data.Source, r.Data.Path, testSplit: false, plan, r.Data, log);
        var all = Enumerable.Range(0, data.Count).ToArray();
        var used = DataSources.StratifiedSample(all, data.LabelOf, r.Data.Limit, r.Seed);
        var (trainIdx, valIdx) = r.Data.ValSplit > 0 && r.Data.ValPath is null ? DataSources.StratifiedSplit(used, data.LabelOf, r.Data.ValSplit, r.Seed) : (used, []);
        LabeledData? valData = null;
        if (r.Data.ValPath is not null)
        {
            valData = DataSources.Open(r.Data.Source, r.Data.ValPath, testSplit: true, plan, r.Data, log);
            CheckSameClasses(data, valData, "data.val_path");
            valIdx = Enumerable.Range(0, valData.Count).ToArray();
        }
        using var valOwner = valData;
        var validation = valData ?? data;
        LabeledData? testData = null;
        if (r.Data.TestPath is not null) testData = DataSources.Open(r.Data.Source, r.Data.TestPath, testSplit: true, plan, r.Data, log);
        else if (DataSources.HasOwnTest(r.Data.Source)) testData = DataSources.Open(r.Data.Source, r.Data.Path, testSplit: true, plan, r.Data, log);
        using var testOwner = testData;
        if (testData is not null && r.Data.TestPath is not null) CheckSameClasses(data, testData, "data.test_path");
        int classes = data.ClassNames.Count;
        if (classes < 2) throw new RecipeException($"{data.Source} has {classes} class(es); a classifier needs at least two. Check data.path and data.label.");
        int batchSize = r.Data.BatchSize > 0 ? r.Data.BatchSize : task == "nlp" ? 32 : imageSize <= 64 ? 128 : 32;
        log.WriteLine($"data: {r.Data.Source} from {data.Source}: {trainIdx.Length:N0} train, {valIdx.Length:N0} validation" +
            $"{(testData is null ? "" : $", {testData.Count:N0} test")} items, {classes} classes; batch {batchSize}" +
            (task == "vision" ? $", {imageSize}px, {r.Model.InChans} channel(s){(r.Data.Augment.Count > 0 ? ", augment " + string.Join("+", r.Data.Augment) : "")}" : $", max {r.Data.MaxLength} tokens"));
        if (trainIdx.Length == 0) throw new RecipeException($"{data.Source}: no training items left after data.limit and data.val_split.");

        TrainedModelSpec.ApplySurgery(model, r.Model.Surgery);
        model.ReplaceHead(classes);
        // Dropout has no parameters, so checkpoints rebuild without it (eval mode would skip it anyway).
        if (r.Model.HeadDropout > 0) model.InsertBefore(model.HeadPath, "head_dropout", nn.Dropout(r.Model.HeadDropout));
        model.to(device);
        log.WriteLine($"model: {r.Model.Name} ({model.LoadedWeights?.Tag ?? "random init"}){(r.Model.Surgery.Count > 0 ? "; surgery: " + Describe(r.Model.Surgery) : "")}; new head → {classes} classes");

        // The training order of an epoch is a function of the run's global epoch number (epochs finished so far, restored
        // on resume), not of how often the loader was enumerated before, so a resumed run sees the same batches.
        Learner? learnerRef = null;
        var trainLoader = new EpochAddressedLoader(data.Loader(trainIdx, train: true, batchSize, r.Seed, r.Data.Augment), () => learnerRef?.History.Count ?? 0);
        var validLoader = valIdx.Length > 0 ? validation.Loader(valIdx, train: false, batchSize, r.Seed, []) : null;
        var optimizer = r.Train.Optimizer == "sgd" ? OptimizerSettings.Sgd(r.Train.Momentum, weightDecay: r.Train.WeightDecay) : OptimizerSettings.AdamW(r.Train.WeightDecay);
        var loss = Loss.CrossEntropy(r.Train.LabelSmoothing, ClassWeights(r.Train.ClassWeights, trainIdx, data, log));
        var tta = TestTimeAugmentation.FromNames(r.Eval.Tta);
        if (tta is not null && task != "vision")
            throw new RecipeException($"eval.tta ({tta.Name}) mirrors images; {r.Model.Name} is a {task} model. Remove eval.tta.");
        // train.budget: measured speed decides the epochs; the recipe written below is the planned one.
        string? budgetPlan = r.Train.Budget is null ? null
            : BudgetPlanner.Plan(r, model, trainLoader, validLoader, batchSize, valIdx.Length, testData?.Count ?? 0, loss, optimizer, device, total, tta?.Passes ?? 1, log);

        // 3. Run folder, spec, learner
        var runFolder = resumeFolder ?? NewRunFolder(r.Output, r.Name);
        var recipeYaml = RecipeLoader.ToYaml(r);
        string? resumeFrom = null;
        if (resumeFolder is null)
        {
            File.WriteAllText(Path.Combine(runFolder, "recipe.yaml"), recipeYaml);
        }
        else
        {
            foreach (var stale in Checkpoint.DeleteStaleTemporaryFiles(runFolder))
                log.WriteLine($"resume: deleted {stale}, a checkpoint write that was cut off");
            var lastCkpt = Path.Combine(runFolder, "last.ckpt");
            if (File.Exists(lastCkpt)) resumeFrom = lastCkpt;
            else
            {
                log.WriteLine($"resume: {runFolder} has no last.ckpt yet (the run stopped before its first checkpoint); starting over in the same folder");
                foreach (var f in new[] { "metrics.jsonl", "metrics.csv", "best.ckpt" }) File.Delete(Path.Combine(runFolder, f));
            }
        }
        var spec = new TrainedModelSpec
        {
            Task = task, Model = r.Model.Name, InChans = r.Model.InChans, Surgery = r.Model.Surgery.ToList(), ClassNames = data.ClassNames.ToList(),
            ImageSize = imageSize, Preprocessing = plan.Preprocessing, MaxLength = plan.MaxLength, Recipe = recipeYaml,
        };
        var callbacks = new List<Callback>();
        var history = new StepHistory(total);
        callbacks.Add(history);
        var ema = r.Train.Ema > 0 ? new EmaWeights(r.Train.Ema) : null;
        if (ema is not null) callbacks.Add(ema);
        if (r.Train.EarlyStoppingPatience > 0 && validLoader is not null) callbacks.Add(new EarlyStopping("valid_loss", r.Train.EarlyStoppingPatience));
        if (r.Train.TimeBudgetSeconds > 0) callbacks.Add(new TimeBudget(total, r.Train.TimeBudgetSeconds, exemptCachedHead: r.Train.FeatureCache != "off" && r.Data.Augment.Count == 0));
        var learnerOptions = new LearnerOptions
        {
            Optimizer = optimizer,
            ClipGradNorm = r.Train.ClipGradNorm > 0 ? r.Train.ClipGradNorm : null,
            Seed = r.Seed, RunFolder = runFolder, SaveCheckpoints = validLoader is not null || r.Train.CheckpointEverySteps > 0,
            CheckpointEverySteps = r.Train.CheckpointEverySteps, Device = device, Output = log, Config = spec.ToJson(),
            Callbacks = callbacks,
        };
        var metrics = r.Train.Metrics.Select(m => m switch { "top5" => Metric.TopK(5), "macro_f1" => Metric.MacroF1(), _ => Metric.Accuracy() }).ToList();
        using var learner = new Learner(model, _ => trainLoader, validLoader, loss, metrics, learnerOptions);
        learnerRef = learner;

        double lr = r.Train.Lr;
        if (lr <= 0)
        {
            if (r.Train.Mode == "linear-probe") model.FreezeBackbone();
            var found = learner.FindLr();
            lr = found.Suggested;
            model.Unfreeze();
            log.WriteLine($"lr: 0 in the recipe, so the LR finder ran: suggestion {lr:G3}");
        }

        if (resumeFrom is not null)
        {
            var info = learner.Resume(resumeFrom);
            log.WriteLine($"resume: {resumeFrom} (fit {info.FitIndex + 1}, epoch {info.Epoch + 1}, batch {info.Batch}, step {info.GlobalStep}, saved {info.SavedAtUtc:u})");
        }

        // 4. Train
        var trainWatch = Stopwatch.StartNew();
        string plannedText;
        try
        {
            // The linear probe's cache reads every training item once, in order (the shuffling loader drops the last partial batch).
            plannedText = Train(r, model, learner, trainLoader, () => data.Loader(trainIdx, train: false, batchSize, r.Seed, []), validLoader, lr, batchSize, log);
        }
        catch (LabelOutOfRangeException e) when (e.ItemIndex >= 0 && e.ItemIndex < trainIdx.Length)
        {
            throw new RecipeException($"{data.Describe(trainIdx[e.ItemIndex])} has label {e.Label}, outside the {e.NumClasses} classes the model was built for " +
                $"({string.Join(", ", data.ClassNames.Take(12))}{(data.ClassNames.Count > 12 ? ", …" : "")}). Fix the label or the class list; training stopped.", e);
        }
        trainWatch.Stop();
        var skippedItems = data.SkippedItems;
        if (skippedItems.Count > 0)
            log.WriteLine($"data: {skippedItems.Count} item(s) could not be read and were skipped (first: {skippedItems[0].Item}: {skippedItems[0].Error})");
        if (learner.NonFiniteSkipped > 0)
            log.WriteLine($"training: {learner.NonFiniteSkipped} step(s) skipped because the loss or gradient norm was not finite");

        // 5. Best weights, last checkpoint, evaluation, report
        var best = Path.Combine(runFolder, "best.ckpt");
        var last = Path.Combine(runFolder, "last.ckpt");
        learner.Save(last);
        string weightsChosen = "best.ckpt (evaluated here)";
        if (ema is not null)
            weightsChosen = ChooseEmaOrTrained(learner, ema, validLoader, best, log);
        else if (File.Exists(best)) learner.LoadWeights(best);
        else File.Copy(last, best);
        var summaries = new List<EvaluationSummary>();
        double valAcc = double.NaN;
        double? testAcc = null;
        var evaluation = tta is null ? "plain forward pass" : TtaDescription(tta);
        if (validLoader is not null)
        {
            Evaluation ev;
            if (tta is { } candidate)
                (ev, tta, evaluation) = ChooseTestTimeAugmentation(learner, candidate, validLoader, log);
            else
            {
                ev = learner.Evaluate(validLoader);
                log.WriteLine($"validation accuracy: {ev.Accuracy * 100:F2}% on {ev.Count:N0} items (best weights)");
            }
            valAcc = ev.Accuracy;
            summaries.Add(Summarize("validation", ev, validation, valIdx));
        }
        if (testData is not null)
        {
            var testIdx = Enumerable.Range(0, testData.Count).ToArray();
            var ev = learner.Evaluate(testData.Loader(testIdx, train: false, Math.Max(batchSize, 256), r.Seed, []), tta);
            testAcc = ev.Accuracy;
            summaries.Add(Summarize("test", ev, testData, testIdx));
            log.WriteLine($"test accuracy: {ev.Accuracy * 100:F2}% on {ev.Count:N0} items{(tta is null ? "" : $" with test-time augmentation {tta.Name}")}");
        }
        total.Stop();
        var facts = new List<(string, string)>
        {
            ("recipe", $"{r.Name}{(r.Description is null ? "" : $": {r.Description}")} (resolved copy: recipe.yaml)"),
            ("model", $"{r.Model.Name} ({model.LoadedWeights?.Tag ?? "random init"}){(r.Model.Surgery.Count > 0 ? ", surgery " + Describe(r.Model.Surgery) : "")}"),
            ("data", $"{r.Data.Source} ({data.Source}): {trainIdx.Length:N0} train, {valIdx.Length:N0} validation{(testData is null ? "" : $", {testData.Count:N0} test")}"),
            ("training", plannedText),
            ("device", choice.Reason),
            ("evaluation", evaluation),
            ("time", $"{total.Elapsed.TotalSeconds:F0}s total, training {trainWatch.Elapsed.TotalSeconds:F0}s"),
            ("checkpoints", weightsChosen + ", last.ckpt" + (r.Train.CheckpointEverySteps > 0 ? $" (also every {r.Train.CheckpointEverySteps} steps)" : "")
                + (resumeFrom is null ? "" : $"; resumed from last.ckpt")),
        };
        if (budgetPlan is not null) facts.Insert(4, ("budget", budgetPlan));
        if (notes is not null) facts.InsertRange(1, notes);
        if (skippedItems.Count > 0)
            facts.Add(("skipped items", $"{skippedItems.Count} unreadable item(s) skipped: " + string.Join("; ", skippedItems.Take(5).Select(s => $"{s.Item} ({s.Error})")) + (skippedItems.Count > 5 ? "; …" : "")));
        if (learner.NonFiniteSkipped > 0)
            facts.Add(("non-finite steps", $"{learner.NonFiniteSkipped} step(s) skipped (loss or gradient norm NaN/Inf)"));
        RunReport.Write(runFolder, title ?? $"Recipe run: {r.Name}", facts, history.ToHistory(), summaries);
        log.WriteLine($"run folder: {runFolder} (recipe.yaml, metrics.jsonl, best.ckpt, last.ckpt, report.md, report.html)");
        return new RecipeResult(runFolder, best, last, valAcc, testAcc, total.Elapsed);
    }

    private static string Train(Recipe r, ZooModel model, Learner learner, IEnumerable<Batch> trainLoader, Func<IEnumerable<Batch>> allTrainItems, IEnumerable<Batch>? validLoader,
        double lr, int batchSize, TextWriter log)
    {
        var t = r.Train;
        Schedule MakeSchedule(LrSpec spec) => t.Schedule switch
        {
            "cosine" => Schedule.CosineWarmup(spec, warmupPct: t.Warmup),
            "step" => Schedule.Step(spec, everyEpochs: Math.Max(1, t.Epochs / 3)),
            "plateau" => Schedule.ReduceOnPlateau(spec),
            "constant" => Schedule.Constant(spec),
            _ => Schedule.OneCycle(spec, pctStart: Math.Max(t.Warmup, 1e-3)),
        };
        switch (t.Mode)
        {
            case "linear-probe":
            {
                model.FreezeBackbone();
                bool deterministic = r.Data.Augment.Count == 0;
                bool cache = t.FeatureCache == "on" || (t.FeatureCache == "auto" && deterministic);
                if (t.FeatureCache == "on" && !deterministic)
                    throw new RecipeException("train.feature_cache is 'on' but data.augment is set: cached features cannot be augmented. Remove data.augment or set train.feature_cache=off.");
                var schedule = MakeSchedule(LrSpec.Single(lr));
                if (cache)
                {
                    var opts = new FeatureCacheOptions(BatchSize: batchSize, Seed: r.Seed);
                    using var trainCache = FeatureCache.Build(model, allTrainItems(), opts, learner.Device);
                    using var validCache = validLoader is null ? null : FeatureCache.Build(model, validLoader, opts, learner.Device);
                    log.WriteLine($"feature cache: {trainCache.Count:N0} train{(validCache is null ? "" : $" + {validCache.Count:N0} validation")} items × {trainCache.FeatureDim} features in {(trainCache.BuildTime + (validCache?.BuildTime ?? TimeSpan.Zero)).TotalSeconds:F1}s");
                    using (learner.UseFeatureCache(trainCache, validCache)) learner.Fit(t.Epochs, schedule);
                }
                else
                {
                    learner.Fit(t.Epochs, schedule);
                }
                return $"linear probe: frozen backbone, head trained {t.Epochs} epoch(s){(cache ? " on cached features" : "")}, {t.Optimizer} lr {lr:G3} {t.Schedule}";
            }
            case "fine-tune":
            {
                model.Unfreeze();
                var spec = t.LrSpread > 1 ? LrSpec.Slice(lr / t.LrSpread, lr) : LrSpec.Single(lr);
                learner.Fit(t.Epochs, MakeSchedule(spec));
                return $"full fine-tune {t.Epochs} epoch(s), {t.Optimizer} lr {spec} {t.Schedule}";
            }
            default:
            {
                // Decided here rather than by FeatureCacheMode.Auto: the runner knows whether its loader augments.
                if (t.FeatureCache == "on" && r.Data.Augment.Count > 0)
                    throw new RecipeException("train.feature_cache is 'on' but data.augment is set: cached features cannot be augmented. Remove data.augment or set train.feature_cache=off.");
                var mode = t.FeatureCache == "off" || r.Data.Augment.Count > 0 ? FeatureCacheMode.Off : FeatureCacheMode.On;
                learner.FineTune(t.Epochs, t.FreezeEpochs, baseLr: lr, lrMult: t.LrSpread, pctStart: Math.Max(t.Warmup, 1e-3), featureCache: mode,
                    cacheOptions: new FeatureCacheOptions(BatchSize: batchSize, Seed: r.Seed));
                return $"fastai fine_tune: {t.FreezeEpochs} frozen epoch(s) at slice({lr:G3}), then {t.Epochs} epoch(s) at slice({lr / 2 / t.LrSpread:G3}, {lr / 2:G3}), one-cycle, {t.Optimizer}";
            }
        }
    }

    /// <summary>
    /// With an EMA of the weights: the validation split decides between the averaged and the trained weights at the end
    /// of training (no validation split: the average); the winner goes into the model and into best.ckpt.
    /// </summary>
    private static string ChooseEmaOrTrained(Learner learner, EmaWeights ema, IEnumerable<Batch>? validLoader, string best, TextWriter log)
    {
        if (validLoader is null)
        {
            ema.CopyTo(learner.Model);
            learner.Save(best);
            log.WriteLine("ema: no validation split to compare on, so best.ckpt holds the averaged weights");
            return "best.ckpt (the averaged weights, evaluated here)";
        }
        var trained = learner.Evaluate(validLoader).Accuracy;
        var trainedWeights = learner.Model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
        ema.CopyTo(learner.Model);
        var averaged = learner.Evaluate(validLoader).Accuracy;
        bool useAverage = averaged >= trained;
        if (!useAverage)
        {
            using var noGrad = no_grad();
            foreach (var (name, t) in learner.Model.state_dict()) t.copy_(trainedWeights[name]);
        }
        foreach (var t in trainedWeights.Values) t.Dispose();
        learner.Save(best);
        var which = useAverage ? "the averaged (EMA) weights" : "the trained weights";
        log.WriteLine($"ema: validation accuracy {averaged * 100:F2}% with the averaged weights, {trained * 100:F2}% with the trained weights: best.ckpt holds {which}");
        return $"best.ckpt ({which}, chosen on validation: {averaged * 100:F2}% averaged vs {trained * 100:F2}% trained)";
    }

    private static string TtaDescription(TestTimeAugmentation tta) =>
        $"test-time augmentation: class probabilities averaged over the plain view and {tta.Name} ({tta.Passes} passes per batch)";

    /// <summary>
    /// <c>eval.tta</c> is a candidate, like the EMA weights: the validation split is evaluated with and without the extra
    /// views, and the test set gets the test-time augmentation only when it did not lower validation accuracy (a flip
    /// can hurt where left and right differ, or where the model learned from unflipped images only).
    /// Returns the validation evaluation that was kept, the augmentation for the test set (null: plain) and the report line.
    /// </summary>
    private static (Evaluation Validation, TestTimeAugmentation? ForTest, string Description) ChooseTestTimeAugmentation(
        Learner learner, TestTimeAugmentation tta, IEnumerable<Batch> validLoader, TextWriter log)
    {
        var augmented = learner.Evaluate(validLoader, tta);
        var plain = learner.Evaluate(validLoader);
        string scores = $"validation accuracy {augmented.Accuracy * 100:F2}% with {tta.Name}, {plain.Accuracy * 100:F2}% without";
        if (augmented.Accuracy >= plain.Accuracy)
        {
            log.WriteLine($"tta: {scores} on {plain.Count:N0} items: the test set is evaluated with {tta.Name}");
            return (augmented, tta, $"{TtaDescription(tta)}; chosen on validation ({scores})");
        }
        log.WriteLine($"tta: {scores} on {plain.Count:N0} items: {tta.Name} lowered validation accuracy, so the test set is evaluated without it");
        return (plain, null, $"plain forward pass: eval.tta {tta.Name} was rejected on validation ({scores})");
    }

    /// <summary>
    /// <c>train.class_weights</c>: null for <c>none</c>; for <c>balanced</c>, N/(K·nₖ) from the training items' labels,
    /// logged with the class sizes they come from.
    /// </summary>
    private static float[]? ClassWeights(string setting, int[] trainIdx, LabeledData data, TextWriter log)
    {
        if (setting != "balanced") return null;
        var counts = new long[data.ClassNames.Count];
        foreach (var i in trainIdx) counts[data.LabelOf(i)]++;
        var weights = Loss.BalancedClassWeights(counts);
        int rare = Array.IndexOf(counts, counts.Where(c => c > 0).Min()), common = Array.IndexOf(counts, counts.Max());
        log.WriteLine($"loss: class-balanced cross-entropy: weight {weights[rare]:G3} for '{data.ClassNames[rare]}' ({counts[rare]:N0} training items) " +
            $"… {weights[common]:G3} for '{data.ClassNames[common]}' ({counts[common]:N0})");
        return weights;
    }

    /// <summary>A separate validation/test set must have the training set's classes in the same order (labels are indices).</summary>
    private static void CheckSameClasses(LabeledData train, LabeledData other, string key)
    {
        if (train.ClassNames.SequenceEqual(other.ClassNames)) return;
        var missing = train.ClassNames.Except(other.ClassNames).ToList();
        var extra = other.ClassNames.Except(train.ClassNames).ToList();
        throw new RecipeException($"{key} '{other.Source}' has classes [{string.Join(", ", other.ClassNames)}] but the training data '{train.Source}' has " +
            $"[{string.Join(", ", train.ClassNames)}]" + (missing.Count > 0 ? $"; missing: {string.Join(", ", missing)}" : "") + (extra.Count > 0 ? $"; extra: {string.Join(", ", extra)}" : "") +
            ". Give both the same classes (the same class sub-folders or label values).");
    }

    internal static EvaluationSummary Summarize(string split, Evaluation ev, LabeledData data, int[] indices, int top = 16)
    {
        var names = data.ClassNames;
        var cm = ev.ConfusionMatrix;
        var confusion = new long[names.Count, names.Count];
        for (int i = 0; i < Math.Min(names.Count, cm.GetLength(0)); i++)
            for (int j = 0; j < Math.Min(names.Count, cm.GetLength(1)); j++) confusion[i, j] = cm[i, j];
        var tops = ev.TopLosses(top).Select(t =>
        {
            int item = indices[t.Index];
            return new Reports.TopLoss(data.Describe(item), names[t.Actual], names[t.Predicted], t.Loss, t.Probability, data.Thumbnail(item), data.Text(item));
        }).ToList();
        return new EvaluationSummary(split, names, confusion, ev.Loss, tops);
    }

    internal static string Describe(IEnumerable<SurgeryStep> steps) =>
        string.Join(", ", steps.Select(s =>
            s.Remove is not null ? $"remove {s.Remove}"
            : s.Replace is not null ? $"{s.Replace}→{s.With}"
            : s.InsertAfter is not null ? $"{s.With} after {s.InsertAfter}" : $"{s.With} before {s.InsertBefore}"));

    internal static string NewRunFolder(string output, string name)
    {
        var stamp = DateTime.Now.ToString("yyyy-MM-dd-HHmmss", CultureInfo.InvariantCulture);
        var folder = Path.Combine(output, $"{stamp}-{name}");
        for (int i = 2; Directory.Exists(folder); i++) folder = Path.Combine(output, $"{stamp}-{name}-{i}");
        Directory.CreateDirectory(folder);
        return Path.GetFullPath(folder);
    }

    /// <summary>
    /// A training loader whose enumeration runs the epoch given by <paramref name="epoch"/> (sets the loader's epoch
    /// counter first), with the batch count known without a pass over the data.
    /// </summary>
    internal sealed class EpochAddressedLoader(IEnumerable<Batch> inner, Func<int> epoch) : IReadOnlyCollection<Batch>
    {
        public int Count => inner switch
        {
            TensorDataLoader t => t.BatchesPerEpoch,
            DataLoader d => d.BatchesPerEpoch,
            TensorImageData.EpochAugmented a => a.Loader.BatchesPerEpoch,
            _ => inner.Count(),
        };

        public IEnumerator<Batch> GetEnumerator()
        {
            int e = epoch();
            switch (inner)
            {
                case TensorDataLoader t: t.Epoch = e; break;
                case DataLoader d: d.Epoch = e; break;
                case TensorImageData.EpochAugmented a: a.Loader.Epoch = e; break;
            }
            return inner.GetEnumerator();
        }

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }

    /// <summary>
    /// Stops training once the wall-time budget is spent (every later fit stops at its first batch). With
    /// <paramref name="exemptCachedHead"/>, epochs that train only the head (on cached features: milliseconds per step)
    /// are not cut, so a run whose feature pass used up the budget still gets a trained head.
    /// </summary>
    private sealed class TimeBudget(Stopwatch clock, int seconds, bool exemptCachedHead) : Callback
    {
        private bool _said;
        private bool _headOnly;

        public override void BeforeEpoch(Learner learner)
        {
            var head = learner.Model.HeadPath;
            _headOnly = exemptCachedHead && learner.Model.named_parameters().Where(p => p.parameter.requires_grad)
                .All(p => p.name == head || p.name.StartsWith(head + ".", StringComparison.Ordinal));
        }

        public override void BeforeBatch(Learner learner)
        {
            if (!learner.IsTraining || _headOnly || clock.Elapsed.TotalSeconds < seconds) return;
            if (!_said) learner.Log($"train.time_budget_seconds ({seconds}s) spent: training stops here; the run still evaluates and reports.");
            _said = true;
            throw new CancelFitException();
        }
    }
}
