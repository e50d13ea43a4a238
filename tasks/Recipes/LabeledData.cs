using ModelZoo.Data;
using ModelZoo.Tasks.Reports;
using ModelZoo.Tasks.Vision;
using ModelZoo.Tokenizers;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tasks.Recipes;

/// <summary>How items become model inputs: fixed for a trained model, so training and evaluation prepare data alike.</summary>
internal sealed record InputPlan(string Task, string Model, int InChans, int ImageSize, Preprocessing? Preprocessing, int MaxLength, int TailTokens = 0, int BagTokens = 0)
{
    /// <summary>The plan stored in a checkpoint's spec.</summary>
    public static InputPlan From(TrainedModelSpec spec) => new(spec.Task, spec.Model, spec.InChans, spec.ImageSize, spec.Preprocessing, spec.MaxLength, spec.TailTokens, spec.BagTokens);

    /// <summary>Most tokens of one text the model takes: the token bag's length when it has one, else <see cref="MaxLength"/>.</summary>
    public int TokenLength => BagTokens > 0 ? BagTokens : MaxLength > 0 ? MaxLength : 128;

    /// <summary>
    /// Token ids of a text: its first <see cref="TokenLength"/> tokens (the encoder cuts its own window from them when a
    /// token bag reads more), or head+tail truncation to <see cref="MaxLength"/> when <see cref="TailTokens"/> is set.
    /// </summary>
    public int[] TokenIds(TextTokenizer tokenizer, string text) => tokenizer.EncodeHeadTail(text, TokenLength, BagTokens > 0 ? 0 : TailTokens).Ids;

    /// <summary>Mean and std scaled to [0,1] pixels (what <see cref="TensorDataLoader"/> takes), averaged to one channel when the model takes one.</summary>
    public (float[] Mean, float[] Std) UnitStats()
    {
        var p = Preprocessing ?? ModelZoo.Preprocessing.ImageNet;
        var mean = p.Mean.Select(m => m / p.ValueRange).ToArray();
        var std = p.Std.Select(s => s / p.ValueRange).ToArray();
        return InChans == 1 ? ([mean.Average()], [std.Average()]) : (mean, std);
    }

    /// <summary>The evaluation pipeline for image files.</summary>
    public VisionPipeline EvalPipeline()
    {
        var p = Preprocessing ?? ModelZoo.Preprocessing.ImageNet;
        var eval = VisionTransforms.Eval(p);
        return InChans == 1 ? new VisionPipeline(eval.Steps, Grayscale(p)) : eval;
    }

    internal static Normalize Grayscale(Preprocessing p) =>
        new([p.Mean.Average()], [p.Std.Average()], p.ValueRange, p.ChannelOrder, Grayscale: true);
}

/// <summary>A labelled data source addressed by index, from which the runner cuts train/validation/test loaders.</summary>
internal abstract class LabeledData : IDisposable
{
    public abstract IReadOnlyList<string> ClassNames { get; }

    public abstract int Count { get; }

    public abstract string Source { get; }

    public abstract int LabelOf(int index);

    /// <summary>Batches over <paramref name="indices"/> (re-enumerable; each enumeration is one epoch). Batch indices are positions in <paramref name="indices"/>.</summary>
    public abstract IEnumerable<Batch> Loader(int[] indices, bool train, int batchSize, int seed, IReadOnlyList<string> augment);

    /// <summary>A name for item <paramref name="index"/> (file path or row).</summary>
    public abstract string Describe(int index);

    /// <summary>A small picture of the item, for image sources.</summary>
    public virtual ReportImage? Thumbnail(int index) => null;

    /// <summary>The item's text, for text sources.</summary>
    public virtual string? Text(int index) => null;

    public virtual void Dispose() { }

    /// <summary>Items the loaders of this source could not read and skipped (corrupt files), each once.</summary>
    public virtual IReadOnlyList<SkippedItem> SkippedItems => [];

