using System.Diagnostics;
using ModelZoo.Data;
using ModelZoo.FineTune;
using ModelZoo.Tasks.Recipes;
using ModelZoo.Tasks.Reports;
using ModelZoo.Tasks.Vision;
using ModelZoo.Tokenizers;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tasks.Nlp;

/// <summary>Settings of the text quickstart; the defaults are the measured SpamAssassin recipe (docs/quickstarts.md).</summary>
public sealed record TextQuickstartOptions
{
    /// <summary>Catalog text encoder with offline pretrained weights.</summary>
    public string Model { get; init; } = "all-minilm-l6-v2";

    /// <summary>A CSV/TSV, JSON Lines or Parquet file (or glob) of labelled texts; null for the SpamAssassin corpus.</summary>
    public string? Data { get; init; }

    /// <summary>Folder of the SpamAssassin corpus (npm prefix, package or data folder); null for the zoo cache.</summary>
    public string? SpamAssassinFolder { get; init; }

    /// <summary>Text column or field of <see cref="Data"/>.</summary>
    public string TextColumn { get; init; } = "text";

    /// <summary>Label column or field of <see cref="Data"/>.</summary>
    public string LabelColumn { get; init; } = "label";

    /// <summary>Tokens per text (with [CLS]/[SEP]); longer texts are cut. Shortened when the measured encoder speed
    /// would not fit the budget.</summary>
    public int MaxLength { get; init; } = 128;

    /// <summary>Tokens kept from the end of a long text (head+tail truncation); 0 = the start only (the default: on
    /// SpamAssassin the start alone measured 98.59 % and half head, half tail 98.26 %); -1 = half of <see cref="MaxLength"/>.</summary>
    public int TailTokens { get; init; }

    /// <summary>
    /// Tokens of each text read by a bag-of-tokens branch (<see cref="ModelZoo.Models.Nlp.TokenBag"/>: sublinear TF-IDF
    /// over the tokenizer's word pieces, its own L2-penalised logistic regression, the two linear heads summed into one);
    /// 0 = none. The transformer reads only the first <see cref="MaxLength"/>; the bag reads far more for little cost.
    /// Used with the frozen-encoder probe (<see cref="TuneLayers"/> 0) and start-only truncation.
    /// </summary>
    public int BagTokens { get; init; } = 2048;

    /// <summary>L2 penalty of the token bag's logistic regression (on unit-length TF-IDF rows).</summary>
    public double BagL2 { get; init; } = 1e-5;

    /// <summary>Fraction held out for the test (stratified by label, seeded).</summary>
    public double TestFraction { get; init; } = 0.2;

    /// <summary>Texts per encoder batch (texts are sorted by length so padding stays small).</summary>
    public int BatchSize { get; init; } = 32;

    /// <summary>Top transformer layers fine-tuned (with the head, on mean pooling) on cached hidden states of the layers
    /// below; 0 = frozen encoder and a linear probe on the mean and max of every layer's states (measured best on
    /// SpamAssassin within the budget); -1 = as many (up to 2) as the budget allows.</summary>
    public int TuneLayers { get; init; }

    /// <summary>Epochs of top-layer fine-tuning; -1 = as many (up to 3) as the budget allows.</summary>
    public int Epochs { get; init; } = -1;

    /// <summary>Peak learning rate of the fine-tuned transformer layers (the head uses 20×).</summary>
    public double EncoderLr { get; init; } = 1e-4;

    /// <summary>Texts per fine-tuning step.</summary>
    public int TuneBatchSize { get; init; } = 16;

    /// <summary>Full-batch Adam steps of the linear probe on the cached features (warm-up + cosine).</summary>
    public int HeadSteps { get; init; } = 2000;

    /// <summary>Peak learning rate of the head (cosine schedule with warm-up, on standardized features).</summary>
    public double Lr { get; init; } = 3e-2;

    /// <summary>L2 penalty on the probe's weights (added to the loss; on standardized features, so every feature is
    /// penalized alike). 1e-3 with 2,000 steps measured best of the few settings tried on SpamAssassin.</summary>
    public double L2 { get; init; } = 1e-3;

    /// <summary>Wall-time budget for the whole run; the token length is shortened to fit it.</summary>
    public int TimeBudgetSeconds { get; init; } = 600;

    /// <summary>Use only this many texts (0 = all), stratified; for smoke tests.</summary>
    public int Limit { get; init; }

