using ModelZoo.Data;
using ModelZoo.FineTune;
using ModelZoo.Tasks.Reports;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tasks.Recipes;

/// <summary>One predicted class with its probability.</summary>
/// <param name="Label">Class name.</param>
/// <param name="Index">Class index.</param>
/// <param name="Probability">Softmax probability.</param>
public sealed record ClassScore(string Label, int Index, double Probability);

/// <summary>The top classes for one input.</summary>
/// <param name="Input">The file or text that was classified.</param>
/// <param name="Top">Classes by falling probability.</param>
public sealed record Prediction(string Input, IReadOnlyList<ClassScore> Top);

/// <summary>What <see cref="CheckpointTools.Evaluate"/> measured and wrote.</summary>
/// <param name="Accuracy">Accuracy.</param>
/// <param name="MacroF1">Macro-averaged F1.</param>
/// <param name="Loss">Mean cross-entropy.</param>
/// <param name="Count">Items evaluated.</param>
/// <param name="ReportFolder">Folder holding report.md, report.html and the plots.</param>
public sealed record EvalResult(double Accuracy, double MacroF1, double Loss, int Count, string ReportFolder);

/// <summary><c>zoo eval</c>, <c>zoo predict</c> and <c>zoo export</c> on checkpoints written by recipes and quickstarts.</summary>
public static class CheckpointTools
{
    /// <summary>Evaluates <paramref name="checkpoint"/> on all of <paramref name="dataPath"/> (the test split for Fashion-MNIST) and writes a report.</summary>
    /// <param name="checkpoint">A <c>.ckpt</c> file or a run folder.</param>
    /// <param name="dataPath">Data to evaluate (folder, CSV, JSONL, Parquet, IDX folder).</param>
    /// <param name="source">Source kind (see <see cref="RecipeLoader.DataSources"/>); null to guess from the path.</param>
    /// <param name="output">Report folder; null for <c>eval-&lt;data name&gt;</c> next to the checkpoint.</param>
    /// <param name="log">Progress messages.</param>
    /// <param name="textColumn">Text column for text tables.</param>
    /// <param name="labelColumn">Label column for tables.</param>
    /// <param name="batchSize">Items per batch.</param>
    public static EvalResult Evaluate(string checkpoint, string dataPath, string? source, string? output, TextWriter log,
        string textColumn = "text", string labelColumn = "label", int batchSize = 64)
    {
        var device = DeviceSelector.Resolve("auto").Device;
        var trained = TrainedModel.Load(checkpoint, device);
        var spec = trained.Spec;
        var plan = InputPlan.From(spec);
        source ??= DataSources.Guess(dataPath, spec.Task);
        if (!RecipeLoader.DataSources.Contains(source))
            throw new RecipeException($"--source '{source}' is unknown; use one of {string.Join(", ", RecipeLoader.DataSources)}.");
        var section = new DataSection { Source = source, Path = dataPath, Text = textColumn, Label = labelColumn };
        using var data = DataSources.Open(source, dataPath, testSplit: true, plan, section, log);
        var classMap = MapClasses(data.ClassNames, spec.ClassNames, dataPath, trained.Path);
        var indices = Enumerable.Range(0, data.Count).ToArray();
        var loader = data.Loader(indices, train: false, batchSize, 0, []);
        using var learner = new Learner(trained.Model, Array.Empty<Batch>(), null, Loss.CrossEntropy(), [Metric.Accuracy()], new LearnerOptions { Device = device, Output = log, Quiet = true, Seed = null });
        var ev = learner.Evaluate(Remap(loader, classMap));
        var folder = output ?? Path.Combine(Path.GetDirectoryName(Path.GetFullPath(trained.Path))!, "eval-" + SafeName(dataPath));
        var relabeled = new RelabeledData(data, spec.ClassNames, classMap);
        var summary = RecipeRunner.Summarize("evaluation", ev, relabeled, indices);
        RunReport.Write(folder, $"Evaluation of {Path.GetFileName(trained.Path)} on {dataPath}",
            [("checkpoint", Path.GetFullPath(trained.Path)), ("model", spec.Model), ("data", $"{source}: {data.Source}, {data.Count:N0} items"),
             ("device", device.ToString())], null, [summary]);
        log.WriteLine($"accuracy {ev.Accuracy * 100:F2}% on {ev.Count:N0} items (macro-F1 {ev.MacroF1:F4}, loss {ev.Loss:F4}); report: {Path.Combine(folder, "report.md")}");
        return new EvalResult(ev.Accuracy, ev.MacroF1, ev.Loss, ev.Count, folder);
    }

