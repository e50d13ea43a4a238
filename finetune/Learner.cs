using ModelZoo.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.FineTune;

/// <summary>
/// Trains a <see cref="ZooModel"/>: fit loops with callbacks, schedules and parameter groups, fastai's
/// <see cref="FineTune"/> recipe, an LR range test, validation metrics, checkpoints with exact resume, and head training
/// on cached features.
/// </summary>
/// <remarks>
/// Data comes as <see cref="IEnumerable{Batch}"/> and is enumerated once per epoch. For exact resume the order of epoch
/// e must not depend on earlier enumerations (seed the loader's shuffle from the epoch), or use the constructor that
/// takes a function from epoch to batches. The number of batches per epoch is read from <see cref="ICollection{T}"/> /
/// <see cref="IReadOnlyCollection{T}"/> when the loader implements it, else counted by one pass at the start of each fit.
/// The class is split by job: this file holds the construction and the state callbacks read; <c>Learner.Loop.cs</c> the
/// fit loop, <c>Learner.Guards.cs</c> its label and non-finite guards, <c>Learner.Evaluation.cs</c> validation,
/// <c>Learner.Checkpoints.cs</c> save and exact resume, <c>Learner.FindLr.cs</c> the LR range test and
/// <c>Learner.FeatureCache.cs</c> head training on cached features.
/// </remarks>
public sealed partial class Learner : IDisposable
{
    private readonly Func<int, IEnumerable<Batch>> _train;
    private readonly IEnumerable<Batch>? _valid;
    private readonly LearnerOptions _options;
    private readonly TextWriter _out;
    private readonly List<Metric> _metrics;
    private readonly List<Dictionary<string, double>> _history = [];

    // The running fit (Learner.Loop.cs).
    private TrainOptimizer? _opt;
    private Schedule? _schedule;
    private double[] _peaks = [];
    private List<Callback> _active = [];
    private bool _inFit, _stop;
    private int _fitCounter, _posFit, _posEpoch, _posBatch, _accum;
    private double _trainLossSum, _smoothVal;
    private long _trainItems, _smoothCount;

    // A loaded checkpoint waiting for its fit (Learner.Checkpoints.cs).
    private ResumeState? _resume;
    private Tensor? _pendingRng;

    // Feature-cache mode: the head is trained on cached pooled features (Learner.FeatureCache.cs).
    private nn.Module<Tensor, Tensor>? _head;
    private FeatureCache? _cacheTrain, _cacheValid;

    /// <summary>Creates a learner over a loader that is enumerated once per epoch.</summary>
    /// <param name="model">The model; it is moved to the device.</param>
    /// <param name="train">Training batches (re-enumerated each epoch).</param>
    /// <param name="valid">Validation batches, or null for none.</param>
    /// <param name="loss">Loss (default: cross-entropy).</param>
    /// <param name="metrics">Validation metrics (valid_loss is always logged).</param>
    /// <param name="options">Optimizer, accumulation, clipping, seed, run folder, device, …</param>
    public Learner(ZooModel model, IEnumerable<Batch> train, IEnumerable<Batch>? valid = null, Loss? loss = null,
        IEnumerable<Metric>? metrics = null, LearnerOptions? options = null)
        : this(model, _ => train, valid, loss, metrics, options)
    {
    }

    /// <summary>Creates a learner whose training batches for epoch e come from <paramref name="train"/>(e) (best for exact resume).</summary>
    /// <param name="model">The model; it is moved to the device.</param>
    /// <param name="train">Training batches of each epoch.</param>
    /// <param name="valid">Validation batches, or null for none.</param>
    /// <param name="loss">Loss (default: cross-entropy).</param>
    /// <param name="metrics">Validation metrics (valid_loss is always logged).</param>
    /// <param name="options">Optimizer, accumulation, clipping, seed, run folder, device, …</param>
    public Learner(ZooModel model, Func<int, IEnumerable<Batch>> train, IEnumerable<Batch>? valid = null, Loss? loss = null,
        IEnumerable<Metric>? metrics = null, LearnerOptions? options = null)
    {
        Model = model;
        _train = train;
        _valid = valid;
        LossFunction = loss ?? Loss.CrossEntropy();
        _metrics = metrics?.ToList() ?? [];
        _options = options ?? new LearnerOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(_options.AccumulationSteps, 1, nameof(LearnerOptions.AccumulationSteps));
        ArgumentOutOfRangeException.ThrowIfLessThan(_options.MaxNonFiniteInARow, 1, nameof(LearnerOptions.MaxNonFiniteInARow));
        ArgumentOutOfRangeException.ThrowIfNegative(_options.CheckpointEverySteps, nameof(LearnerOptions.CheckpointEverySteps));
        _out = _options.Output ?? Console.Out;
        Device = _options.Device ?? DeviceSelector.Resolve(DeviceRequest.Auto).Device;
        if (Device.type == DeviceType.CUDA && _options.AllowTf32)
        {
            torch.backends.cuda.matmul.allow_tf32 = true;
            torch.backends.cudnn.allow_tf32 = true;
        }
        Model.to(Device);
        if (_options.Seed is int seed) SeedEverything(seed);
    }

