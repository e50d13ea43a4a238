namespace ModelZoo.Tasks.Recipes;

// A recipe is YAML bound to these records (snake_case keys: `batch_size`, `freeze_epochs`, …). Every field has a
// default, so a recipe states only what differs. RecipeLoader validates values and reports bad keys with their path.

/// <summary>A complete training recipe: model, data, training schedule, device, seed and output folder.</summary>
public sealed class Recipe
{
    /// <summary>Name of the run; the run folder is named after it.</summary>
    public string Name { get; set; } = "run";

    /// <summary>One line on what the recipe does.</summary>
    public string? Description { get; set; }

    /// <summary>Which model, which weights, which head and which edits.</summary>
    public ModelSection Model { get; set; } = new();

    /// <summary>Where the data comes from and how it is prepared.</summary>
    public DataSection Data { get; set; } = new();

    /// <summary>How to train.</summary>
    public TrainSection Train { get; set; } = new();

    /// <summary>How the final model is evaluated.</summary>
    public EvalSection Eval { get; set; } = new();

    /// <summary><c>auto</c>, <c>cpu</c>, <c>cuda</c> or <c>cuda:N</c>.</summary>
    public string Device { get; set; } = "auto";

    /// <summary>Seed for weights of new layers, shuffling, augmentation and splits.</summary>
    public int Seed { get; set; } = 42;

    /// <summary>Folder under which the run folder is created.</summary>
    public string Output { get; set; } = "runs";
}

/// <summary>The model part of a recipe.</summary>
public sealed class ModelSection
{
    /// <summary>Catalog name, e.g. <c>resnet18-cntk</c>.</summary>
    public string Name { get; set; } = "resnet18-cntk";

    /// <summary>Weight tag, file path or URL; <c>default</c> for the catalog's default tag, <c>none</c> for random init.</summary>
    public string Weights { get; set; } = "default";

    /// <summary>Input channels (1 for grayscale data fed without conversion, 3 otherwise).</summary>
    public int InChans { get; set; } = 3;

    /// <summary>Dropout before the new classifier (0 = none).</summary>
    public double HeadDropout { get; set; }

    /// <summary>Edits applied in order before the new head is sized and attached (so a head after removed stages fits the remaining width).</summary>
    public List<SurgeryStep> Surgery { get; set; } = [];
}

/// <summary>One surgery edit. Exactly one of <see cref="Replace"/>, <see cref="Remove"/>, <see cref="InsertAfter"/>, <see cref="InsertBefore"/> is set.</summary>
public sealed class SurgeryStep
{
    /// <summary>Path of a module to replace with <see cref="With"/>.</summary>
    public string? Replace { get; set; }

    /// <summary>Path of a module to remove.</summary>
    public string? Remove { get; set; }

    /// <summary>Path after which <see cref="With"/> is inserted under <see cref="Name"/>.</summary>
    public string? InsertAfter { get; set; }

    /// <summary>Path before which <see cref="With"/> is inserted under <see cref="Name"/>.</summary>
    public string? InsertBefore { get; set; }

    /// <summary>Name of an inserted module.</summary>
    public string? Name { get; set; }

    /// <summary>The new module, e.g. <c>identity</c>, <c>gelu</c>, <c>relu</c>, <c>dropout(0.2)</c>.</summary>
    public string? With { get; set; }
}

/// <summary>The data part of a recipe.</summary>
public sealed class DataSection
{
    /// <summary>Data source kind (see <see cref="RecipeLoader.DataSources"/>).</summary>
    public string Source { get; set; } = "fashion-mnist";

    /// <summary>Folder, file or glob the source reads; empty for sources with a known location.</summary>
    public string? Path { get; set; }

    /// <summary>Separate test set (same kind of source), evaluated once at the end; empty to use the source's own test split if it has one.</summary>
    public string? TestPath { get; set; }

    /// <summary>Separate validation set (same kind of source) used instead of holding out <see cref="ValSplit"/> of the training data.</summary>
    public string? ValPath { get; set; }

    /// <summary>Image column for table sources (empty: <c>path</c> for image-csv, <c>image</c> for parquet-images).</summary>
    public string? Image { get; set; }

    /// <summary>Text column for text sources.</summary>
    public string Text { get; set; } = "text";

    /// <summary>Label column for table sources.</summary>
    public string Label { get; set; } = "label";

    /// <summary>Fraction of the training data held out for validation (stratified).</summary>
    public double ValSplit { get; set; } = 0.1;

    /// <summary>Use at most this many training items (0 = all); a stratified sample keeps the class balance.</summary>
    public int Limit { get; set; }

    /// <summary>Image side fed to the model (0 = the weights' crop size).</summary>
    public int ImageSize { get; set; }

    /// <summary>Longest token sequence for text (truncation beyond).</summary>
    public int MaxLength { get; set; } = 128;

    /// <summary>Training augmentations, e.g. <c>hflip</c>, <c>pad-crop</c>, <c>random-erasing</c>, <c>random-resized-crop</c>, <c>trivial-augment</c>.</summary>
    public List<string> Augment { get; set; } = [];

    /// <summary>Mini-batch size (0 = a default by task and size: 128 for images up to 64 px, else 32; 32 for text).</summary>
    public int BatchSize { get; set; }

    /// <summary>Loader worker threads (0 = one per core).</summary>
    public int Workers { get; set; }
}

/// <summary>The training part of a recipe.</summary>
public sealed class TrainSection
{
    /// <summary><c>linear-probe</c>, <c>fine-tune</c> or <c>fine-tune-fastai</c> (freeze, train head, unfreeze).</summary>
    public string Mode { get; set; } = "fine-tune-fastai";

    /// <summary>Epochs of training (after the frozen epochs in fastai mode).</summary>
    public int Epochs { get; set; } = 3;

