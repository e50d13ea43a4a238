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

    /// <summary>Fraction held out for the test (stratified by label, seeded).</summary>
    public double TestFraction { get; init; } = 0.2;

    /// <summary>Texts per encoder batch (texts are sorted by length so padding stays small).</summary>
    public int BatchSize { get; init; } = 32;

    /// <summary>Full-batch AdamW steps of the head on the cached embeddings.</summary>
    public int HeadSteps { get; init; } = 600;

    /// <summary>Peak learning rate of the head (cosine schedule with warm-up, on standardized features).</summary>
    public double Lr { get; init; } = 3e-2;

    /// <summary>AdamW weight decay of the head.</summary>
    public double WeightDecay { get; init; } = 1e-3;

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
/// offline) in minutes on a CPU. The plan: hold out a stratified, seeded test split; tokenize each text (cut to
/// <see cref="TextQuickstartOptions.MaxLength"/> tokens, shortened if the measured encoder speed would not fit the
/// budget); run the frozen encoder once over every text (length-sorted batches, attention masks) and cache the
/// mean-pooled embedding; train the classifier (a linear layer on the mean-pooled last hidden state, the encoder's
/// own sequence head) full-batch with AdamW on standardized embeddings, fold the standardization into its weights,
/// evaluate, and check the full model (encoder + head) reproduces the cached predictions.
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
        int[] Tokens(int i, int len) => tokenizer.EncodeOne(Cut(texts[i], len), maxLength: len).Ids;
        var twTok = Stopwatch.StartNew();
        var ids = all.AsParallel().Select(i => (i, Tokens(i, maxLength))).ToDictionary(p => p.i, p => p.Item2);
        twTok.Stop();
        double meanLen = ids.Values.Average(a => a.Length);
        log.WriteLine($"model: {o.Model} ({model.LoadedWeights?.Tag ?? "random init"}), {model.NumLayers} layers, {model.NumFeatures}-d, mean pooling; " +
            $"tokenizer: WordPiece, lower case; texts cut to {maxLength} tokens (mean {meanLen:F0}) in {twTok.Elapsed.TotalSeconds:F1}s");

        // 3. Plan: measure the encoder on the longest texts and shorten the length when the budget asks for it
        double tokensPerSecond = MeasureEncoder(model, ids.Values.OrderByDescending(a => a.Length).Take(o.BatchSize).ToList(), tokenizer.PadTokenId, device);
        double Projected(int len) => ids.Values.Sum(a => (double)Math.Min(a.Length, len)) / tokensPerSecond * (1 + len / 1024.0);
        double budget = o.TimeBudgetSeconds * 0.8 - total.Elapsed.TotalSeconds;
        int planned = maxLength;
        while (planned > 64 && Projected(planned) > budget) planned /= 2;
        if (planned != maxLength)
        {
            log.WriteLine($"plan: encoding {all.Length:N0} texts at {maxLength} tokens would take ~{Projected(maxLength):F0}s at the measured {tokensPerSecond:F0} tokens/s; " +
                $"cutting to {planned} tokens (~{Projected(planned):F0}s) to fit the {o.TimeBudgetSeconds}s budget");
            maxLength = planned;
            foreach (var k in ids.Keys.ToList()) if (ids[k].Length > maxLength) ids[k] = Tokens(k, maxLength);
        }
        else
            log.WriteLine($"plan: encoder measured at {tokensPerSecond:F0} tokens/s → ~{Projected(maxLength):F0}s to embed all texts once (budget {o.TimeBudgetSeconds}s)");

        // 4. Embed every text once with the frozen encoder
        var twEmbed = Stopwatch.StartNew();
        var trainF = Embed(model, trainIdx.Select(i => ids[i]).ToList(), tokenizer.PadTokenId, o.BatchSize, device, log, "train");
        var testF = Embed(model, testIdx.Select(i => ids[i]).ToList(), tokenizer.PadTokenId, o.BatchSize, device, log, "test");
        twEmbed.Stop();
        log.WriteLine($"cache: {trainIdx.Length + testIdx.Length:N0} mean-pooled {model.NumFeatures}-d embeddings in {twEmbed.Elapsed.TotalSeconds:F0}s");

        // 5. Train the head on the cache
        var trainY = tensor(trainIdx.Select(i => (long)dataset.LabelOf(i)).ToArray());
        var testY = tensor(testIdx.Select(i => (long)dataset.LabelOf(i)).ToArray());
        model.ReplaceSequenceHead(classes.Count);
        model.to(device);
        var history = new List<(long, double)>();
        var lrs = new List<(long, double)>();
        var twHead = Stopwatch.StartNew();
        TrainHead(model, trainF, trainY, classes.Count, o, history, lrs);
        twHead.Stop();
        log.WriteLine($"train: linear head {model.NumFeatures}→{classes.Count} on standardized embeddings, full-batch AdamW lr {o.Lr:G3} (warm-up + cosine), " +
            $"wd {o.WeightDecay}, {o.HeadSteps} steps in {twHead.Elapsed.TotalSeconds:F1}s; final train loss {history[^1].Item2:F4}");

        // 6. Evaluate (cached embeddings through the real head) and check the full model agrees
        var eval = EvaluateHead(model, testF, testY, testIdx);
        CheckFullModel(model, testIdx.Take(Math.Min(48, testIdx.Length)).Select(i => ids[i]).ToList(), eval, tokenizer.PadTokenId, device);
        total.Stop();
        var cpu = Process.GetCurrentProcess().TotalProcessorTime - cpu0;
        log.WriteLine($"test accuracy: {eval.Accuracy * 100:F2}% on {testIdx.Length:N0} held-out texts (macro-F1 {eval.MacroF1:F4}); " +
            $"wall time {total.Elapsed.TotalSeconds:F0}s, CPU time {cpu.TotalSeconds:F0}s (tokenize {twTok.Elapsed.TotalSeconds:F0}s, embed {twEmbed.Elapsed.TotalSeconds:F0}s, head {twHead.Elapsed.TotalSeconds:F0}s)");

        // 7. Checkpoint and report
        var runFolder = RecipeRunner.NewRunFolder(o.Output, "quickstart-text");
        var spec = new TrainedModelSpec { Task = "nlp", Model = o.Model, ClassNames = classes.ToList(), MaxLength = maxLength };
        var ckpt = Path.Combine(runFolder, "best.ckpt");
        using (var learner = new Learner(model, Array.Empty<Batch>(), options: new LearnerOptions { Seed = o.Seed, Device = device, Config = spec.ToJson(), RunFolder = runFolder, Output = TextWriter.Null }))
            learner.Save(ckpt);
        var summary = new EvaluationSummary("test", classes, ToLong(eval.ConfusionMatrix), eval.Loss,
            eval.TopLosses(12).Select(t => new Reports.TopLoss(ShortSource(dataset, t.Index), classes[t.Actual], classes[t.Predicted], t.Loss, t.Probability,
                Text: Snippet(texts[t.Index]))).ToList());
        var facts = new List<(string, string)>
        {
            ("model", $"{o.Model} ({model.LoadedWeights?.Tag ?? "random init"}), frozen encoder, mean pooling, linear head"),
            ("data", $"{dataName}: {trainIdx.Length:N0} train, {testIdx.Length:N0} test (stratified {o.TestFraction:P0}, seed {o.Seed})"),
            ("device", choice.Reason),
            ("plan", $"texts cut to {maxLength} tokens; embeddings computed once; head trained {o.HeadSteps} full-batch steps"),
            ("time", $"{total.Elapsed.TotalSeconds:F0}s wall, {cpu.TotalSeconds:F0}s CPU; embed {twEmbed.Elapsed.TotalSeconds:F0}s; head {twHead.Elapsed.TotalSeconds:F1}s"),
            ("test accuracy", $"{eval.Accuracy * 100:F2}%"),
            ("checkpoint", ckpt),
        };
        var epochs = new List<EpochRecord> { new(1, "train", history.Average(h => h.Item2), eval.Loss, new Dictionary<string, double> { ["accuracy"] = eval.Accuracy }, twHead.Elapsed.TotalSeconds) };
        RunReport.Write(runFolder, $"Quickstart: {dataName} with {o.Model}", facts, new TrainingHistory(epochs, lrs, history), [summary]);
        File.WriteAllText(Path.Combine(runFolder, "result.json"), System.Text.Json.JsonSerializer.Serialize(new
        {
            test_accuracy = eval.Accuracy, test_count = testIdx.Length, seconds = total.Elapsed.TotalSeconds, cpu_seconds = cpu.TotalSeconds, max_length = maxLength,
            embed_seconds = twEmbed.Elapsed.TotalSeconds, device = choice.Reason,
        }));
        log.WriteLine($"run folder: {runFolder} (best.ckpt, report.md, report.html, plots)");
        trainF.Dispose(); testF.Dispose(); trainY.Dispose(); testY.Dispose();
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

    internal static string Cut(string text, int tokens) => text.Length > tokens * 12 ? text[..(tokens * 12)] : text;

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

    /// <summary>Mean-pooled last hidden states (N×H, float32, CPU), in the order of <paramref name="rows"/>; batches are length-sorted.</summary>
    private static Tensor Embed(ModelZoo.Models.Nlp.TextEncoder model, List<int[]> rows, int padId, int batchSize, Device device, TextWriter log, string what)
    {
        var order = Enumerable.Range(0, rows.Count).OrderBy(i => rows[i].Length).ToArray();
        var result = zeros(rows.Count, model.NumFeatures);
        var sw = Stopwatch.StartNew();
        var lastReport = TimeSpan.Zero;
        using var noGrad = no_grad();
        for (int start = 0; start < order.Length; start += batchSize)
        {
            using var scope = NewDisposeScope();
            var chunk = order[start..Math.Min(order.Length, start + batchSize)];
            var x = Pad(chunk.Select(i => rows[i]).ToList(), padId, device);
            var mask = x.ne(padId).to_type(ScalarType.Int64);
            var pooled = ModelZoo.Models.Nlp.TextEncoder.MeanPool(model.LastHiddenState(x, mask), mask).to(ScalarType.Float32).cpu();
            result.index_copy_(0, tensor(chunk.Select(i => (long)i).ToArray()), pooled);
            if (sw.Elapsed - lastReport > TimeSpan.FromSeconds(30))
            {
                lastReport = sw.Elapsed;
                log.WriteLine($"  embedding {what}: {start + chunk.Length:N0}/{rows.Count:N0} texts, {sw.Elapsed.TotalSeconds:F0}s");
            }
        }
        return result;
    }

    /// <summary>Trains the model's classifier (linear) on cached pooled features: standardize, full-batch AdamW, then fold the standardization into the weights.</summary>
    private static void TrainHead(ModelZoo.Models.Nlp.TextEncoder model, Tensor features, Tensor labels, int numClasses, TextQuickstartOptions o,
        List<(long, double)> losses, List<(long, double)> lrs)
    {
        var head = model.Get(model.HeadPath) as nn.Module<Tensor, Tensor> ?? throw new InvalidOperationException("The text encoder has no classifier to train.");
        var dev = model.parameters().First().device;
        using var outer = NewDisposeScope();
        var x = features.to(dev);
        var y = labels.to(dev);
        var mean = x.mean([0]);
        var std = x.std(0).clamp_min(1e-6);
        var xs = (x - mean) / std;
        torch.manual_seed(o.Seed);
        var linear = nn.Linear(model.NumFeatures, numClasses).to(dev);
        using (no_grad()) { linear.weight!.zero_(); linear.bias!.zero_(); }
        // Balanced class weights keep a rare class from being ignored on skewed data.
        var counts = bincount(y, minlength: numClasses).to(ScalarType.Float32).clamp_min(1);
        var weights = counts.sum() / (counts * numClasses);
        var opt = optim.AdamW(linear.parameters(), lr: o.Lr, weight_decay: o.WeightDecay);
        int warm = Math.Max(1, o.HeadSteps / 20);
        for (int step = 0; step < o.HeadSteps; step++)
        {
            using var scope = NewDisposeScope();
            double lr = step < warm ? o.Lr * (step + 1) / warm : o.Lr * 0.5 * (1 + Math.Cos(Math.PI * (step - warm) / Math.Max(1, o.HeadSteps - warm)));
            foreach (var g in opt.ParamGroups) g.LearningRate = lr;
            opt.zero_grad();
            var loss = nn.functional.cross_entropy(linear.call(xs), y, weight: weights);
            loss.backward();
            opt.step();
            losses.Add((step + 1, loss.item<float>()));
            lrs.Add((step + 1, lr));
        }
        // classifier(x) = W ((x − μ)/σ) + b = (W/σ) x + (b − W (μ/σ))
        using (no_grad())
        {
            var w = linear.weight!.div(std);
            var b = linear.bias!.sub(linear.weight!.matmul(mean.div(std)));
            var p = head.named_parameters().ToDictionary(kv => kv.name, kv => kv.parameter);
            p["weight"].copy_(w);
            p["bias"].copy_(b);
        }
        opt.Dispose();
        linear.Dispose();
    }

    private static Evaluation EvaluateHead(ModelZoo.Models.Nlp.TextEncoder model, Tensor features, Tensor labels, int[] indices)
    {
        model.eval();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var head = (nn.Module<Tensor, Tensor>)model.Get(model.HeadPath)!;
        var dev = model.parameters().First().device;
        var logits = head.call(features.to(dev)).to(ScalarType.Float32).cpu();
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