    /// <summary>Augmentations an in-memory tensor source can apply on whole batches.</summary>
    protected static IEnumerable<Batch> AugmentBatches(IEnumerable<Batch> batches, IReadOnlyList<string> augment, int numClasses, int seed, int epoch)
    {
        var rng = new Random(Seeds.Combine(seed, epoch, 0x5eed));
        bool flip = augment.Contains("hflip"), vflip = augment.Contains("vflip");
        bool shift = augment.Contains("pad-crop"), erase = augment.Contains("random-erasing");
        bool mixup = augment.Contains("mixup"), cutmix = augment.Contains("cutmix");
        var mix = mixup || cutmix ? new MixupCutMix(numClasses, MixupAlpha: mixup ? 0.2 : 0, CutMixAlpha: cutmix ? 1.0 : 0) : null;
        foreach (var b in batches)
        {
            var cur = b;
            if (shift) cur = Replace(cur, BatchAugment.RandomShift(cur.Input, Data.RandomShift.ForSize((int)cur.Input.shape[3]).Padding, rng), b);
            if (flip) cur = Replace(cur, FlipHalf(cur, rng, 3), b);
            if (vflip) cur = Replace(cur, FlipHalf(cur, rng, 2), b);
            if (erase) cur = Replace(cur, BatchAugment.RandomErasing(cur.Input, Erasing, rng), b);
            if (mix is not null)
            {
                var mixed = mix.Apply(cur, rng);
                if (!ReferenceEquals(mixed, cur)) cur.Dispose();
                cur = mixed;
            }
            yield return cur;
            if (!ReferenceEquals(cur, b)) cur.Dispose();
        }
    }

    /// <summary>Random erasing as both image paths apply it (a quarter of the items get one erased rectangle).</summary>
    internal static readonly RandomErasing Erasing = new(0.25);

    /// <summary>A batch with new <paramref name="input"/>; the intermediate <paramref name="cur"/> is disposed unless it is the loader's own <paramref name="original"/>.</summary>
    private static Batch Replace(Batch cur, Tensor input, Batch original)
    {
        var next = new Batch(input, cur.Target.clone(), cur.Indices) { Mask = cur.Mask?.clone() };
        if (!ReferenceEquals(cur, original)) cur.Dispose();
        return next;
    }

    private static Batch Replace(Batch cur, Batch next, Batch original)
    {
        if (!ReferenceEquals(cur, original)) cur.Dispose();
        return next;
    }

    private static Batch FlipHalf(Batch b, Random rng, long dim)
    {
        var mask = new bool[b.Count];
        for (int i = 0; i < mask.Length; i++) mask[i] = rng.Next(2) == 1;
        Tensor flipped;
        using (NewDisposeScope())
        {
            var m = tensor(mask).view(-1, 1, 1, 1).to(b.Input.device);
            flipped = where(m, b.Input.flip(dim), b.Input).MoveToOuterDisposeScope();
        }
        return new Batch(flipped, b.Target.clone(), b.Indices) { Mask = b.Mask?.clone() };
    }
}

/// <summary>Fashion-MNIST (or any IDX pair) held in memory as uint8 tensors and fed through <see cref="TensorDataLoader"/>.</summary>
internal sealed class TensorImageData(IdxDataset data, InputPlan plan) : LabeledData
{
    private readonly (Tensor X, Tensor Y) _t = data.ToTensors();

    public static readonly string[] SupportedAugment = ["hflip", "vflip", "pad-crop", "random-erasing", "mixup", "cutmix"];

    public override IReadOnlyList<string> ClassNames => data.ClassNames;
    public override int Count => data.Count;
    public override string Source => data.Source;
    public override int LabelOf(int index) => data.LabelOf(index);
    public override string Describe(int index) => $"{Path.GetFileName(data.Source.TrimEnd('/'))} #{index}";