    /// <summary>Epochs with the backbone frozen (fastai mode).</summary>
    public int FreezeEpochs { get; set; } = 1;

    /// <summary>Peak learning rate (0 = run the LR finder and use its suggestion).</summary>
    public double Lr { get; set; } = 1e-3;

    /// <summary><c>adamw</c> or <c>sgd</c>.</summary>
    public string Optimizer { get; set; } = "adamw";

    /// <summary>Weight decay (not applied to norms and biases).</summary>
    public double WeightDecay { get; set; } = 0.01;

    /// <summary>SGD momentum.</summary>
    public double Momentum { get; set; } = 0.9;

    /// <summary><c>one-cycle</c>, <c>cosine</c>, <c>step</c>, <c>plateau</c> or <c>constant</c>.</summary>
    public string Schedule { get; set; } = "one-cycle";

    /// <summary>Warm-up fraction of the schedule.</summary>
    public double Warmup { get; set; } = 0.25;

    /// <summary>Label smoothing of the cross-entropy loss.</summary>
    public double LabelSmoothing { get; set; }

    /// <summary>
    /// Class weights of the loss: <c>none</c>, or <c>balanced</c> (scikit-learn's <c>class_weight="balanced"</c>: each
    /// class weighted by N/(K·nₖ) over the training items, so rare classes count as much as common ones).
    /// </summary>
    public string ClassWeights { get; set; } = "none";

    /// <summary>Per-group learning-rate ratio between the input end and the head (fastai's <c>slice(lr/100, lr)</c> is 100).</summary>
    public double LrSpread { get; set; } = 10;

    /// <summary>Clip gradients to this norm (0 = off).</summary>
    public double ClipGradNorm { get; set; }

    /// <summary>Train the head on cached backbone features when the backbone is frozen: <c>auto</c>, <c>on</c>, <c>off</c>.</summary>
    public string FeatureCache { get; set; } = "auto";

    /// <summary>Metrics to report: <c>accuracy</c>, <c>top5</c>, <c>macro_f1</c>.</summary>
    public List<string> Metrics { get; set; } = ["accuracy"];

    /// <summary>Stop when validation loss has not improved for this many epochs (0 = off).</summary>
    public int EarlyStoppingPatience { get; set; }

    /// <summary>Also write <c>last.ckpt</c> every N optimizer steps (0 = only at epoch ends), so a killed run resumes (<c>zoo train --resume</c>) losing at most N steps.</summary>
    public int CheckpointEverySteps { get; set; }

    /// <summary>Stop training after this many seconds of wall time (0 = no limit); the run still evaluates and reports.</summary>
    public int TimeBudgetSeconds { get; set; }

    /// <summary>
    /// Wall time the whole run may take, e.g. <c>30m</c>, <c>1h30m</c>, <c>90s</c> or plain seconds (unset = train
    /// <see cref="Epochs"/> epochs). A few measured training steps and evaluation batches decide how many epochs fit;
    /// the run folder's recipe.yaml then holds those epochs, and <see cref="TimeBudgetSeconds"/> as a safety stop.
    /// </summary>
    public string? Budget { get; set; }

    /// <summary>
    /// Decay of an exponential moving average of the weights updated after every step (0 = off; 0.999 is usual).
    /// Epoch validation runs on the average; at the end the validation split decides between the average and the
    /// trained weights, and the winner is what best.ckpt holds.
    /// </summary>
    public double Ema { get; set; }
}

/// <summary>How the final model is evaluated on the validation and test sets.</summary>
public sealed class EvalSection
{
    /// <summary>
    /// Test-time augmentation: extra views (e.g. <c>hflip</c>) whose class probabilities are averaged with the plain view's.
    /// With a validation split it is a candidate: the test set gets it only if it did not lower validation accuracy.
    /// </summary>
    public List<string> Tta { get; set; } = [];
}

/// <summary>Durations in recipes and on the command line: <c>90</c> (seconds), <c>90s</c>, <c>30m</c>, <c>2h</c>, <c>1h30m</c>.</summary>
public static class DurationText
{
    /// <summary>Seconds in <paramref name="text"/>, or null when it is not a duration.</summary>
    public static double? TryParseSeconds(string text)
    {
        var t = text.Trim().ToLowerInvariant();
        if (t.Length == 0) return null;
        if (double.TryParse(t, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var plain))
            return plain > 0 && double.IsFinite(plain) ? plain : null;
        double total = 0;
        int i = 0;
        string seen = "";
        while (i < t.Length)
        {
            int start = i;
            while (i < t.Length && (char.IsDigit(t[i]) || t[i] == '.')) i++;
            if (i == start || i == t.Length) return null;
            if (!double.TryParse(t[start..i], System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var n)) return null;
            char unit = t[i++];
            double scale = unit switch { 'h' => 3600, 'm' => 60, 's' => 1, _ => double.NaN };
            // Units in falling order, each once: 1h30m, not 30m1h.
            if (double.IsNaN(scale) || seen.Length > 0 && "hms".IndexOf(unit) <= "hms".IndexOf(seen[^1])) return null;
            seen += unit;
            total += n * scale;
        }
        return total > 0 ? total : null;
    }

    /// <summary>Seconds as the shortest of <c>45s</c>, <c>12m</c>, <c>1h30m</c>.</summary>
    public static string Format(double seconds)
    {
        var s = (long)Math.Round(seconds);
        if (s < 120) return $"{s}s";
        if (s < 3600) return s % 60 == 0 ? $"{s / 60}m" : $"{s / 60}m{s % 60}s";
        return $"{s / 3600}h{(s % 3600 / 60 > 0 ? $"{s % 3600 / 60}m" : "")}";
    }
}