    /// <summary>Classifies image files (vision checkpoints) or texts (text checkpoints) and returns the top <paramref name="topK"/> classes of each.</summary>
    public static IReadOnlyList<Prediction> Predict(string checkpoint, IReadOnlyList<string> inputs, int topK = 3, bool inputsAreTexts = false)
    {
        if (inputs.Count == 0) throw new ArgumentException("Nothing to predict: give image files (or --text \"…\" for a text model).");
        var device = DeviceSelector.Resolve("auto").Device;
        var trained = TrainedModel.Load(checkpoint, device);
        var spec = trained.Spec;
        if (inputsAreTexts != (spec.Task == "nlp"))
            throw new ArgumentException(spec.Task == "nlp"
                ? $"{checkpoint} is a text classifier ({spec.Model}); pass texts with --text \"…\" instead of files."
                : $"{checkpoint} is an image classifier ({spec.Model}); pass image files, not --text.");
        topK = Math.Clamp(topK, 1, spec.ClassNames.Count);
        var results = new List<Prediction>();
        var plan = InputPlan.From(spec);
        var tokenizer = spec.Task == "nlp" ? Zoo.Tokenizer(spec.Model) : null;
        var pipeline = spec.Task == "vision" ? plan.EvalPipeline() : null;
        using var noGrad = no_grad();
        foreach (var input in inputs)
        {
            using var scope = NewDisposeScope();
            Tensor x;
            if (tokenizer is not null)
            {
                var ids = spec.TokenIds(tokenizer, input);
                x = tensor(ids.Select(i => (long)i).ToArray()).unsqueeze(0);
            }
            else
            {
                if (!File.Exists(input)) throw new FileNotFoundException($"Image file '{input}' does not exist; pass paths of image files (jpg, png, webp, bmp, gif).", input);
                ImageTensor t;
                try
                {
                    t = pipeline!.Apply(new ImageSample(ImageSource.FromFile(input), 0), new Random(0));
                }
                catch (Exception e) when (e is InvalidDataException or NotSupportedException or ArgumentException)
                {
                    throw new InvalidDataException($"'{input}' could not be read as an image ({e.Message}); pass jpg, png, webp, bmp or gif files.", e);
                }
                x = tensor(t.Data, [1, t.Channels, t.Height, t.Width]);
            }
            var p = nn.functional.softmax(trained.Model.call(x.to(device)), 1).cpu()[0].data<float>().ToArray();
            var top = p.Select((v, i) => new ClassScore(spec.ClassNames[i], i, v)).OrderByDescending(c => c.Probability).Take(topK).ToList();
            results.Add(new Prediction(input, top));
        }
        return results;
    }

    /// <summary>Writes the checkpoint's model weights as a plain state dict (<c>safetensors</c> or <c>pth</c>) that PyTorch loads strictly into the same architecture.</summary>
    /// <returns>The path written.</returns>
    public static string Export(string checkpoint, string format, string? output = null)
    {
        format = format.Trim().TrimStart('.').ToLowerInvariant();
        if (format is not ("safetensors" or "pth"))
            throw new ArgumentException($"--format '{format}' is not supported; use safetensors or pth.");
        var trained = TrainedModel.Load(checkpoint);
        var path = output ?? Path.ChangeExtension(Path.GetFullPath(trained.Path), "." + format);
        if (!string.Equals(Path.GetExtension(path), "." + format, StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException($"--output '{path}' must end in .{format} for --format {format}.");
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null) Directory.CreateDirectory(dir);
        trained.Model.Save(path);
        File.WriteAllText(path + ".json", trained.Spec.ToJson());
        return path;
    }

    private static int[] MapClasses(IReadOnlyList<string> dataClasses, IReadOnlyList<string> modelClasses, string dataPath, string ckpt)
    {
        var map = new int[dataClasses.Count];
        for (int i = 0; i < dataClasses.Count; i++)
        {
            int j = modelClasses is List<string> l ? l.IndexOf(dataClasses[i]) : modelClasses.ToList().IndexOf(dataClasses[i]);
            if (j < 0)
                throw new RecipeException($"{dataPath} has class '{dataClasses[i]}', which {ckpt} was not trained on (its classes: {string.Join(", ", modelClasses.Take(20))}). " +
                    "Evaluate on data with the same class names.");
            map[i] = j;
        }
        return map;
    }

    private static IEnumerable<Batch> Remap(IEnumerable<Batch> batches, int[] map)
    {
        if (map.Select((m, i) => m == i).All(x => x)) return batches;
        return RemapIter(batches, map);
    }

    private static IEnumerable<Batch> RemapIter(IEnumerable<Batch> batches, int[] map)
    {
        using var lut = tensor(map.Select(m => (long)m).ToArray());
        foreach (var b in batches)
        {
            var mapped = new Batch(b.Input, lut.index_select(0, b.Target), b.Indices) { Mask = b.Mask };
            yield return mapped;
        }
    }

    private static string SafeName(string path)
    {
        var name = Path.GetFileNameWithoutExtension(Path.TrimEndingDirectorySeparator(Path.GetFullPath(path)));
        return string.Concat(name.Select(c => char.IsLetterOrDigit(c) || c is '-' or '_' ? c : '_'));
    }

    /// <summary>A data source whose labels are reported with the model's class names.</summary>
    private sealed class RelabeledData(LabeledData inner, IReadOnlyList<string> names, int[] map) : LabeledData
    {
        public override IReadOnlyList<string> ClassNames => names;
        public override int Count => inner.Count;
        public override string Source => inner.Source;
        public override int LabelOf(int index) => map[inner.LabelOf(index)];
        public override IEnumerable<Batch> Loader(int[] indices, bool train, int batchSize, int seed, IReadOnlyList<string> augment) => inner.Loader(indices, train, batchSize, seed, augment);
        public override string Describe(int index) => inner.Describe(index);
        public override ReportImage? Thumbnail(int index) => inner.Thumbnail(index);
        public override string? Text(int index) => inner.Text(index);
    }
}
