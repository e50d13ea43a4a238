using System.Diagnostics;
using ModelZoo.Data;
using ModelZoo.FineTune;
using ModelZoo.Tasks.Baselines;
using ModelZoo.Tasks.Recipes;
using ModelZoo.Tasks.Reports;
using ModelZoo.Tasks.Vision;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tasks.Nlp;

/// <summary>
/// <c>zoo quickstart text</c>: labelled texts → a classifier on a pretrained sentence encoder (all-MiniLM-L6-v2,
/// offline) in minutes on a CPU. The plan: hold out a stratified, seeded test split; tokenize each text to
/// <see cref="TextQuickstartOptions.MaxLength"/> tokens, keeping the start and the end of long texts (head+tail);
/// measure the encoder and shorten the length if one pass over every text would not fit the budget. By default the
/// encoder stays frozen: one pass caches the mean and max of every layer's hidden states per text, a linear head with
/// an L2 penalty is trained full-batch on the standardized cache and the standardization is folded into its weights.
/// With <see cref="TextQuickstartOptions.TuneLayers"/> &gt; 0 the lower layers' states are cached instead and the top
/// layers are fine-tuned with the head. Either way the whole model (encoder + head) is checked to reproduce the
/// cached-path predictions before it is saved with a report.
/// </summary>
/// <remarks>
/// The pipeline reads top to bottom in this file; each step's work lives in a part named for it: <c>.Split</c> (the
/// held-out split), <c>.Plan</c> (budget planning), <c>.Caching</c> (batched encoding and the feature caches),
/// <c>.LinearProbe</c> and <c>.TokenBag</c> (the frozen-encoder path), <c>.TopLayers</c> (top-layer fine-tuning) and
/// <c>.Report</c> (the full-model check and the report of the held-out texts).
/// </remarks>
public static partial class TextQuickstart
{
    /// <summary>Runs the quickstart, writing progress to <paramref name="log"/>.</summary>
    public static QuickstartResult Run(TextQuickstartOptions o, TextWriter log)
    {
        var total = Stopwatch.StartNew();
        var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
        var choice = DeviceSelector.Resolve(o.Device);
        var device = choice.Device;
        Learner.SeedEverything(o.Seed);
        log.WriteLine($"device: {choice.Reason}; {torch.get_num_threads()} threads");

        // 1. Data and split
        var (dataset, dataName) = LoadData(o, log);
        var all = StratifiedSample(dataset, o.Limit, o.Seed);
        var (trainIdx, testIdx) = StratifiedSplit(dataset, all, o.TestFraction, o.Seed);
        var classes = dataset.ClassNames;
        log.WriteLine($"data: {dataName}: {all.Length:N0} texts, {classes.Count} classes ({Balance(dataset, all)}); " +
            $"stratified split (seed {o.Seed}): {trainIdx.Length:N0} train, {testIdx.Length:N0} test ({o.TestFraction:P0})");

        // 2. Model and tokenizer
        var model = Zoo.Load(o.Model) as ModelZoo.Models.Nlp.TextEncoder
            ?? throw new ArgumentException($"'{o.Model}' is not a text encoder; the text quickstart needs a BERT-family model such as all-minilm-l6-v2.");
        var tokenizer = Zoo.Tokenizer(o.Model);
        model.to(device);
        model.eval();
        int maxLength = Math.Min(o.MaxLength, model.MaxPositions);
        var texts = all.ToDictionary(i => i, i => dataset[i].Text);
        // The simple baseline on the same split, before the plan: its seconds count against the budget.
        BaselineResult? baseline = null;
        if (o.Baseline)
        {
            baseline = TfidfBaseline.Run(trainIdx.Select(i => texts[i]).ToList(), trainIdx.Select(dataset.LabelOf).ToList(),
                testIdx.Select(i => texts[i]).ToList(), testIdx.Select(dataset.LabelOf).ToList(), classes.Count);
            log.WriteLine($"baseline: {baseline.Method}: {baseline.Accuracy * 100:F2}% on the {baseline.HeldOutCount:N0} held-out texts " +
                $"(macro-F1 {baseline.MacroF1:F4}; {baseline.Note}) in {baseline.Elapsed.TotalSeconds:F1}s");
        }
        // Cut very long texts before tokenizing (only the first maxLength tokens are used anyway).
        int Tail(int len) => o.TailTokens >= 0 ? Math.Min(o.TailTokens, len - tokenizer.SpecialTokenCount(false)) : (len - tokenizer.SpecialTokenCount(false)) / 2;
        bool useBag = o.BagTokens > 0 && o.TuneLayers == 0;
        if (useBag && o.TailTokens != 0)
            throw new ArgumentException("--tail-tokens keeps the end of long texts for the transformer, but the token bag reads texts from the start: use --bag-tokens 0 with --tail-tokens.");
        if (useBag && o.BagTokens < maxLength)
            throw new ArgumentException($"--bag-tokens {o.BagTokens} is shorter than the transformer's {maxLength} tokens; give at least {maxLength} (or 0 for no token bag).");
        var twTok = Stopwatch.StartNew();
        // With a token bag every text is tokenized to BagTokens once; the transformer's window is cut from those ids
        // exactly as the model cuts it (TextEncoder.EncoderWindow), so the cached features equal the model's.
        var bagIds = useBag ? all.AsParallel().Select(i => (i, tokenizer.EncodeHeadTail(texts[i], o.BagTokens, 0).Ids)).ToDictionary(p => p.i, p => p.Item2) : null;
        int[] Tokens(int i, int len) => bagIds is not null ? Window(bagIds[i], len) : tokenizer.EncodeHeadTail(texts[i], len, Tail(len)).Ids;
        var ids = all.AsParallel().Select(i => (i, Tokens(i, maxLength))).ToDictionary(p => p.i, p => p.Item2);
        twTok.Stop();
        double meanLen = ids.Values.Average(a => a.Length);
        log.WriteLine($"model: {o.Model} ({model.LoadedWeights?.Tag ?? "random init"}), {model.NumLayers} layers, {model.HiddenSize}-d; " +
            $"tokenizer: WordPiece, lower case; {(bagIds is null ? "" : $"the token bag reads up to {o.BagTokens} tokens (mean {bagIds.Values.Average(a => a.Length):F0}) and the transformer ")}{(bagIds is null ? "texts cut to" : "the first")} {maxLength} tokens{(Tail(maxLength) > 0 ? $" (the first {maxLength - tokenizer.SpecialTokenCount(false) - Tail(maxLength)} and the last {Tail(maxLength)} of long texts)" : "")} (mean {meanLen:F0}) in {twTok.Elapsed.TotalSeconds:F1}s");

        // 3. Plan: measure the encoder on the longest texts; choose how many top layers to fine-tune and for how many
        //    epochs (or shorten the texts) so the run fits the budget
        double tokensPerSecond = MeasureEncoder(model, ids.Values.OrderByDescending(a => a.Length).Take(o.BatchSize).ToList(), tokenizer.PadTokenId, device);
        double TokenCount(IEnumerable<int> set, int len) => set.Sum(i => (double)Math.Min(ids[i].Length, len));
        double Projected(int len) => TokenCount(all, len) / tokensPerSecond * (1 + len / 1024.0);
        double budget = o.TimeBudgetSeconds * 0.85 - total.Elapsed.TotalSeconds;
        var plan = PlanTuning(o, model.NumLayers, Projected(maxLength), TokenCount(trainIdx, maxLength) / TokenCount(all, maxLength), budget);
        int planned = maxLength;
        while (plan.Layers == 0 && planned > 64 && Projected(planned) > budget * 0.95) planned /= 2;
        if (planned != maxLength)
        {
            log.WriteLine($"plan: encoding {all.Length:N0} texts at {maxLength} tokens would take ~{Projected(maxLength):F0}s at the measured {tokensPerSecond:F0} tokens/s; " +
                $"cutting to {planned} tokens (~{Projected(planned):F0}s) to fit the {o.TimeBudgetSeconds}s budget");
            maxLength = planned;
            foreach (var k in ids.Keys.ToList()) if (ids[k].Length > maxLength) ids[k] = Tokens(k, maxLength);
        }
        else
            log.WriteLine($"plan: encoder measured at {tokensPerSecond:F0} tokens/s → ~{Projected(maxLength):F0}s for one pass over all texts (budget {o.TimeBudgetSeconds}s); " +
                (plan.Layers > 0
                    ? $"fine-tune the top {plan.Layers} of {model.NumLayers} layers and the head for {plan.Epochs} epoch(s) on cached layer-{model.NumLayers - plan.Layers} states (~{plan.Seconds:F0}s)"
                    : o.TuneLayers == 0 ? "frozen encoder; a linear probe on the mean and max of every layer's states"
                    : "the budget leaves no time to fine-tune layers: frozen encoder; a linear probe on the mean and max of every layer's states"));
        var bagTrainIdx = trainIdx; // the token bag costs no encoder pass: it always reads every training text
        // Still too many texts at the shortest length: the encoder reads a stratified sample of the training texts that
        // fits (every held-out text is still scored); the head needs some of the budget too.
        if (plan.Layers == 0 && Projected(maxLength) > budget * 0.95)
        {
            double perToken = (1 + maxLength / 1024.0) / tokensPerSecond;
            int keep = TrainTextsThatFit(TokenCount(trainIdx, maxLength) * perToken, TokenCount(testIdx, maxLength) * perToken, trainIdx.Length, classes.Count, budget);
            if (keep < trainIdx.Length)
            {
                var sample = StratifiedSplit(dataset, trainIdx, keep / (double)trainIdx.Length, o.Seed + 1).Test;
                log.WriteLine($"plan: encoding all {all.Length:N0} texts would take ~{Projected(maxLength):F0}s even at {maxLength} tokens; the encoder reads a stratified sample of " +
                    $"{sample.Length:N0} of the {trainIdx.Length:N0} training texts (~{(TokenCount(sample, maxLength) + TokenCount(testIdx, maxLength)) * perToken:F0}s with the " +
                    $"{testIdx.Length:N0} held-out texts){ReadAllOfThem(useBag, o.Baseline)}");
                trainIdx = sample;
            }
        }

        var trainY = tensor(trainIdx.Select(i => (long)dataset.LabelOf(i)).ToArray());
        var testY = tensor(testIdx.Select(i => (long)dataset.LabelOf(i)).ToArray());
        var bagTrainY = ReferenceEquals(bagTrainIdx, trainIdx) ? trainY : tensor(bagTrainIdx.Select(i => (long)dataset.LabelOf(i)).ToArray());
        var curves = new Curves([], [], []);
        var prepared = new Prepared(model, ids, bagIds, all, trainIdx, bagTrainIdx, testIdx, trainY, bagTrainY, testY, classes.Count, tokenizer.PadTokenId, device, o, log, total);
        // 4–5. Cache what the frozen part computes once, then train on the cache
        var (eval, twEmbed, twHead, method) = plan.Layers > 0 ? FineTuneTopLayers(prepared, plan, curves) : TrainFrozenProbe(prepared, maxLength, curves);

        // 6. The whole model (encoder + head) must reproduce the cached-path predictions
        CheckFullModel(model, testIdx.Take(Math.Min(48, testIdx.Length)).Select(i => (bagIds ?? ids)[i]).ToList(), eval, tokenizer.PadTokenId, device);
        total.Stop();
        var cpu = Process.GetCurrentProcess().TotalProcessorTime - cpu0;
        log.WriteLine($"test accuracy: {eval.Accuracy * 100:F2}% on {testIdx.Length:N0} held-out texts (macro-F1 {eval.MacroF1:F4}); " +
            $"wall time {total.Elapsed.TotalSeconds:F0}s, CPU time {cpu.TotalSeconds:F0}s (tokenize {twTok.Elapsed.TotalSeconds:F0}s, cache {twEmbed.TotalSeconds:F0}s, train {twHead.TotalSeconds:F0}s)");

        // 7. Checkpoint and report
        var runFolder = RecipeRunner.NewRunFolder(o.Output, "quickstart-text");
        var spec = new TrainedModelSpec { Task = "nlp", Model = o.Model, ClassNames = classes.ToList(), MaxLength = maxLength, TailTokens = Tail(maxLength), Pooling = model.Pooling.ToString(),
            BagTokens = model.TokenBag is null ? 0 : o.BagTokens };
        var ckpt = Path.Combine(runFolder, "best.ckpt");
        using (var learner = new Learner(model, Array.Empty<Batch>(), options: new LearnerOptions { Seed = o.Seed, Device = device, Config = spec.ToJson(), RunFolder = runFolder, Output = TextWriter.Null }))
            learner.Save(ckpt);
        var summary = TestSummary(eval, dataset, texts, classes);
        var facts = new List<(string, string)>
        {
            ("model", $"{o.Model} ({model.LoadedWeights?.Tag ?? "random init"}), {model.Pooling} pooling{(model.TokenBag is null ? "" : $" + token bag ({o.BagTokens} tokens)")}, linear head"),
            ("method", method),
            ("data", $"{dataName}: {trainIdx.Length:N0} train, {testIdx.Length:N0} test (stratified {o.TestFraction:P0}, seed {o.Seed})"),
            ("device", choice.Reason),
            ("plan", $"{(model.TokenBag is null ? "" : $"token bag over the first {o.BagTokens} tokens; ")}transformer on {maxLength} tokens{(Tail(maxLength) > 0 ? $" (head+tail: the last {Tail(maxLength)} kept)" : " (the start kept)")}; the encoder measured at {tokensPerSecond:F0} tokens/s"),
            ("time", $"{total.Elapsed.TotalSeconds:F0}s wall, {cpu.TotalSeconds:F0}s CPU; cache {twEmbed.TotalSeconds:F0}s; train {twHead.TotalSeconds:F1}s"),
            ("test accuracy", $"{eval.Accuracy * 100:F2}%"),
            ("checkpoint", ckpt),
        };
        var comparison = baseline is null ? null
            : new BaselineComparison($"{o.Model}, {(plan.Layers > 0 ? $"top {plan.Layers} layer(s) fine-tuned" : model.TokenBag is null ? "layer probe" : "layer probe + token bag")}", eval.Accuracy, "the held-out test split", baseline);
        if (comparison is not null) facts.Insert(facts.Count - 1, ("baseline", $"{baseline!.Accuracy * 100:F2}% ({baseline.Method}); {(comparison.Beat ? "beaten" : "NOT beaten")} by {comparison.Points:+0.00;-0.00;0.00} points"));
        RunReport.Write(runFolder, $"Quickstart: {dataName} with {o.Model}", facts, new TrainingHistory(curves.Epochs, curves.Lrs, curves.Losses), [summary]);
        if (comparison is not null)
        {
            comparison.WriteInto(runFolder);
            log.WriteLine($"baseline: {comparison.Verdict}");
        }
        File.WriteAllText(Path.Combine(runFolder, "result.json"), System.Text.Json.JsonSerializer.Serialize(new
        {
            test_accuracy = eval.Accuracy, test_count = testIdx.Length, train_count = trainIdx.Length, classes = classes.Count, macro_f1 = eval.MacroF1, seconds = total.Elapsed.TotalSeconds, cpu_seconds = cpu.TotalSeconds, max_length = maxLength,
            cache_seconds = twEmbed.TotalSeconds, train_seconds = twHead.TotalSeconds, tuned_layers = plan.Layers, epochs = plan.Epochs, device = choice.Reason,
            baseline = comparison?.Json(),
        }));
        log.WriteLine($"run folder: {runFolder} (best.ckpt, report.md, report.html, plots)");
        if (!ReferenceEquals(bagTrainY, trainY)) bagTrainY.Dispose();
        trainY.Dispose(); testY.Dispose();
        return new QuickstartResult(runFolder, eval.Accuracy, testIdx.Length, total.Elapsed, ckpt) { Baseline = comparison };
    }

