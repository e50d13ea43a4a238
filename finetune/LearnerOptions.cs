using static TorchSharp.torch;

namespace ModelZoo.FineTune;

/// <summary>Settings of a <see cref="Learner"/> that do not change between fits.</summary>
public sealed record LearnerOptions
{
    /// <summary>Optimizer kind and hyper-parameters (AdamW by default).</summary>
    public OptimizerSettings Optimizer { get; init; } = OptimizerSettings.AdamW();

    /// <summary>Micro-batches whose gradients are summed (loss scaled by 1/N) before each optimizer step.</summary>
    public int AccumulationSteps { get; init; } = 1;

    /// <summary>Clip the global gradient L2 norm to this value before each step (null: no clipping).</summary>
    public double? ClipGradNorm { get; init; }

    /// <summary>Skipped steps (non-finite loss or gradient norm) in a row after which the fit stops with <see cref="TrainingDivergedException"/>.</summary>
    public int MaxNonFiniteInARow { get; init; } = 10;

    /// <summary>Seed for <c>torch.manual_seed</c> (and CUDA) set when the learner is created; null leaves the RNG alone.</summary>
    public int? Seed { get; init; } = 42;

    /// <summary>Folder for <c>metrics.jsonl</c>/<c>metrics.csv</c> (and <c>last.ckpt</c>/<c>best.ckpt</c> with <see cref="SaveCheckpoints"/>); null: no files.</summary>
    public string? RunFolder { get; init; }

    /// <summary>With <see cref="RunFolder"/>, write <c>last.ckpt</c> every epoch and <c>best.ckpt</c> on a new best of <see cref="Monitor"/>.</summary>
    public bool SaveCheckpoints { get; init; }

    /// <summary>With <see cref="SaveCheckpoints"/>, also write <c>last.ckpt</c> every N optimizer steps (0: only at epoch ends), so a killed run loses at most N steps.</summary>
    public int CheckpointEverySteps { get; init; }

    /// <summary>Metric that decides the best checkpoint (<c>valid_loss</c> by default; a metric name such as <c>accuracy</c> is maximised).</summary>
    public string Monitor { get; init; } = "valid_loss";

    /// <summary>No progress bar or epoch lines.</summary>
    public bool Quiet { get; init; }

    /// <summary>Progress bar (true), one line per epoch (false), or decide from the console (null).</summary>
    public bool? ProgressBar { get; init; }

    /// <summary>Where epoch lines and messages go (default: the console).</summary>
    public TextWriter? Output { get; init; }

    /// <summary>Device to train on; null asks <see cref="DeviceSelector"/> (CUDA when available, else CPU).</summary>
    public Device? Device { get; init; }

    /// <summary>On CUDA, allow TF32 tensor-core matmul and cuDNN convolutions (faster, ~10-bit mantissa). Ignored on CPU.</summary>
    public bool AllowTf32 { get; init; } = true;

    /// <summary>The resolved run configuration (e.g. JSON), stored verbatim in every checkpoint.</summary>
    public string? Config { get; init; }

    /// <summary>Callbacks used by every fit of this learner.</summary>
    public IReadOnlyList<Callback> Callbacks { get; init; } = [];
}
