using System.Diagnostics;
using ModelZoo.Data;
using ModelZoo.Tasks.Baselines;
using ModelZoo.Tasks.Recipes;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tasks.Vision;

/// <summary>Settings of <c>zoo quickstart images</c>; everything but <see cref="Path"/> has a default chosen from the data.</summary>
public sealed record ImagesQuickstartOptions
{
    /// <summary>An image folder (one sub-folder per class, or <c>train/</c> + <c>val/</c>/<c>test/</c> folders of those), a CSV/TSV of (path, label) rows, or Parquet file(s) of (image bytes, label).</summary>
    public required string Path { get; init; }

    /// <summary>Image column of a CSV (default <c>path</c>) or Parquet file (default <c>image</c>).</summary>
    public string? ImageColumn { get; init; }

    /// <summary>Label column of a CSV or Parquet file.</summary>
    public string LabelColumn { get; init; } = "label";

    /// <summary>Catalog model; the default has offline pretrained weights.</summary>
    public string Model { get; init; } = "resnet18-cntk";

    /// <summary>Wall-time budget for the whole run in seconds; resolution, mode and epochs are planned to fit it.</summary>
    public int TimeBudgetSeconds { get; init; } = 300;

    /// <summary>Image side fed to the model (0 = chosen from the images' sizes and the budget).</summary>
    public int ImageSize { get; init; }

    /// <summary><c>linear-probe</c> or <c>fine-tune-fastai</c>; null to choose from the dataset size and the budget.</summary>
    public string? Mode { get; init; }

    /// <summary><c>none</c> or <c>balanced</c> class weights of the loss; null to choose from the class sizes (<see cref="ImagesQuickstart.BalancedLossRatio"/>).</summary>
    public string? ClassWeights { get; init; }

    /// <summary>Use at most this many training items, a stratified sample (0 = all).</summary>
    public int Limit { get; init; }

    /// <summary><c>auto</c>, <c>cpu</c>, <c>cuda</c> or <c>cuda:N</c>.</summary>
    public string Device { get; init; } = "auto";

    /// <summary>Seed for the split, the head and shuffling.</summary>
    public int Seed { get; init; } = 42;

    /// <summary>Folder under which the run folder is created.</summary>
    public string Output { get; init; } = "runs";

    /// <summary>Loader worker threads (0 = one per core).</summary>
    public int Workers { get; init; }

    /// <summary>Also fit the simple baseline (<see cref="PixelBaseline"/>) on the same split and report how the quickstart compares.</summary>
    public bool Baseline { get; init; } = true;
}

/// <summary>What <c>zoo quickstart images</c> produced.</summary>
/// <param name="RunFolder">Run folder (recipe.yaml, checkpoints, metrics, report).</param>
/// <param name="Checkpoint">Path of <c>best.ckpt</c>.</param>
/// <param name="Accuracy">Accuracy on the held-out data (the test set when there is one, else the validation set).</param>
/// <param name="EvaluatedOn"><c>test</c> or <c>validation</c>.</param>
/// <param name="Elapsed">Wall time of the whole run.</param>
/// <param name="Choices">What the quickstart chose, and why (also in the report).</param>
public sealed record ImagesQuickstartResult(string RunFolder, string Checkpoint, double Accuracy, string EvaluatedOn, TimeSpan Elapsed, IReadOnlyList<(string What, string Choice)> Choices)
{
    /// <summary>The quickstart against its baseline on the same held-out items (null with <see cref="ImagesQuickstartOptions.Baseline"/> off).</summary>
    public BaselineComparison? Baseline { get; init; }
}

/// <summary>
/// <c>zoo quickstart images PATH</c>: any image folder, CSV or Parquet file → a classifier on a pretrained backbone and a
/// report. It inspects the data (layout, classes, image sizes), measures the model's speed on this machine, plans
/// resolution, batch size, training mode (linear probe on cached features, or fastai's fine_tune: head first, then
/// unfreeze) and epochs to fit the time budget, says what it chose, and then runs the plan as a <see cref="Recipe"/>
/// through <see cref="RecipeRunner"/> (so the run folder holds a <c>recipe.yaml</c> that <c>zoo train</c> reruns).
/// </summary>
public static class ImagesQuickstart
{
    private static readonly int[] Ladder = [32, 48, 64, 96, 128, 160, 192, 224, 256, 288, 320, 384];
    private static readonly string[] ValNames = ["val", "valid", "validation"];
    private static readonly string[] TestNames = ["test"];