    /// <summary>What still reads every training text when the encoder reads a sample: "; the token bag and the baseline read all of them", or "".</summary>
    private static string ReadAllOfThem(bool bag, bool baseline)
    {
        var readers = new[] { bag ? "the token bag" : null, baseline ? "the baseline" : null }.OfType<string>().ToList();
        return readers.Count == 0 ? "" : $"; {string.Join(" and ", readers)} read{(readers.Count == 1 ? "s" : "")} all of them";
    }

    private static (TextDataset Data, string Name) LoadData(TextQuickstartOptions o, TextWriter log)
    {
        if (o.Data is null) return (SpamAssassinSource.Ensure(o.SpamAssassinFolder, o.Fetch, log), "SpamAssassin");
        var ext = Path.GetExtension(o.Data).ToLowerInvariant();
        var ds = ext switch
        {
            ".jsonl" or ".ndjson" or ".json" => TextDataset.FromJsonl(o.Data, o.TextColumn, o.LabelColumn),
            ".parquet" => TextDataset.FromParquet(o.Data, o.TextColumn, o.LabelColumn),
            ".csv" or ".tsv" or ".txt" => TextDataset.FromCsv(o.Data, o.TextColumn, o.LabelColumn),
            _ => throw new ArgumentException($"Cannot tell the format of '{o.Data}' from its extension: use .csv/.tsv, .jsonl or .parquet."),
        };
        if (ds.ClassNames.Count < 2) throw new InvalidDataException($"{o.Data}: column '{o.LabelColumn}' has {ds.ClassNames.Count} distinct value(s); a classifier needs at least 2.");
        return (ds, Path.GetFileName(o.Data));
    }