    /// <summary><c>auto</c>, <c>cpu</c>, <c>cuda</c>, <c>cuda:N</c>.</summary>
    public string Device { get; init; } = "auto";

    /// <summary>Seed of the split and the head.</summary>
    public int Seed { get; init; } = 42;

    /// <summary>Folder under which the run folder is created.</summary>
    public string Output { get; init; } = "runs";

    /// <summary>Fetch the SpamAssassin corpus with npm when it is missing.</summary>
    public bool Fetch { get; init; } = true;
}

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
public static class TextQuickstart
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

        var trainY = tensor(trainIdx.Select(i => (long)dataset.LabelOf(i)).ToArray());
        var testY = tensor(testIdx.Select(i => (long)dataset.LabelOf(i)).ToArray());
        var history = new List<(long, double)>();
        var lrs = new List<(long, double)>();
        var epochs = new List<EpochRecord>();
        Evaluation eval;
        TimeSpan twEmbed, twHead;
        string method;
        if (plan.Layers > 0)
        {
            // 4a. Run the lower layers once; 5a. fine-tune the top layers and the head on the cached states
            int split = model.NumLayers - plan.Layers;
            var sw = Stopwatch.StartNew();
            var trainCache = CacheHidden(model, split, trainIdx.Select(i => ids[i]).ToList(), tokenizer.PadTokenId, o.TuneBatchSize, device, log, "train");
            var testCache = CacheHidden(model, split, testIdx.Select(i => ids[i]).ToList(), tokenizer.PadTokenId, o.BatchSize, device, log, "test");
            twEmbed = sw.Elapsed;
            log.WriteLine($"cache: layer-{split} hidden states of {all.Length:N0} texts ({(trainCache.Bytes + testCache.Bytes) / 1e6:F0} MB) in {twEmbed.TotalSeconds:F0}s");
            model.ReplaceSequenceHead(classes.Count);
            model.to(device);
            sw.Restart();
            eval = TuneTop(model, split, plan.Epochs, trainCache, testCache, trainY, testY, testIdx, o, log, history, lrs, epochs);
            twHead = sw.Elapsed;
            method = $"top {plan.Layers} of {model.NumLayers} layers + head fine-tuned {plan.Epochs} epoch(s) on cached layer-{split} states";
            trainCache.Dispose(); testCache.Dispose();
        }
        else
        {
            // 4b. Pool every layer's states of every text once with the frozen encoder; 5b. train the head on the cache
            model.Pooling = ModelZoo.Models.Nlp.TextPooling.LayerMeanMax;
            var sw = Stopwatch.StartNew();
            var trainF = Embed(model, trainIdx.Select(i => ids[i]).ToList(), tokenizer.PadTokenId, o.BatchSize, device, log, "train");
            var testF = Embed(model, testIdx.Select(i => ids[i]).ToList(), tokenizer.PadTokenId, o.BatchSize, device, log, "test");
            twEmbed = sw.Elapsed;
            int denseFeatures = model.NumFeatures;
            log.WriteLine($"cache: {trainIdx.Length + testIdx.Length:N0} pooled {denseFeatures}-d feature vectors in {twEmbed.TotalSeconds:F0}s");
            sw.Restart();
            var (w, b) = TrainProbe(trainF, trainY, classes.Count, device, o, history, lrs);
            var logits = Logits(testF, w, b);
            log.WriteLine($"train: linear head {denseFeatures}→{classes.Count} on standardized embeddings, full-batch Adam lr {o.Lr:G3} (warm-up + cosine), " +
                $"L2 {o.L2:G3}, {o.HeadSteps} steps in {sw.Elapsed.TotalSeconds:F1}s; final train loss {history[^1].Item2:F4}");
            method = $"frozen encoder; mean and max of all {model.NumLayers + 1} hidden states ({denseFeatures} features); linear head ({o.HeadSteps} full-batch steps)";
            ModelZoo.Models.Nlp.TokenBag? bag = null;
            if (bagIds is not null)
            {
                // 5c. The token bag over the first BagTokens tokens: its own logistic regression, then the two linear
                //     heads become one over [pooled features, bag features] (their logits add).
                var swBag = Stopwatch.StartNew();
                bag = new ModelZoo.Models.Nlp.TokenBag(model.VocabSize);
                bag.Fit(trainIdx.Select(i => bagIds[i]));
                var active = tensor(bag.ActiveIds());
                var trainB = BagFeatures(bag, trainIdx.Select(i => bagIds[i]).ToList(), active, tokenizer.PadTokenId);
                var testB = BagFeatures(bag, testIdx.Select(i => bagIds[i]).ToList(), active, tokenizer.PadTokenId);
                var (wb, bb, bagLoss, bagEvals) = TrainBag(trainB, trainY, classes.Count, device, o);
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
                method += $" + token bag over the first {o.BagTokens} tokens (TF-IDF, logistic regression), logits balanced by their training spread and averaged";
                trainB.Dispose(); testB.Dispose(); active.Dispose();
            }
            twHead = sw.Elapsed;
            // The model: encoder (+ token bag) and one linear head holding the folded weights
            if (bag is not null)
            {
                model.UseTokenBag();
                model.EncoderWindow = maxLength;
                using (no_grad()) model.TokenBag!.Idf.copy_(bag.Idf);
                bag.Dispose();
            }
            model.ReplaceSequenceHead(classes.Count);
            model.to(device);
            SetHead(model, w, b);
            eval = EvaluateLogits(logits, testY, testIdx);
            epochs.Add(new(1, "train", history.Average(h => h.Item2), eval.Loss, new Dictionary<string, double> { ["accuracy"] = eval.Accuracy }, twHead.TotalSeconds));
            trainF.Dispose(); testF.Dispose(); logits.Dispose(); w.Dispose(); b.Dispose();
        }

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
        var summary = new EvaluationSummary("test", classes, ToLong(eval.ConfusionMatrix), eval.Loss,
            eval.TopLosses(12).Select(t => new Reports.TopLoss(ShortSource(dataset, t.Index), classes[t.Actual], classes[t.Predicted], t.Loss, t.Probability,
                Text: Snippet(texts[t.Index]))).ToList());
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
        RunReport.Write(runFolder, $"Quickstart: {dataName} with {o.Model}", facts, new TrainingHistory(epochs, lrs, history), [summary]);
        File.WriteAllText(Path.Combine(runFolder, "result.json"), System.Text.Json.JsonSerializer.Serialize(new
        {
            test_accuracy = eval.Accuracy, test_count = testIdx.Length, seconds = total.Elapsed.TotalSeconds, cpu_seconds = cpu.TotalSeconds, max_length = maxLength,
            cache_seconds = twEmbed.TotalSeconds, train_seconds = twHead.TotalSeconds, tuned_layers = plan.Layers, epochs = plan.Epochs, device = choice.Reason,
        }));
        log.WriteLine($"run folder: {runFolder} (best.ckpt, report.md, report.html, plots)");
        trainY.Dispose(); testY.Dispose();
        return new QuickstartResult(runFolder, eval.Accuracy, testIdx.Length, total.Elapsed, ckpt);
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

    /// <summary>The first <paramref name="length"/> ids of a tokenized text, ending with its last (special) token when cut, as <c>TextEncoder.EncoderWindow</c> cuts them.</summary>
    internal static int[] Window(int[] ids, int length) => ids.Length <= length ? ids : [.. ids[..(length - 1)], ids[^1]];

    /// <summary>All indices, or a stratified seeded sample of <paramref name="limit"/>.</summary>
    internal static int[] StratifiedSample(TextDataset data, int limit, int seed)
    {
        if (limit <= 0 || limit >= data.Count) return Enumerable.Range(0, data.Count).ToArray();
        var (keep, _) = StratifiedSplit(data, Enumerable.Range(0, data.Count).ToArray(), 1 - limit / (double)data.Count, seed);
        return keep.Order().ToArray();
    }

    /// <summary>Per class, a seeded shuffle; the first round(fraction × count) go to the test side (at least one when the class has two or more).</summary>
    internal static (int[] Train, int[] Test) StratifiedSplit(TextDataset data, int[] indices, double testFraction, int seed)
    {
        var rng = new Random(seed);
        var train = new List<int>();
        var test = new List<int>();
        foreach (var group in indices.GroupBy(data.LabelOf).OrderBy(g => g.Key))
        {
            var items = group.ToArray();
            rng.Shuffle(items);
            int n = (int)Math.Round(items.Length * testFraction);
            if (n == 0 && items.Length >= 2 && testFraction > 0) n = 1;
            if (n >= items.Length && items.Length >= 2) n = items.Length - 1;
            test.AddRange(items[..n]);
            train.AddRange(items[n..]);
        }
        return (train.Order().ToArray(), test.Order().ToArray());
    }

    private static string Balance(TextDataset data, int[] indices) =>
        string.Join(", ", indices.GroupBy(data.LabelOf).OrderBy(g => g.Key).Select(g => $"{data.ClassNames[g.Key]} {g.Count():N0}"));

    private static Tensor Pad(IReadOnlyList<int[]> rows, int padId, Device device)
    {
        int len = rows.Max(r => r.Length);
        var flat = new long[rows.Count * len];
        Array.Fill(flat, padId);
        for (int i = 0; i < rows.Count; i++)
            for (int j = 0; j < rows[i].Length; j++) flat[i * len + j] = rows[i][j];
        return tensor(flat, [rows.Count, len]).to(device);
    }

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

    /// <summary>Pooled features as the model's pooling defines them (N×NumFeatures, float32, CPU), in the order of <paramref name="rows"/>.</summary>
    private static Tensor Embed(ModelZoo.Models.Nlp.TextEncoder model, List<int[]> rows, int padId, int batchSize, Device device, TextWriter log, string what)
    {
        var result = zeros(rows.Count, model.NumFeatures);
        ForEachSortedBatch(rows, padId, batchSize, device, log, "embedding " + what, (chunk, x, mask) =>
            result.index_copy_(0, tensor(chunk.Select(i => (long)i).ToArray()), model.PooledFeatures(x, mask).to(ScalarType.Float32).cpu()));
        return result;
    }

    /// <summary>
    /// Runs <paramref name="body"/> on padded batches of <paramref name="rows"/> in order of length (little padding), with
    /// the rows' positions, the ids and the mask; no gradients, one dispose scope per batch, progress every 30 s.
    /// </summary>
    private static void ForEachSortedBatch(List<int[]> rows, int padId, int batchSize, Device device, TextWriter log, string what, Action<int[], Tensor, Tensor> body)
    {
        var order = Enumerable.Range(0, rows.Count).OrderBy(i => rows[i].Length).ThenBy(i => i).ToArray();
        var sw = Stopwatch.StartNew();
        var lastReport = TimeSpan.Zero;
        using var noGrad = no_grad();
        for (int start = 0; start < order.Length; start += batchSize)
        {
            using var scope = NewDisposeScope();
            var chunk = order[start..Math.Min(order.Length, start + batchSize)];
            var x = Pad(chunk.Select(i => rows[i]).ToList(), padId, device);
            body(chunk, x, x.ne(padId).to_type(ScalarType.Int64));
            if (sw.Elapsed - lastReport > TimeSpan.FromSeconds(30))
            {
                lastReport = sw.Elapsed;
                log.WriteLine($"  {what}: {start + chunk.Length:N0}/{rows.Count:N0} texts, {sw.Elapsed.TotalSeconds:F0}s");
            }
        }
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

    /// <summary>Hidden states of the lower layers, cached per length-sorted batch (B×T×H with its B×T mask and the rows' positions).</summary>
    internal sealed class HiddenCache : IDisposable
    {
        public List<(Tensor Hidden, Tensor Mask, long[] Rows)> Batches { get; } = [];
        public long Bytes => Batches.Sum(b => b.Hidden.NumberOfElements * b.Hidden.ElementSize);
        public int Count => Batches.Sum(b => b.Rows.Length);
        public void Dispose() { foreach (var b in Batches) { b.Hidden.Dispose(); b.Mask.Dispose(); } Batches.Clear(); }
    }

    /// <summary>Runs the embeddings and the first <paramref name="layers"/> layers once over <paramref name="rows"/> (length-sorted batches, no gradients).</summary>
    private static HiddenCache CacheHidden(ModelZoo.Models.Nlp.TextEncoder model, int layers, List<int[]> rows, int padId, int batchSize, Device device, TextWriter log, string what)
    {
        model.eval();
        var cache = new HiddenCache();
        ForEachSortedBatch(rows, padId, batchSize, device, log, "caching " + what, (chunk, x, mask) =>
            cache.Batches.Add((model.HiddenStateAfter(layers, x, mask).DetachFromDisposeScope(), mask.DetachFromDisposeScope(), chunk.Select(i => (long)i).ToArray())));
        return cache;
    }

    /// <summary>
    /// Fine-tunes the layers from <paramref name="fromLayer"/> up and the head on cached hidden states: AdamW (no decay
    /// on biases and norms), the head at 20× the layers' rate, linear warm-up over 10 % then cosine decay, class-balanced
    /// cross-entropy, gradients clipped at 1. Batches keep their length-sorted composition and are shuffled each epoch.
    /// After each epoch the test states are scored (reported, not used to choose anything); returns the final score.
    /// </summary>
    private static Evaluation TuneTop(ModelZoo.Models.Nlp.TextEncoder model, int fromLayer, int numEpochs, HiddenCache train, HiddenCache test,
        Tensor trainY, Tensor testY, int[] testIdx, TextQuickstartOptions o, TextWriter log, List<(long, double)> losses, List<(long, double)> lrs, List<EpochRecord> epochs)
    {
        var dev = model.parameters().First().device;
        foreach (var p in model.parameters()) p.requires_grad = false;
        var layerParams = new List<(string Name, TorchSharp.Modules.Parameter P)>();
        for (int l = fromLayer; l < model.NumLayers; l++)
            layerParams.AddRange(model.Get($"{model.LayersPath}.{l}")!.named_parameters().Select(p => (Name: p.name, P: p.parameter)));
        var headParams = model.Get(model.HeadPath)!.named_parameters().Select(p => (Name: p.name, P: p.parameter)).ToList();
        foreach (var (_, p) in layerParams.Concat(headParams)) p.requires_grad = true;
        static bool NoDecay(string name) => name.EndsWith("bias", StringComparison.Ordinal) || name.Contains("LayerNorm", StringComparison.Ordinal) || name.Contains("layer_norm", StringComparison.Ordinal);
        double headLr = o.EncoderLr * 20;
        var groups = new List<TorchSharp.Modules.AdamW.ParamGroup>
        {
            new(layerParams.Where(p => !NoDecay(p.Name)).Select(p => p.P), new TorchSharp.Modules.AdamW.Options { LearningRate = o.EncoderLr, weight_decay = 0.01 }),
            new(layerParams.Where(p => NoDecay(p.Name)).Select(p => p.P), new TorchSharp.Modules.AdamW.Options { LearningRate = o.EncoderLr, weight_decay = 0 }),
            new(headParams.Select(p => p.P), new TorchSharp.Modules.AdamW.Options { LearningRate = headLr, weight_decay = 0.01 }),
        };
        var baseLrs = new[] { o.EncoderLr, o.EncoderLr, headLr };
        using var opt = optim.AdamW(groups);
        var labels = trainY.to(dev);
        int numClasses = (int)model.Get(model.HeadPath)!.parameters().Last().shape[0];
        var counts = bincount(labels, minlength: numClasses).to(ScalarType.Float32).clamp_min(1);
        var classWeights = (counts.sum() / (counts * numClasses)).to(dev);
        int stepsPerEpoch = train.Batches.Count, totalSteps = stepsPerEpoch * numEpochs, warm = Math.Max(1, totalSteps / 10);
        var rng = new Random(o.Seed);
        long step = 0;
        Evaluation? last = null;
        for (int epoch = 1; epoch <= numEpochs; epoch++)
        {
            var sw = Stopwatch.StartNew();
            model.train();
            var order = Enumerable.Range(0, stepsPerEpoch).ToArray();
            rng.Shuffle(order);
            double sum = 0;
            foreach (var bi in order)
            {
                using var scope = NewDisposeScope();
                var (hidden, mask, rows) = train.Batches[bi];
                double factor = step < warm ? (step + 1.0) / warm : 0.5 * (1 + Math.Cos(Math.PI * (step - warm) / Math.Max(1, totalSteps - warm)));
                for (int g = 0; g < groups.Count; g++) opt.ParamGroups.ElementAt(g).LearningRate = baseLrs[g] * factor;
                opt.zero_grad();
                var logits = model.ForwardFrom(fromLayer, hidden.to(dev), mask.to(dev));
                var loss = nn.functional.cross_entropy(logits, labels.index_select(0, tensor(rows, device: dev)), weight: classWeights);
                loss.backward();
                nn.utils.clip_grad_norm_(layerParams.Concat(headParams).Select(p => p.P), 1.0);
                opt.step();
                double l = loss.item<float>();
                sum += l;
                step++;
                losses.Add((step, l));
                lrs.Add((step, baseLrs[0] * factor));
            }
            double trainSeconds = sw.Elapsed.TotalSeconds;
            last = ScoreCached(model, fromLayer, test, testY, testIdx);
            epochs.Add(new EpochRecord(epoch, "fine-tune", sum / stepsPerEpoch, last.Loss, new Dictionary<string, double> { ["accuracy"] = last.Accuracy }, sw.Elapsed.TotalSeconds));
            log.WriteLine($"epoch {epoch}/{numEpochs}: train loss {sum / stepsPerEpoch:F4}, test loss {last.Loss:F4}, test accuracy {last.Accuracy * 100:F2}% " +
                $"({stepsPerEpoch} steps in {trainSeconds:F0}s, test {sw.Elapsed.TotalSeconds - trainSeconds:F0}s)");
        }
        foreach (var p in model.parameters()) p.requires_grad = true;
        model.eval();
        return last!;
    }

    /// <summary>Scores cached test states through the top layers and the head (eval mode), in the original order of the test rows.</summary>
    private static Evaluation ScoreCached(ModelZoo.Models.Nlp.TextEncoder model, int fromLayer, HiddenCache test, Tensor testY, int[] testIdx)
    {
        model.eval();
        var dev = model.parameters().First().device;
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var parts = test.Batches.Select(b => model.ForwardFrom(fromLayer, b.Hidden.to(dev), b.Mask.to(dev)).to(ScalarType.Float32).cpu()).ToList();
        var rows = tensor(test.Batches.SelectMany(b => b.Rows).ToArray());
        var logits = zeros(test.Count, parts[0].shape[1]).index_copy_(0, rows, cat(parts, 0));
        var y = testY.cpu();
        var per = nn.functional.cross_entropy(logits, y, reduction: nn.Reduction.None);
        return new Evaluation(logits.data<float>().ToArray(), (int)logits.shape[1], y.data<long>().ToArray().Select(v => (int)v).ToArray(),
            per.data<float>().ToArray(), testIdx);
    }

    /// <summary>
    /// A linear probe on cached pooled features: standardize, full-batch Adam (warm-up + cosine) with an L2 penalty and
    /// class-balanced cross-entropy, then fold the standardization into the weights. Returns the folded weight C×F and
    /// bias C, on <paramref name="device"/>.
    /// </summary>
    private static (Tensor Weight, Tensor Bias) TrainProbe(Tensor features, Tensor labels, int numClasses, Device device, TextQuickstartOptions o,
        List<(long, double)> losses, List<(long, double)> lrs)
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
        using var opt = optim.Adam(linear.parameters(), lr: o.Lr);
        int warm = Math.Max(1, o.HeadSteps / 20);
        for (int step = 0; step < o.HeadSteps; step++)
        {
            using var scope = NewDisposeScope();
            double lr = step < warm ? o.Lr * (step + 1) / warm : o.Lr * 0.5 * (1 + Math.Cos(Math.PI * (step - warm) / Math.Max(1, o.HeadSteps - warm)));
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
            return (w.detach().MoveToOuterDisposeScope(), b.detach().MoveToOuterDisposeScope());
        }
    }

    /// <summary>Class weights n / (C · n_c), so a rare class is not ignored on skewed data.</summary>
    private static Tensor BalancedWeights(Tensor y, int numClasses)
    {
        var counts = bincount(y, minlength: numClasses).to(ScalarType.Float32).clamp_min(1);
        return counts.sum() / (counts * numClasses);
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
    /// </summary>
    private static (Tensor Weight, Tensor Bias, double Loss, int Evaluations) TrainBag(Tensor features, Tensor labels, int numClasses, Device device, TextQuickstartOptions o)
    {
        using var outer = NewDisposeScope();
        var x = features.to(device);
        var y = labels.to(device);
        var weights = BalancedWeights(y, numClasses);
        var w = nn.Parameter(zeros(numClasses, x.shape[1], device: device));
        var b = nn.Parameter(zeros(numClasses, device: device));
        using var opt = optim.LBFGS([w, b], lr: 1, max_iter: 200, tolerange_grad: 1e-7, tolerance_change: 1e-10, history_size: 20);
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

    /// <summary>Logits x·Wᵀ + b of cached features (on the weights' device), returned on the CPU.</summary>
    private static Tensor Logits(Tensor features, Tensor weight, Tensor bias)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        return features.to(weight.device).matmul(weight.t()).add(bias).to(ScalarType.Float32).cpu().MoveToOuterDisposeScope();
    }

    /// <summary>Standard deviation of logits around each row's mean: how strongly a linear head votes.</summary>
    private static double Spread(Tensor logits)
    {
        using var scope = NewDisposeScope();
        return Math.Max(1e-6, logits.sub(logits.mean([1], keepdim: true)).std().item<float>());
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