    /// <summary>Runs the quickstart, writing progress and its choices to <paramref name="log"/>.</summary>
    /// <exception cref="RecipeException">The data cannot be used (missing, empty, one class, missing column); the message names the path and the fix.</exception>
    public static ImagesQuickstartResult Run(ImagesQuickstartOptions o, TextWriter log)
    {
        var clock = Stopwatch.StartNew();
        var layout = Inspect(o);
        var baseline = o.Baseline ? RunBaseline(o, layout, log) : null;
        var (recipe, choices) = Plan(o, layout, clock, log);
        if (baseline is not null)
            choices.Add(("baseline", $"{baseline.Method}: {baseline.Accuracy * 100:F2}% on the same {baseline.HeldOutCount:N0} held-out images, {baseline.Elapsed.TotalSeconds:F1}s" +
                (baseline.Note is null ? "" : $" ({baseline.Note})")));
        foreach (var (what, choice) in choices) log.WriteLine($"{what}: {choice}");
        var result = RecipeRunner.Run(recipe, log, $"Quickstart: {System.IO.Path.GetFileName(layout.Train.TrimEnd('/', '\\'))} with {o.Model}", choices);
        bool test = result.TestAccuracy is not null;
        double accuracy = result.TestAccuracy ?? result.ValidationAccuracy;
        var comparison = baseline is null ? null
            : new BaselineComparison($"{o.Model}, {recipe.Train.Mode}", accuracy, HeldOutName(layout), baseline);
        if (comparison is not null)
        {
            comparison.WriteInto(result.RunFolder);
            log.WriteLine($"baseline: {comparison.Verdict}");
        }
        var json = new Dictionary<string, object?>
        {
            ["accuracy"] = accuracy, ["evaluated_on"] = test ? "test" : "validation", ["seconds"] = clock.Elapsed.TotalSeconds,
            ["classes"] = layout.ClassNames.Count, ["train_images"] = layout.ClassCounts.Sum(), ["median_side"] = layout.MedianSide,
            ["image_size"] = recipe.Data.ImageSize, ["batch_size"] = recipe.Data.BatchSize, ["mode"] = recipe.Train.Mode, ["epochs"] = recipe.Train.Epochs,
            ["baseline"] = comparison?.Json(),
        };
        File.WriteAllText(System.IO.Path.Combine(result.RunFolder, "result.json"), System.Text.Json.JsonSerializer.Serialize(json));
        return new ImagesQuickstartResult(result.RunFolder, result.BestCheckpoint, accuracy, test ? "test" : "validation", clock.Elapsed, choices) { Baseline = comparison };
    }

    /// <summary>Validation fraction held out of the training items: none with a validation folder, else 20 % (10 % from 2,000 items up).</summary>
    internal static double ValFraction(ImagesQuickstartOptions o, Layout layout)
    {
        int total = layout.ClassCounts.Sum();
        int used = o.Limit > 0 ? Math.Min(o.Limit, total) : total;
        return layout.Val is not null ? 0 : used < 2000 ? 0.2 : 0.1;
    }

    /// <summary>What the reported accuracy is measured on.</summary>
    private static string HeldOutName(Layout layout) => layout.Test is not null ? "the test folder" : layout.Val is not null ? "the validation folder" : "the validation split";