    // ----- state visible to callbacks -----

    /// <summary>The model being trained.</summary>
    public ZooModel Model { get; }

    /// <summary>The device everything runs on.</summary>
    public Device Device { get; }

    /// <summary>The loss.</summary>
    public Loss LossFunction { get; }

    /// <summary>Current epoch (0-based) of the running fit.</summary>
    public int Epoch { get; private set; }

    /// <summary>Epochs of the running fit.</summary>
    public int Epochs { get; private set; }

    /// <summary>Index of the current training batch within the epoch.</summary>
    public int Iteration { get; private set; }

    /// <summary>Training batches per epoch in the running fit.</summary>
    public int BatchesPerEpoch { get; private set; }

    /// <summary>Optimizer steps per epoch in the running fit.</summary>
    public long StepsPerEpoch { get; private set; }

    /// <summary>Optimizer steps planned for the running fit.</summary>
    public long TotalSteps { get; private set; }

    /// <summary>Optimizer steps taken in the running fit.</summary>
    public long StepInFit { get; private set; }

    /// <summary>Optimizer steps taken over all fits.</summary>
    public long GlobalStep { get; private set; }

    /// <summary>True in the training pass, false in validation.</summary>
    public bool IsTraining { get; private set; }

    /// <summary>The current batch (on the device) while a training batch runs.</summary>
    public Batch? CurrentBatch { get; private set; }

    /// <summary>Items in the current batch.</summary>
    public int CurrentBatchSize { get; private set; }

    /// <summary>Logits of the current training batch (after the forward pass).</summary>
    public Tensor? Logits { get; private set; }

    /// <summary>Loss tensor of the current training batch; a callback may replace it in <see cref="Callback.BeforeBackward"/>.</summary>
    public Tensor? LossTensor { get; set; }

    /// <summary>Loss of the last training batch.</summary>
    public double LastLoss { get; private set; } = double.NaN;

    /// <summary>Global gradient norm before clipping at the last step.</summary>
    public double LastGradNorm { get; private set; } = double.NaN;

    /// <summary>Exponentially smoothed training loss (β = 0.98, debiased), as fastai shows it.</summary>
    public double SmoothLoss => _smoothCount == 0 ? double.NaN : _smoothVal / (1 - Math.Pow(0.98, _smoothCount));

    /// <summary>Steps skipped because the loss or gradient norm was not finite, in total.</summary>
    public int NonFiniteSkipped { get; private set; }

    /// <summary>Skipped steps in a row now.</summary>
    public int NonFiniteInARow { get; private set; }

    /// <summary>Metrics of the epoch that just ended (filled before <see cref="Callback.AfterEpoch"/>).</summary>
    public IReadOnlyDictionary<string, double> EpochMetrics { get; private set; } = new Dictionary<string, double>();

    /// <summary>Metrics of every finished epoch of every fit.</summary>
    public IReadOnlyList<IReadOnlyDictionary<string, double>> History => _history;

    /// <summary>The last full validation result, when validation ran.</summary>
    public Evaluation? LastEvaluation { get; private set; }

    /// <summary>Learning rates of the optimizer groups at the last step.</summary>
    public IReadOnlyList<double> CurrentLrs => _opt?.CurrentLrs() ?? [];

    /// <summary>Asks the running fit to stop after the current batch (or epoch, when called from an epoch hook).</summary>
    public void RequestStop() => _stop = true;

    /// <summary>Writes a message line (unless quiet).</summary>
    public void Log(string message)
    {
        if (!_options.Quiet) _out.WriteLine(message);
    }

    /// <summary>Seeds torch's CPU (and CUDA) generators; the learner's own orders are derived statelessly from seeds.</summary>
    public static void SeedEverything(int seed)
    {
        torch.manual_seed(seed);
        if (torch.cuda.is_available()) torch.cuda.manual_seed_all(seed);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _opt?.Dispose();
        _opt = null;
    }
}