    public override IEnumerable<Batch> Loader(int[] indices, bool train, int batchSize, int seed, IReadOnlyList<string> augment)
    {
        var bad = augment.Where(a => !SupportedAugment.Contains(a)).ToList();
        if (train && bad.Count > 0)
            throw new RecipeException($"data.augment: {string.Join(", ", bad)} cannot be applied to the in-memory fashion-mnist source; use {string.Join(", ", SupportedAugment)} " +
                "(or export the images to a folder and use data.source=image-folder).");
        var idx = tensor(indices.Select(i => (long)i).ToArray());
        var x = _t.X.index_select(0, idx);
        var y = _t.Y.index_select(0, idx);
        idx.Dispose();
        var (mean, std) = plan.UnitStats();
        int resize = plan.ImageSize == data.Height ? 0 : plan.ImageSize;
        var loader = new TensorDataLoader(x, y, batchSize, shuffle: train, seed: seed, dropLast: train && indices.Length > batchSize, resize: resize,
            channels: plan.InChans == 1 ? 1 : 3, mean: mean, std: std, takeOwnership: true);
        _loaders.Add(loader);
        if (!train || augment.Count == 0) return loader;
        return new EpochAugmented(loader, augment, ClassNames.Count, seed);
    }

    private readonly List<TensorDataLoader> _loaders = [];

    internal sealed class EpochAugmented(TensorDataLoader loader, IReadOnlyList<string> augment, int classes, int seed) : IEnumerable<Batch>
    {
        public TensorDataLoader Loader => loader;

        public IEnumerator<Batch> GetEnumerator() => AugmentBatches(loader, augment, classes, seed, loader.Epoch).GetEnumerator();
        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }

    public override ReportImage? Thumbnail(int index)
    {
        var img = data.Image(index);
        return new ReportImage(img.Width, img.Height, img.Pixels);
    }

    public override void Dispose()
    {
        foreach (var l in _loaders) l.Dispose();
        _t.X.Dispose();
        _t.Y.Dispose();
    }
}

/// <summary>Image files (folder, CSV, Parquet) decoded and transformed by the weights' preprocessing.</summary>
internal sealed class FileImageData(IDataset<ImageSample> data, InputPlan plan, int workers) : LabeledData
{
    public override IReadOnlyList<string> ClassNames => data.ClassNames;
    public override int Count => data.Count;
    public override string Source => data.Source;
    public override int LabelOf(int index) => data.LabelOf(index);
    public override string Describe(int index) => data.Describe(index);

    public override IEnumerable<Batch> Loader(int[] indices, bool train, int batchSize, int seed, IReadOnlyList<string> augment)
    {
        var pipeline = train && augment.Count > 0 ? TrainPipeline(augment) : plan.EvalPipeline();
        var set = data.Subset(indices).Map(pipeline);
        IBatchTransform? mix = null;
        if (train && (augment.Contains("mixup") || augment.Contains("cutmix")))
            mix = new MixupCutMix(ClassNames.Count, MixupAlpha: augment.Contains("mixup") ? 0.2 : 0, CutMixAlpha: augment.Contains("cutmix") ? 1.0 : 0);
        var loader = new DataLoader(set, new DataLoaderOptions
        {
            BatchSize = batchSize, Shuffle = train, Seed = seed, Workers = workers, DropLast = train && indices.Length > batchSize, BatchTransform = mix,
        });
        lock (_loaders) _loaders.Add(loader);
        return loader;
    }

    private readonly List<DataLoader> _loaders = [];

    public override IReadOnlyList<SkippedItem> SkippedItems
    {
        get
        {
            lock (_loaders)
                return _loaders.SelectMany(l => l.Skipped).DistinctBy(s => s.Item).ToList();
        }
    }