    /// <summary>
    /// The baseline on the split the recipe will use (the runner's stratified sample and split with the same seed and
    /// fraction), scored on the items the quickstart's accuracy is reported on: the test folder, else the validation
    /// folder, else the validation split.
    /// </summary>
    private static BaselineResult RunBaseline(ImagesQuickstartOptions o, Layout layout, TextWriter log)
    {
        var train = Open(layout.Source, layout.Train, o);
        var all = Enumerable.Range(0, train.Count).ToArray();
        var used = DataSources.StratifiedSample(all, train.LabelOf, o.Limit, o.Seed);
        double valFraction = ValFraction(o, layout);
        var (trainIdx, valIdx) = valFraction > 0 ? DataSources.StratifiedSplit(used, train.LabelOf, valFraction, o.Seed) : (used, []);
        var heldOutPath = layout.Test ?? layout.Val;
        var heldOut = heldOutPath is null ? train : Open(layout.Source, heldOutPath, o);
        var heldOutIdx = heldOutPath is null ? valIdx : Enumerable.Range(0, heldOut.Count).ToArray();
        var result = PixelBaseline.Run(train, trainIdx, heldOut, heldOutIdx, o.Seed);
        log.WriteLine($"baseline: {result.Method}: {result.Accuracy * 100:F2}% on {result.HeldOutCount:N0} held-out images ({HeldOutName(layout)}), " +
            $"fitted on {result.TrainCount:N0} in {result.Elapsed.TotalSeconds:F1}s{(result.Note is null ? "" : $" ({result.Note})")}");
        return result;
    }

    /// <summary>Where the data is and what it holds.</summary>
    internal sealed record Layout(string Source, string Train, string? Val, string? Test, IReadOnlyList<string> ClassNames, int[] ClassCounts, int ValCount, int TestCount,
        int MedianSide, IReadOnlyList<ImageSource> Samples, string Description);

    /// <summary>Finds the layout of <see cref="ImagesQuickstartOptions.Path"/> and checks it can train a classifier.</summary>
    internal static Layout Inspect(ImagesQuickstartOptions o)
    {
        var path = o.Path;
        bool isDir = Directory.Exists(path);
        string ext = System.IO.Path.GetExtension(path).ToLowerInvariant();
        string source;
        string train = path;
        string? val = null, test = null;
        if (isDir)
        {
            source = "image-folder";
            string? Sub(string[] names) => Directory.GetDirectories(path).FirstOrDefault(d => names.Contains(System.IO.Path.GetFileName(d).ToLowerInvariant()));
            if (Sub(["train", "training"]) is { } t)
            {
                train = t;
                val = Sub(ValNames);
                test = Sub(TestNames);
            }
        }
        else if (ext is ".csv" or ".tsv" or ".txt")
        {
            if (!File.Exists(path)) throw new RecipeException($"'{path}' does not exist. Give an image folder (one sub-folder per class), a CSV of path,label rows or a Parquet file of image bytes and labels.");
            source = "image-csv";
        }
        else if (ext == ".parquet")
        {
            if (!File.Exists(path) && !path.Contains('*')) throw new RecipeException($"'{path}' does not exist. Give an image folder (one sub-folder per class), a CSV of path,label rows or a Parquet file of image bytes and labels.");
            source = "parquet-images";
        }
        else if (File.Exists(path))
        {
            throw new RecipeException($"'{path}' is not an image folder, a .csv/.tsv or a .parquet file. Give a folder with one sub-folder of images per class, " +
                "a CSV/TSV with an image-path column and a label column, or Parquet file(s) with image bytes and labels.");
        }
        else
        {
            throw new RecipeException($"'{path}' does not exist. Give an image folder (one sub-folder per class), a CSV of path,label rows or a Parquet file of image bytes and labels.");
        }

        var trainSet = Open(source, train, o);
        var counts = new int[trainSet.ClassNames.Count];
        for (int i = 0; i < trainSet.Count; i++) counts[trainSet.LabelOf(i)]++;
        var present = Enumerable.Range(0, counts.Length).Where(c => counts[c] > 0).ToList();
        if (present.Count < 2)
        {
            string fix = source switch
            {
                "image-folder" => $"put the images of each class in their own sub-folder ({System.IO.Path.Combine(train, "<class>", "<image>")}), at least two classes",
                _ => $"the label column '{o.LabelColumn}' must hold at least two different labels (name another with --label-col)",
            };
            throw new RecipeException($"{trainSet.Source} has {present.Count} class{(present.Count == 1 ? $" ('{trainSet.ClassNames[present[0]]}')" : "es")} with images; a classifier needs at least two: {fix}.");
        }
        int valCount = val is null ? 0 : Open(source, val, o).Count;
        int testCount = test is null ? 0 : Open(source, test, o).Count;

        // Image sizes: a few files spread over the dataset (headers only).
        var rng = new Random(o.Seed);
        var sampleIdx = Enumerable.Range(0, trainSet.Count).OrderBy(_ => rng.Next()).Take(32).ToList();
        var samples = new List<ImageSource>();
        var sides = new List<int>();
        var unreadable = new List<string>();
        foreach (var i in sampleIdx)
        {
            var src = trainSet[i].Source;
            try
            {
                var (w, h) = ImageDecoder.ReadSize(src);
                sides.Add(Math.Min(w, h));
                samples.Add(src);
            }
            catch (Exception e) when (e is IOException or InvalidDataException or NotSupportedException or UnauthorizedAccessException)
            {
                unreadable.Add($"{trainSet.Describe(i)} ({e.Message.Split('\n')[0]})");
            }
        }
        if (sides.Count == 0)
            throw new RecipeException($"None of the {sampleIdx.Count} images sampled from {trainSet.Source} could be read: {string.Join("; ", unreadable.Take(3))}. " +
                (source == "image-csv" ? $"Check the image column ('{o.ImageColumn ?? "path"}'; --image-col) and that relative paths are relative to the CSV's folder." : "Check the files are JPEG/PNG/WebP/BMP/GIF images."));
        sides.Sort();
        int median = sides[sides.Count / 2];
        string desc = $"{source} {trainSet.Source}: {trainSet.Count:N0} images in {present.Count} classes ({string.Join(", ", present.Take(8).Select(c => $"{trainSet.ClassNames[c]} {counts[c]}"))}{(present.Count > 8 ? ", …" : "")})" +
            (val is null ? "" : $"; validation folder {val}: {valCount:N0}") + (test is null ? "" : $"; test folder {test}: {testCount:N0}") +
            $"; median shorter side {median}px (of {sides.Count} sampled)";
        return new Layout(source, train, val, test, trainSet.ClassNames, counts, valCount, testCount, median, samples, desc);
    }

