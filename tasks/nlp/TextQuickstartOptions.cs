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

    /// <summary>Also fit the simple baseline (<see cref="Baselines.TfidfBaseline"/>) on the same split and report how the quickstart compares.</summary>
    public bool Baseline { get; init; } = true;
}