    private VisionPipeline TrainPipeline(IReadOnlyList<string> augment)
    {
        var p = plan.Preprocessing ?? Preprocessing.ImageNet;
        var steps = new List<IImageTransform>();
        if (augment.Contains("random-resized-crop")) steps.Add(new RandomResizedCrop(p.CropSize, null, null, p.Interpolation));
        else if (augment.Contains("random-crop")) steps.Add(new RandomResizedCrop(p.CropSize, (0.64, 1.0), (1.0, 1.0), p.Interpolation));
        else steps.AddRange(plan.EvalPipeline().Steps);
        if (augment.Contains("hflip")) steps.Add(new RandomHorizontalFlip());
        if (augment.Contains("vflip")) steps.Add(Augment.VerticalFlip());
        if (augment.Contains("color-jitter")) steps.Add(Augment.ColorJitter());
        if (augment.Contains("trivial-augment")) steps.Add(Augment.TrivialAugment());
        if (augment.Contains("rand-augment")) steps.Add(Augment.RandAugment());
        var tensorSteps = new List<ITransform<ImageTensor, ImageTensor>>();
        if (augment.Contains("pad-crop")) tensorSteps.Add(RandomShift.ForSize(p.CropSize));
        if (augment.Contains("random-erasing")) tensorSteps.Add(Erasing);
        var normalize = plan.InChans == 1 ? InputPlan.Grayscale(p) : Normalize.From(p);
        return new VisionPipeline(steps, normalize, tensorSteps);
    }

    public override ReportImage? Thumbnail(int index)
    {
        try
        {
            var img = ImageDecoder.Decode(data[index].Source);
            img = new Resize(96).Apply(img, new Random(0));
            img = new CenterCrop(Math.Min(96, img.Height), Math.Min(96, img.Width)).Apply(img, new Random(0));
            return new ReportImage(img.Width, img.Height, img.Pixels);
        }
        catch (Exception e) when (e is IOException or InvalidDataException or NotSupportedException)
        {
            return null;
        }
    }
}

/// <summary>Labelled texts tokenized with the model's tokenizer.</summary>
internal sealed class TextData(TextDataset data, TextTokenizer tokenizer, InputPlan plan, int workers) : LabeledData
{
    public override IReadOnlyList<string> ClassNames => data.ClassNames;
    public override int Count => data.Count;
    public override string Source => data.Source;
    public override int LabelOf(int index) => data.LabelOf(index);
    public override string Describe(int index) => data.Describe(index);
    public override string? Text(int index) => data[index].Text;

    public override IReadOnlyList<SkippedItem> SkippedItems => data.EmptyTextsSkipped.Select(r => new SkippedItem(-1, r, "empty text")).ToList();

    public override IEnumerable<Batch> Loader(int[] indices, bool train, int batchSize, int seed, IReadOnlyList<string> augment)
    {
        if (train && augment.Count > 0)
            throw new RecipeException($"data.augment: {string.Join(", ", augment)} are image augmentations; a text recipe takes none (remove data.augment).");
        return TextBatching.Loader(data.Subset(indices), s => plan.TokenIds(tokenizer, s), tokenizer.PadTokenId, batchSize, shuffle: train, seed: seed,
            maxLength: plan.TokenLength, bucketByLength: train, workers: workers);
    }
}

/// <summary>Opens the recipe's data sources.</summary>
internal static class DataSources
{
    public static bool IsText(string source) => source.StartsWith("text-", StringComparison.Ordinal) || source == "spam-assassin";

    /// <summary>Guesses the source kind of <paramref name="path"/> for <c>zoo eval</c>.</summary>
    public static string Guess(string path, string task)
    {
        if (Directory.Exists(path))
            return FashionMnistSource.Files.Any(f => File.Exists(Path.Combine(path, f)) || File.Exists(Path.Combine(path, f[..^3]))) ? "fashion-mnist"
                : task == "nlp" ? "spam-assassin" : "image-folder";
        var ext = Path.GetExtension(path).ToLowerInvariant();
        return (ext, task) switch
        {
            (".csv", "nlp") => "text-csv",
            (".csv", _) => "image-csv",
            (".jsonl", _) => "text-jsonl",
            (".parquet", "nlp") => "text-parquet",
            (".parquet", _) => "parquet-images",
            _ => throw new RecipeException($"Cannot tell what kind of data '{path}' is; pass --source with one of {string.Join(", ", RecipeLoader.DataSources)}."),
        };
    }