    private static IDataset<ImageSample> Open(string source, string path, ImagesQuickstartOptions o)
    {
        string columnsFix = $"Name the columns with --image-col (default {(source == "image-csv" ? "path" : "image")}) and --label-col (default label).";
        try
        {
            return source switch
            {
                "image-folder" => ImageFolder.Open(path),
                "image-csv" => ImageCsv.Open(path, pathColumn: o.ImageColumn ?? "path", labelColumn: o.LabelColumn),
                _ => ParquetImages.Open(path, imageColumn: o.ImageColumn ?? "image", labelColumn: o.LabelColumn),
            };
        }
        catch (InvalidDataException e) when (source != "image-folder" && e.Message.Contains("no column", StringComparison.Ordinal))
        {
            throw new RecipeException($"{e.Message} {columnsFix}", e);
        }
        catch (Exception e) when (e is InvalidDataException or FileNotFoundException or DirectoryNotFoundException)
        {
            throw new RecipeException(e.Message, e);
        }
    }

    /// <summary>Chooses resolution, batch size, mode and epochs from the data and the measured speed, and builds the recipe.</summary>
    internal static (Recipe Recipe, List<(string, string)> Choices) Plan(ImagesQuickstartOptions o, Layout layout, Stopwatch clock, TextWriter log)
    {
        var choices = new List<(string, string)> { ("dataset", layout.Description) };
        int total = layout.ClassCounts.Sum();
        int used = o.Limit > 0 ? Math.Min(o.Limit, total) : total;
        double valFraction = ValFraction(o, layout);
        int nTrain = (int)Math.Round(used * (1 - valFraction));
        int nVal = layout.Val is not null ? layout.ValCount : used - nTrain;
        int nTest = layout.TestCount;
        choices.Add(("split", layout.Val is not null
            ? $"the dataset's own train/{System.IO.Path.GetFileName(layout.Val)}{(layout.Test is null ? "" : "/" + System.IO.Path.GetFileName(layout.Test))} folders: {nTrain:N0} train, {nVal:N0} validation{(nTest > 0 ? $", {nTest:N0} test" : "")}"
            : $"stratified, seeded (seed {o.Seed}) hold-out of {valFraction:P0} for validation: {nTrain:N0} train, {nVal:N0} validation{(nTest > 0 ? $"; test folder {nTest:N0}" : "")}" +
              (o.Limit > 0 && o.Limit < total ? $" (a stratified sample of {used:N0} of {total:N0} items, --limit)" : "")));

        // The model, and its speed on this machine.
        var device = DeviceSelector.Resolve(o.Device).Device;
        using var model = Zoo.Load(o.Model);
        var pre = model.Preprocessing;
        if (model.InChans != 3) throw new RecipeException($"--model {o.Model} takes {model.InChans} input channel(s); the images quickstart feeds RGB images to a 3-channel model.");
        choices.Add(("backbone", $"{o.Model} ({model.LoadedWeights?.Tag ?? "random init"} weights) with a new {layout.ClassNames.Count}-class head; its preprocessing: " +
            $"{pre.ChannelOrder} × {pre.ValueRange:0}, mean {string.Join("/", pre.Mean.Select(m => m.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture)))}, std {string.Join("/", pre.Std.Select(s => s.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture)))}"));
        model.to(device);
        double decode = MeasureDecode(layout.Samples, pre);

        // Resolution: the images' own size rounded up the ladder, at least 64 px (ImageNet features need some size), at most the weights' crop size.
        int preferred = o.ImageSize > 0 ? o.ImageSize : Math.Min(pre.CropSize, Ladder.First(r => r >= Math.Min(Math.Max(layout.MedianSide, 64), Ladder[^1])));
        double budget = o.TimeBudgetSeconds;
        double Left() => budget - clock.Elapsed.TotalSeconds - 15; // 15 s: model load, checkpoint writing, report plots
        double forward = MeasureForward(model, preferred, device);
        double F(int res) => forward * res * res / (preferred * (double)preferred);
        double Probe(int res) => (nTrain + nVal + nTest) * (F(res) + decode) * 1.15; // one pass for the cache + evaluation
        int size = preferred;
        if (o.ImageSize <= 0)
            while (size > Ladder[0] && Probe(size) > 0.6 * Left()) size = Ladder.Last(r => r < size);
        string sizeWhy = o.ImageSize > 0 ? "--image-size" :
            size == preferred ? (preferred == pre.CropSize && layout.MedianSide >= pre.CropSize ? $"the weights' crop size ({pre.CropSize}px)" :
                                 layout.MedianSide < 64 ? $"small images (median {layout.MedianSide}px) upsampled to 64px, where pretrained features work better than at their own size" : $"the images' own size (median {layout.MedianSide}px), rounded up")
            : $"lowered from {preferred}px so one pass over the data fits 60 % of the {o.TimeBudgetSeconds}s budget";
        choices.Add(("resolution", $"{size}×{size}: {sizeWhy}; {1 / (F(size) + decode):F0} images/s measured for decoding + a forward pass"));

        // Batch size from memory: training activations of a ResNet-18-sized net take about 12 MB per 224-px image (fp32).
        long available = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        double perImage = 12e6 * size * size / (224.0 * 224) * Math.Max(1, model.parameters().Sum(p => p.numel()) / 11.7e6);
        int fromMemory = (int)Math.Min(256, available * 0.25 / perImage);
        int cap = size <= 64 ? 128 : 64;
        int batch = BatchSize(fromMemory, cap, nTrain);
        choices.Add(("batch size", $"{batch}: a quarter of the {available / 1e9:F0} GB available allows {fromMemory} images of {size}px in training, capped at {cap}, " +
            $"and at most 1/{MinStepsPerEpoch} of the {nTrain:N0} training images so an epoch has at least {MinStepsPerEpoch} steps (~{Math.Max(1, nTrain / batch)} now), but never below {MinBatch}"));

        // Mode and epochs: fine-tune when a few unfrozen epochs fit, else a linear probe on cached features.
        double trainEpoch = nTrain * (3 * F(size) + decode) + nVal * (F(size) + decode);
        double afterProbe = Left() - Probe(size);
        int ftEpochs = (int)Math.Floor(afterProbe * 0.8 / trainEpoch);
        int maxEpochs = nTrain < 1000 ? 10 : nTrain < 10000 ? 5 : 3;
        string mode = o.Mode ?? (ftEpochs >= 2 ? "fine-tune-fastai" : "linear-probe");
        int steps = Math.Max(1, nTrain / batch);
        var recipe = new Recipe
        {
            Name = "quickstart-images",
            Description = $"zoo quickstart images {o.Path}",
            Device = o.Device, Seed = o.Seed, Output = o.Output,
            Model = new ModelSection { Name = o.Model, Weights = "default" },
            Data = new DataSection
            {
                Source = layout.Source, Path = layout.Train, ValPath = layout.Val, TestPath = layout.Test, Image = o.ImageColumn, Label = o.LabelColumn,
                ValSplit = valFraction, Limit = o.Limit, ImageSize = size, BatchSize = batch, Workers = o.Workers,
            },
            Train = new TrainSection { Metrics = ["accuracy", "macro_f1"] },
        };
        if (mode == "fine-tune-fastai")
        {
            int epochs = Math.Clamp(ftEpochs, 1, maxEpochs);
            recipe.Train.Mode = mode;
            recipe.Train.FreezeEpochs = 1;
            recipe.Train.Epochs = epochs;
            recipe.Train.Lr = 2e-3;
            recipe.Train.LrSpread = 100;
            recipe.Train.WeightDecay = 0.01;
            recipe.Train.FeatureCache = "on";
            choices.Add(("training", $"fastai fine_tune: 1 epoch of the new head on cached features, then {epochs} epoch(s) of the whole network (AdamW, one-cycle, " +
                $"discriminative rates slice(1e-5, 1e-3)). Why: {nTrain:N0} training images are few enough that {ftEpochs} unfrozen epoch(s) fit the budget " +
                $"(~{trainEpoch:F0}s each measured); capped at {maxEpochs} for this dataset size" + (o.Mode is not null ? " (--mode)" : "")));
        }
        else
        {
            int epochs = ProbeEpochs(steps, afterProbe, model.parameters().Sum(p => p.NumberOfElements * p.ElementSize), out string epochsWhy);
            recipe.Train.Mode = "linear-probe";
            recipe.Train.Epochs = epochs;
            recipe.Train.Lr = 3e-3;
            recipe.Train.WeightDecay = 1e-4;
            recipe.Train.Warmup = 0.1;
            recipe.Train.FeatureCache = "on";
            choices.Add(("training", $"linear probe: frozen backbone, features computed once and cached, the new head trained {epochs} epochs (~{epochs * steps} steps, {epochsWhy}; AdamW lr 3e-3, one-cycle). " +
                (o.Mode is not null ? "Chosen with --mode." : $"Why: fine-tuning {nTrain:N0} images at {size}px takes ~{trainEpoch:F0}s per epoch (measured), so fewer than two epochs fit the {o.TimeBudgetSeconds}s budget; raise --budget to fine-tune.")));
        }
        recipe.Train.ClassWeights = ClassWeighting(o.ClassWeights, layout.ClassCounts, out var weightsWhy);
        choices.Add(("loss", weightsWhy));
        choices.Add(("budget", $"{o.TimeBudgetSeconds}s wall time (--budget); training stops early if it would overrun, the run still evaluates and reports"));
        // The runner's clock starts after planning: its training budget is what is left, less the final evaluation and the report.
        recipe.Train.TimeBudgetSeconds = Math.Max(1, (int)(budget - clock.Elapsed.TotalSeconds - 10 - (nVal + nTest) * (F(size) + decode)));
        model.to(CPU);
        return (recipe, choices);
    }