    /// <summary>
    /// What every training path reads: the encoder, the token ids of each text, the split and its labels.
    /// <see cref="TrainIdx"/> is what the encoder reads (a sample when the budget is short); <see cref="BagTrainIdx"/>
    /// is every training text, which the token bag reads because it needs no encoder pass.
    /// </summary>
    private sealed record Prepared(ModelZoo.Models.Nlp.TextEncoder Model, Dictionary<int, int[]> Ids, Dictionary<int, int[]>? BagIds, int[] All,
        int[] TrainIdx, int[] BagTrainIdx, int[] TestIdx, Tensor TrainY, Tensor BagTrainY, Tensor TestY, int NumClasses, int PadId, Device Device, TextQuickstartOptions Options, TextWriter Log, Stopwatch Clock)
    {
        /// <summary>Seconds of the budget left for training, keeping <see cref="ReserveSeconds"/> for the full-model check, the checkpoint and the report.</summary>
        public double SecondsLeft => Options.TimeBudgetSeconds - Clock.Elapsed.TotalSeconds - ReserveSeconds;
    }

    /// <summary>Seconds kept at the end of the budget for the full-model check, the checkpoint and the report.</summary>
    private const double ReserveSeconds = 20;

    /// <summary>What the report plots: the loss and learning rate of every step and a record of every epoch.</summary>
    private sealed record Curves(List<(long, double)> Losses, List<(long, double)> Lrs, List<EpochRecord> Epochs);

    /// <summary>The outcome of a training path: the held-out evaluation, the time spent caching and training, and the method in words.</summary>
    private sealed record Trained(Evaluation Eval, TimeSpan CacheTime, TimeSpan TrainTime, string Method);
}