    /// <summary>Opens <paramref name="source"/> at <paramref name="path"/>; <paramref name="testSplit"/> picks the source's own test part (fashion-mnist).</summary>
    public static LabeledData Open(string source, string? path, bool testSplit, InputPlan plan, DataSection d, TextWriter log)
    {
        if (IsText(source) != (plan.Task == "nlp"))
            throw new RecipeException($"data.source '{source}' is {(IsText(source) ? "text" : "image")} data but model '{plan.Model}' is a {(plan.Task == "nlp" ? "text" : "vision")} model; " +
                $"pick a {(plan.Task == "nlp" ? "text-csv, text-jsonl, text-parquet or spam-assassin" : "fashion-mnist, image-folder, image-csv or parquet-images")} source or another model.");
        string Need() => path ?? throw new RecipeException($"data.source '{source}' needs data.path (e.g. --set data.path=/data/pets/).");
        void Exists(string p)
        {
            if (!File.Exists(p) && !Directory.Exists(p) && !p.Contains('*'))
                throw new RecipeException($"data.path '{p}' does not exist; point data.path (or --data) at the {source} data.");
        }
        switch (source)
        {
            case "fashion-mnist":
            {
                var folder = path is null ? FashionMnistSource.Ensure(null, log) : path;
                if (path is not null) Exists(folder);
                var (train, test) = FashionMnist.Load(folder);
                return new TensorImageData(testSplit ? test : train, plan);
            }
            case "image-folder":
                Exists(Need());
                return new FileImageData(ImageFolder.Open(Need()), plan, d.Workers);
            case "image-csv":
                Exists(Need());
                return new FileImageData(ImageCsv.Open(Need(), pathColumn: d.Image ?? "path", labelColumn: d.Label), plan, d.Workers);
            case "parquet-images":
                return new FileImageData(ParquetImages.Open(Need(), imageColumn: d.Image ?? "image", labelColumn: d.Label), plan, d.Workers);
            case "text-csv":
                Exists(Need());
                return new TextData(TextDataset.FromCsv(Need(), d.Text, d.Label), Zoo.Tokenizer(plan.Model), plan, d.Workers);
            case "text-jsonl":
                Exists(Need());
                return new TextData(TextDataset.FromJsonl(Need(), d.Text, d.Label), Zoo.Tokenizer(plan.Model), plan, d.Workers);
            case "text-parquet":
                return new TextData(TextDataset.FromParquet(Need(), d.Text, d.Label), Zoo.Tokenizer(plan.Model), plan, d.Workers);
            case "spam-assassin":
                if (path is not null) Exists(path);
                return new TextData(SpamAssassin.Load(path), Zoo.Tokenizer(plan.Model), plan, d.Workers);
            default:
                throw new RecipeException($"data.source '{source}' is unknown; allowed: {string.Join(", ", RecipeLoader.DataSources)}.");
        }
    }

    /// <summary>Whether the source has its own test split.</summary>
    public static bool HasOwnTest(string source) => source == "fashion-mnist";

    /// <summary>A class-balanced sample of <paramref name="n"/> from <paramref name="indices"/>.</summary>
    public static int[] StratifiedSample(int[] indices, Func<int, int> label, int n, int seed)
    {
        if (n <= 0 || n >= indices.Length) return indices;
        var (_, keep) = StratifiedSplit(indices, label, n / (double)indices.Length, seed);
        return keep;
    }

    /// <summary>Stratified split: each class gives round(fraction × count) items to the second part (at least one when it has two).</summary>
    public static (int[] Kept, int[] Part) StratifiedSplit(int[] indices, Func<int, int> label, double fraction, int seed)
    {
        var rng = new Random(seed);
        var rest = new List<int>();
        var part = new List<int>();
        foreach (var g in indices.GroupBy(label).OrderBy(g => g.Key))
        {
            var idx = g.ToArray();
            rng.Shuffle(idx);
            int n = (int)Math.Round(fraction * idx.Length, MidpointRounding.AwayFromZero);
            if (n == 0 && idx.Length >= 2 && fraction > 0) n = 1;
            if (n == idx.Length && idx.Length >= 2) n = idx.Length - 1;
            part.AddRange(idx.Take(n));
            rest.AddRange(idx.Skip(n));
        }
        rest.Sort();
        part.Sort();
        return ([.. rest], [.. part]);
    }
}