    /// <summary>
    /// Head epochs of a linear probe on cached features: about 200 steps (5–20 epochs) at least, and where the budget
    /// left after the feature pass allows, up to 1,000 steps (at most 50 epochs) in half of that time. An epoch on cached
    /// features costs its head steps (~2 ms each) and the best.ckpt and last.ckpt writes (the whole model, ~200 MB/s),
    /// so a budget that fits the feature pass with room to spare is not left unused while the head is still learning.
    /// </summary>
    internal static int ProbeEpochs(int stepsPerEpoch, double secondsLeft, long weightBytes, out string why)
    {
        int least = Math.Clamp((int)Math.Ceiling(200.0 / stepsPerEpoch), 5, 20);
        double epochSeconds = 2.0 * weightBytes / 200e6 + stepsPerEpoch * 0.002;
        int fit = (int)Math.Floor(Math.Max(0, secondsLeft) * 0.5 / epochSeconds);
        int most = Math.Clamp((int)Math.Ceiling(1000.0 / stepsPerEpoch), least, 50);
        int epochs = Math.Clamp(fit, least, most);
        why = epochs > least
            ? $"~{epochSeconds:F1}s per epoch on cached features, so {epochs} fit half of the ~{Math.Max(0, secondsLeft):F0}s left after the feature pass (at least ~200 steps, at most ~1,000 or 50 epochs)"
            : $"about 200 steps and 5–20 epochs{(most > least ? $"; more would not fit half of the ~{Math.Max(0, secondsLeft):F0}s left after the feature pass" : "")}";
        return epochs;
    }

    /// <summary>Class-size ratio (largest : smallest) from which the loss is class-balanced unless <c>--class-weights</c> says otherwise.</summary>
    public const int BalancedLossRatio = 4;

    /// <summary>
    /// The loss's class weights: <paramref name="requested"/> when given, else <c>balanced</c> when the largest class
    /// has <see cref="BalancedLossRatio"/> times the items of the smallest (or more), where a plain loss would let the
    /// common classes outvote the rare ones; <paramref name="why"/> says which and why.
    /// </summary>
    internal static string ClassWeighting(string? requested, IReadOnlyList<int> counts, out string why)
    {
        var present = counts.Where(c => c > 0).ToList();
        double ratio = present.Count == 0 ? 1 : present.Max() / (double)present.Min();
        string sizes = $"class sizes {present.Min():N0}–{present.Max():N0} ({ratio:0.#}:1)";
        string choice = requested ?? (ratio >= BalancedLossRatio ? "balanced" : "none");
        why = choice == "balanced"
            ? $"class-balanced cross-entropy (each class weighted N/(K·n_class)): {sizes}{(requested is null ? $", at least {BalancedLossRatio}:1" : ", --class-weights")}"
            : $"cross-entropy{(requested is null ? $": {sizes}, under {BalancedLossRatio}:1, so no class weights" : $" without class weights (--class-weights none; {sizes})")}";
        return choice;
    }

    /// <summary>Fewest optimizer steps per epoch the batch size allows (on small data sets, a few large batches per epoch leave fine-tuning short of steps).</summary>
    internal const int MinStepsPerEpoch = 32;

    /// <summary>Smallest batch (batch-norm statistics and per-step overhead), even if that gives fewer steps per epoch.</summary>
    internal const int MinBatch = 16;

    /// <summary>
    /// The training batch: a power of two no larger than what memory allows (<paramref name="fromMemory"/>), the
    /// resolution's <paramref name="cap"/>, and 1/<see cref="MinStepsPerEpoch"/> of the training set; at least <see cref="MinBatch"/>.
    /// </summary>
    internal static int BatchSize(int fromMemory, int cap, int nTrain) =>
        1 << (int)Math.Floor(Math.Log2(Math.Max(MinBatch, Math.Min(Math.Min(fromMemory, cap), nTrain / (double)MinStepsPerEpoch))));

    /// <summary>Seconds per image to decode and prepare (median of the sampled images).</summary>
    private static double MeasureDecode(IReadOnlyList<ImageSource> samples, Preprocessing pre)
    {
        var pipeline = VisionTransforms.Eval(pre);
        var times = new List<double>();
        foreach (var s in samples.Take(8))
        {
            var sw = Stopwatch.StartNew();
            _ = pipeline.Apply(new ImageSample(s, 0), new Random(0));
            times.Add(sw.Elapsed.TotalSeconds);
        }
        times.Sort();
        return times.Count == 0 ? 0.005 : times[times.Count / 2];
    }

    /// <summary>Seconds per image of an eval-mode forward pass at <paramref name="size"/> (batches of 16, best of three after a warm-up).</summary>
    private static double MeasureForward(ZooModel model, int size, Device device)
    {
        model.eval();
        double best = double.MaxValue;
        using (no_grad())
        {
            for (int i = 0; i < 4; i++)
            {
                using var scope = NewDisposeScope();
                var x = randn([16, 3, size, size], device: device);
                var sw = Stopwatch.StartNew();
                model.call(x).cpu();
                if (i > 0) best = Math.Min(best, sw.Elapsed.TotalSeconds / 16);
            }
        }
        return best;
    }
}
