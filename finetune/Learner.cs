using System.Diagnostics;
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
/// </remarks>
public sealed class Learner : IDisposable
{
    private readonly Func<int, IEnumerable<Batch>> _train;
    private readonly IEnumerable<Batch>? _valid;
    private readonly LearnerOptions _options;
    private readonly TextWriter _out;
    private readonly List<Metric> _metrics;
    private readonly List<Dictionary<string, double>> _history = [];

    private TrainOptimizer? _opt;
    private Schedule? _schedule;
    private double[] _peaks = [];
    private List<Callback> _active = [];
    private bool _inFit, _stop;
    private int _fitCounter, _posFit, _posEpoch, _posBatch, _accum;
    private ResumeState? _resume;
    private Tensor? _pendingRng;
    private double _trainLossSum, _smoothVal;
    private long _trainItems, _smoothCount;

    // Feature-cache mode: the head is trained on cached pooled features.
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

    // ----- fitting -----

    /// <summary>Trains for <paramref name="epochs"/> epochs with <paramref name="schedule"/> (default: constant 1e-3).</summary>
    /// <param name="epochs">Number of epochs.</param>
    /// <param name="schedule">Learning-rate schedule, carrying the peak rates per parameter group.</param>
    /// <param name="callbacks">Callbacks for this fit only (in addition to <see cref="LearnerOptions.Callbacks"/>).</param>
    public void Fit(int epochs, Schedule? schedule = null, IEnumerable<Callback>? callbacks = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(epochs, 1);
        if (_inFit) throw new InvalidOperationException("Fit is already running; a callback cannot start another fit.");
        int fitIndex = _fitCounter++;
        if (_resume is { } skipped && fitIndex < skipped.Info.FitIndex)
        {
            Log($"Fit #{fitIndex} skipped: the resumed checkpoint is past it.");
            return;
        }
        var resume = _resume;
        _resume = null;
        schedule ??= Schedule.Constant(1e-3);
        _schedule = schedule;
        _active = BuildCallbacks(callbacks);
        _stop = false;
        Epochs = epochs;
        BatchesPerEpoch = CountBatches();
        StepsPerEpoch = (BatchesPerEpoch + _options.AccumulationSteps - 1) / _options.AccumulationSteps;
        TotalSteps = StepsPerEpoch * epochs;
        _opt?.Dispose();
        _opt = TrainOptimizer.Create(Model, Model.ParameterGroups(), _options.Optimizer);
        _peaks = schedule.Lr.ForGroups(_opt.ModelGroupCount);
        StepInFit = 0;
        _accum = 0;
        int startEpoch = 0, skip = 0;
        bool keepSums = false;
        if (resume is not null)
        {
            var info = resume.Info;
            bool midFit = info.Epoch > 0 || info.Batch > 0 || info.StepInFit > 0;
            if (midFit)
            {
                if (resume.Optimizer is null) throw new InvalidDataException("The checkpoint was saved inside a fit but holds no optimizer state.");
                using (var r = new BinaryReader(new MemoryStream(resume.Optimizer))) _opt.Load(r);
                if (info.ScheduleState is not null) schedule.LoadState(info.ScheduleState);
                (startEpoch, skip, StepInFit) = (info.Epoch, info.Batch, info.StepInFit);
                keepSums = info.Batch > 0;
            }
            foreach (var s in _active.OfType<ICheckpointState>())
            {
                string prefix = $"cb.{s.StateKey}.";
                var tensors = resume.Tensors.Where(kv => kv.Key.StartsWith(prefix, StringComparison.Ordinal))
                    .ToDictionary(kv => kv.Key[prefix.Length..], kv => kv.Value);
                if (info.Callbacks.TryGetValue(s.StateKey, out var json) || tensors.Count > 0) s.Load(json, tensors);
            }
            _pendingRng = resume.Rng;
            Log($"Resuming fit #{fitIndex} at epoch {startEpoch + 1}, batch {skip} (step {StepInFit}).");
        }
        _inFit = true;
        _posFit = fitIndex;
        bool ok = false;
        try
        {
            Event(c => c.BeforeFit(this));
            for (Epoch = startEpoch; Epoch < epochs && !_stop; Epoch++)
            {
                RunEpoch(skip, keepSums);
                skip = 0;
                keepSums = false;
            }
            ok = true;
        }
        catch (CancelFitException e)
        {
            ok = true;
            if (_accum > 0) _opt.ZeroGrad();
            _accum = 0;
            Log(e.Message);
        }
        finally
        {
            _inFit = false;
            if (!ok)
            {
                try { Event(c => c.AfterFit(this)); } catch (Exception e) when (e is not OutOfMemoryException) { }
            }
        }
        Event(c => c.AfterFit(this));
        (_posFit, _posEpoch, _posBatch) = (fitIndex + 1, 0, 0);
    }

    /// <summary>
    /// fastai's <c>fine_tune</c>: freeze the backbone and train the head for <paramref name="freezeEpochs"/> with
    /// one-cycle at <c>slice(baseLr)</c> (pct_start 0.99), then halve <paramref name="baseLr"/>, unfreeze and train all
    /// for <paramref name="epochs"/> with one-cycle over <c>slice(baseLr/lrMult, baseLr)</c> (discriminative rates,
    /// div 5, pct_start 0.3). With a feature cache, the frozen phase trains the head on cached pooled features.
    /// </summary>
    public void FineTune(int epochs, int freezeEpochs = 1, double baseLr = 2e-3, double lrMult = 100, double pctStart = 0.3, double div = 5.0,
        FeatureCacheMode featureCache = FeatureCacheMode.Off, FeatureCacheOptions? cacheOptions = null, IEnumerable<Callback>? callbacks = null)
    {
        var cbs = callbacks?.ToList() ?? [];
        Model.FreezeBackbone();
        if (freezeEpochs > 0)
        {
            var headSchedule = Schedule.OneCycle(LrSpec.Slice(baseLr), pctStart: 0.99, divFactor: 25, finalDivFactor: 1e5);
            bool cache = featureCache == FeatureCacheMode.On || (featureCache == FeatureCacheMode.Auto && FeatureCache.IsDeterministic(_train(0)));
            if (cache && !(_resume is { } r && r.Info.FitIndex > _fitCounter))
            {
                int batchSize = cacheOptions?.BatchSize ?? FirstBatchSize();
                var opts = (cacheOptions ?? new FeatureCacheOptions()) with { BatchSize = batchSize, Seed = cacheOptions?.Seed ?? _options.Seed ?? 0 };
                using var trainCache = FeatureCache.Build(Model, _train(0), opts, Device);
                Log($"Feature cache: {trainCache.Count} items × {trainCache.FeatureDim} features in {trainCache.BuildTime.TotalSeconds:F1}s.");
                using (UseFeatureCache(trainCache)) Fit(freezeEpochs, headSchedule, cbs);
            }
            else
            {
                Fit(freezeEpochs, headSchedule, cbs);
            }
        }
        baseLr /= 2;
        Model.Unfreeze();
        Fit(epochs, Schedule.OneCycle(LrSpec.Slice(baseLr / lrMult, baseLr), pctStart: pctStart, divFactor: div, finalDivFactor: 1e5), cbs);
    }

    /// <summary>
    /// Switches the learner to head-only training on <paramref name="train"/> (features from <see cref="FeatureCache.Build"/>)
    /// until the returned handle is disposed. Validation uses <paramref name="valid"/> when given, else the full model on
    /// the validation loader. The backbone must be frozen.
    /// </summary>
    public IDisposable UseFeatureCache(FeatureCache train, FeatureCache? valid = null)
    {
        string head = Model.HeadPath;
        var trainable = Model.named_parameters().Where(p => p.parameter.requires_grad && !PathMatch.Covers(head, p.name)).Select(p => p.name).ToList();
        if (trainable.Count > 0)
            throw new InvalidOperationException($"Cached features are only valid for a frozen backbone, but {trainable.Count} backbone parameter(s) are trainable " +
                $"(e.g. '{trainable[0]}'). Call model.FreezeBackbone() first.");
        _head = Model.Get(head) as nn.Module<Tensor, Tensor>
            ?? throw new InvalidOperationException($"The head at '{head}' does not map a tensor to a tensor.");
        (_cacheTrain, _cacheValid) = (train, valid);
        return new Restore(() => (_head, _cacheTrain, _cacheValid) = (null, null, null));
    }

    private sealed class Restore(Action undo) : IDisposable
    {
        public void Dispose() => undo();
    }

    private IEnumerable<Batch> TrainSource(int epoch) => _cacheTrain?.Batches(epoch) ?? _train(epoch);

    private Tensor TrainForward(Tensor x) => _head is not null ? _head.call(x) : Model.call(x);

    private int FirstBatchSize()
    {
        var first = _train(0).FirstOrDefault() ?? throw new InvalidOperationException("The training loader yielded no batches.");
        using (first) return first.Count;
    }

    private int CountBatches()
    {
        if (_cacheTrain is not null) return TrainSource(0).Count();
        var src = _train(0);
        if (src.TryGetNonEnumeratedCount(out int n)) return n;
        if (src is IReadOnlyCollection<Batch> rc) return rc.Count;
        int count = 0;
        foreach (var b in src)
        {
            b.Dispose();
            count++;
        }
        if (count == 0) throw new InvalidOperationException("The training loader yielded no batches.");
        return count;
    }

    private List<Callback> BuildCallbacks(IEnumerable<Callback>? extra)
    {
        var list = _options.Callbacks.Concat(extra ?? []).ToList();
        if (_options.RunFolder is { } folder)
        {
            if (!list.OfType<MetricsFileLogger>().Any()) list.Add(new MetricsFileLogger(folder));
            if (_options.SaveCheckpoints && !list.OfType<SaveCheckpoints>().Any())
                list.Add(new SaveCheckpoints(folder, _options.Monitor, minimize: _options.Monitor.EndsWith("loss", StringComparison.Ordinal), everySteps: _options.CheckpointEverySteps));
        }
        if (!_options.Quiet && !list.OfType<ProgressReporter>().Any()) list.Add(new ProgressReporter(_options.ProgressBar));
        return [.. list.OrderBy(c => c.Order)];
    }

    private void Event(Action<Callback> hook)
    {
        foreach (var c in _active) hook(c);
    }

    private void RunEpoch(int skip, bool keepSums)
    {
        var sw = Stopwatch.StartNew();
        (_posEpoch, _posBatch) = (Epoch, skip);
        if (!keepSums) (_trainLossSum, _trainItems) = (0, 0);
        bool trained = false;
        Evaluation? eval = null;
        try
        {
            Event(c => c.BeforeEpoch(this));
            trained = TrainEpoch(skip);
            if (trained && _valid is not null) eval = Validate();
        }
        catch (CancelEpochException e)
        {
            Log(e.Message);
        }
        var m = new Dictionary<string, double>
        {
            ["epoch"] = Epoch + 1,
            ["train_loss"] = _trainItems == 0 ? double.NaN : _trainLossSum / _trainItems,
        };
        if (eval is not null)
        {
            m["valid_loss"] = eval.Loss;
            foreach (var metric in _metrics) m[metric.Name] = metric.Compute(eval);
        }
        var lrs = CurrentLrs;
        m["lr"] = lrs.Count > 0 ? lrs.Max() : double.NaN;
        m["time_s"] = Math.Round(sw.Elapsed.TotalSeconds, 3);
        EpochMetrics = m;
        if (trained)
        {
            if (eval is not null) _schedule!.EpochEnded(m);
            (_posEpoch, _posBatch) = (Epoch + 1, 0);
        }
        _history.Add(m);
        Event(c => c.AfterEpoch(this));
    }

    private bool TrainEpoch(int skip)
    {
        Model.train();
        IsTraining = true;
        Event(c => c.BeforeTrain(this));
        using var e = TrainSource(Epoch).GetEnumerator();
        int i = 0;
        for (; i < skip && e.MoveNext(); i++) e.Current.Dispose();
        if (_pendingRng is not null)
        {
            torch.random.set_rng_state(_pendingRng);
            _pendingRng.Dispose();
            _pendingRng = null;
        }
        _accum = 0;
        while (!_stop && e.MoveNext())
        {
            Iteration = i;
            TrainBatch(e.Current, i);
            i++;
        }
        if (_stop)
        {
            if (_accum > 0) _opt!.ZeroGrad();
            _accum = 0;
            return false;
        }
        if (_accum > 0)
        {
            using var scope = NewDisposeScope();
            Step(i - 1);
        }
        Event(c => c.AfterTrain(this));
        return true;
    }

    private void TrainBatch(Batch raw, int i)
    {
        using var scope = NewDisposeScope();
        var batch = raw.To(Device);
        try
        {
            CurrentBatch = batch;
            CurrentBatchSize = batch.Count;
            try
            {
                Event(c => c.BeforeBatch(this));
                // Float buffers (BatchNorm running statistics) are restored if this batch turns out non-finite.
                var buffers = _head is null ? Model.named_buffers().Where(b => b.buffer.dtype.IsFloatingPoint()).Select(b => b.buffer).ToList() : [];
                var savedBuffers = buffers.Select(b => b.clone()).ToList();
                var logits = TrainForward(batch.Input);
                Logits = logits;
                CheckTargets(batch, logits, $"epoch {Epoch + 1}, batch {i}");
                LossTensor = LossFunction.Mean(logits, batch.Target);
                Event(c => c.BeforeBackward(this));
                double lv = LossTensor.to(ScalarType.Float64).item<double>();
                LastLoss = lv;
                if (!double.IsFinite(lv))
                {
                    using (no_grad())
                        for (int k = 0; k < buffers.Count; k++) buffers[k].copy_(savedBuffers[k]);
                    SkipNonFinite($"the loss ({lv})", i);
                }
                else
                {
                    (_options.AccumulationSteps > 1 ? LossTensor / _options.AccumulationSteps : LossTensor).backward();
                    _trainLossSum += lv * batch.Count;
                    _trainItems += batch.Count;
                    _smoothVal = 0.98 * _smoothVal + 0.02 * lv;
                    _smoothCount++;
                    Event(c => c.AfterBackward(this));
                    if (++_accum == _options.AccumulationSteps) Step(i);
                }
            }
            catch (CancelBatchException)
            {
            }
            Event(c => c.AfterBatch(this));
        }
        finally
        {
            CurrentBatch = null;
            Logits = null;
            LossTensor = null;
            if (!ReferenceEquals(batch, raw)) batch.Dispose();
            raw.Dispose();
        }
    }

    /// <summary>Refuses class-index targets outside [0, classes): libtorch would fail with a message that names no item.</summary>
    private static void CheckTargets(Batch batch, Tensor logits, string where)
    {
        var t = batch.Target;
        if (t.dtype.IsFloatingPoint() || logits.dim() != 2 || t.dim() != 1) return;
        long k = logits.shape[1];
        using var bad = t.lt(0).logical_or_(t.ge(k));
        if (!bad.any().item<bool>()) return;
        using var positions = bad.nonzero();
        long pos = positions[0, 0].item<long>();
        long label = t[pos].item<long>();
        int item = pos < batch.Indices.Length ? batch.Indices[pos] : -1;
        throw new LabelOutOfRangeException($"Item {item} ({where}) has label {label}, but the model predicts {k} classes (0–{k - 1}). " +
            "Check the labels of the data (or the class list the head was sized for); nothing was trained on this batch.", item, label, k);
    }

    private void Step(int batchIndex)
    {
        var withGrad = _opt!.Parameters.Where(p => p.grad is not null).ToList();
        double norm = withGrad.Count == 0 ? 0
            : _options.ClipGradNorm is double max ? torch.nn.utils.clip_grad_norm_(withGrad, max)
            : torch.linalg.vector_norm(stack(withGrad.Select(p => torch.linalg.vector_norm(p.grad!)).ToArray())).to(ScalarType.Float64).item<double>();
        LastGradNorm = norm;
        if (!double.IsFinite(norm))
        {
            SkipNonFinite($"the gradient norm ({norm})", batchIndex);
            return;
        }
        var at = new SchedulePosition(StepInFit, StepsPerEpoch, TotalSteps);
        _opt.SetLr(_peaks, _schedule!.Factor(at));
        if (_schedule.Momentum(at) is double mom) _opt.SetMomentum(mom);
        Event(c => c.BeforeStep(this));
        _opt.Step();
        _opt.ZeroGrad();
        _accum = 0;
        StepInFit++;
        GlobalStep++;
        NonFiniteInARow = 0;
        _posBatch = batchIndex + 1;
        Event(c => c.AfterStep(this));
    }

    private void SkipNonFinite(string what, int batchIndex)
    {
        _opt!.ZeroGrad();
        _accum = 0;
        _posBatch = batchIndex + 1;
        NonFiniteSkipped++;
        NonFiniteInARow++;
        if (NonFiniteInARow >= _options.MaxNonFiniteInARow)
            throw new TrainingDivergedException(
                $"Training diverged: {what} was not finite for {NonFiniteInARow} step(s) in a row (epoch {Epoch + 1}, batch {batchIndex}); " +
                $"{NonFiniteSkipped} step(s) skipped in total. Lower the learning rate (Learner.FindLr suggests one), set " +
                $"LearnerOptions.ClipGradNorm, or check the inputs for NaN/Inf.");
        Log($"Skipped step at epoch {Epoch + 1}, batch {batchIndex}: {what} is not finite ({NonFiniteInARow} in a row).");
    }

    // ----- evaluation -----

    private Evaluation Validate()
    {
        Model.eval();
        IsTraining = false;
        Event(c => c.BeforeValidate(this));
        var eval = _cacheValid is not null ? Run(_cacheValid.Sequential(), _head!) : Run(_valid!, Model);
        LastEvaluation = eval;
        Event(c => c.AfterValidate(this));
        return eval;
    }

    /// <summary>Runs the model in eval mode over <paramref name="data"/> (default: the validation loader) and returns all predictions with reports.</summary>
    public Evaluation Evaluate(IEnumerable<Batch>? data = null)
    {
        var src = data ?? _valid ?? throw new InvalidOperationException("No data to evaluate: pass batches or give the learner a validation loader.");
        bool was = Model.training;
        Model.eval();
        try { return Run(src, Model); }
        finally { if (was) Model.train(); }
    }

    private Evaluation Run(IEnumerable<Batch> data, nn.Module<Tensor, Tensor> net)
    {
        var logits = new List<float>();
        var targets = new List<int>();
        var losses = new List<float>();
        var indices = new List<int>();
        int k = -1;
        using var noGrad = no_grad();
        foreach (var raw in data)
        {
            using var scope = NewDisposeScope();
            var b = raw.To(Device);
            try
            {
                var y = net.call(b.Input);
                if (y.dim() != 2) throw new InvalidOperationException($"Evaluation expects N×K logits, got [{string.Join(", ", y.shape)}].");
                k = (int)y.shape[1];
                CheckTargets(b, y, "evaluation");
                losses.AddRange(LossFunction.PerItem(y, b.Target).to(ScalarType.Float32).cpu().data<float>().ToArray());
                logits.AddRange(y.to(ScalarType.Float32).cpu().data<float>().ToArray());
                targets.AddRange(Loss.HardTargets(b.Target).cpu().data<long>().ToArray().Select(t => (int)t));
                indices.AddRange(b.Indices);
            }
            finally
            {
                if (!ReferenceEquals(b, raw)) b.Dispose();
                raw.Dispose();
            }
        }
        if (k < 0) throw new InvalidOperationException("The evaluation data yielded no batches.");
        return new Evaluation([.. logits], k, [.. targets], [.. losses], [.. indices]);
    }

    // ----- LR finder -----

    /// <summary>
    /// LR range test (fastai's <c>lr_find</c>): trains for up to <paramref name="numIterations"/> batches with the rate
    /// rising exponentially from <paramref name="startLr"/> to <paramref name="endLr"/>, records the smoothed loss, stops
    /// when it exceeds 4× the best (or is not finite), then restores the weights and RNG state.
    /// </summary>
    public LrFinderResult FindLr(double startLr = 1e-7, double endLr = 10, int numIterations = 100, bool stopOnDivergence = true)
    {
        if (_inFit) throw new InvalidOperationException("FindLr cannot run inside a fit.");
        ArgumentOutOfRangeException.ThrowIfLessThan(numIterations, 2);
        Dictionary<string, Tensor> saved;
        using (no_grad()) saved = Model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone().DetachFromDisposeScope());
        var rng = torch.random.get_rng_state();
        using var opt = TrainOptimizer.Create(Model, Model.ParameterGroups(), _options.Optimizer);
        var peaks = Enumerable.Repeat(1.0, opt.ModelGroupCount).ToArray();
        var lrs = new List<double>();
        var smooth = new List<double>();
        var raws = new List<double>();
        double avg = 0, best = double.PositiveInfinity;
        bool diverged = false;
        bool wasTraining = Model.training;
        Model.train();
        try
        {
            int it = 0;
            for (int epoch = 0; it < numIterations && !diverged; epoch++)
            {
                int before = it;
                foreach (var raw in TrainSource(epoch))
                {
                    using var scope = NewDisposeScope();
                    var b = raw.To(Device);
                    try
                    {
                        if (it >= numIterations || diverged) continue;
                        double lr = startLr * Math.Pow(endLr / startLr, it / (double)(numIterations - 1));
                        opt.SetLr(peaks, lr);
                        var loss = LossFunction.Mean(TrainForward(b.Input), b.Target);
                        double lv = loss.to(ScalarType.Float64).item<double>();
                        if (double.IsFinite(lv))
                        {
                            loss.backward();
                            opt.Step();
                        }
                        opt.ZeroGrad();
                        avg = 0.98 * avg + 0.02 * lv;
                        double s = avg / (1 - Math.Pow(0.98, it + 1));
                        lrs.Add(lr);
                        raws.Add(lv);
                        smooth.Add(s);
                        it++;
                        if (double.IsFinite(s)) best = Math.Min(best, s);
                        if (!double.IsFinite(s) || (stopOnDivergence && s > 4 * best)) diverged = true;
                    }
                    finally
                    {
                        if (!ReferenceEquals(b, raw)) b.Dispose();
                        raw.Dispose();
                    }
                }
                if (it == before) throw new InvalidOperationException("The training loader yielded no batches.");
            }
        }
        finally
        {
            using (no_grad())
                foreach (var (name, t) in Model.state_dict()) t.copy_(saved[name]);
            foreach (var t in saved.Values) t.Dispose();
            torch.random.set_rng_state(rng);
            rng.Dispose();
            if (!wasTraining) Model.eval();
        }
        return LrFinderResult.From(lrs, smooth, raws, diverged);
    }

    // ----- checkpoints -----

    /// <summary>
    /// Saves a checkpoint to <paramref name="path"/> atomically: model, optimizer and schedule state, RNG state,
    /// position (fit, epoch, batch, step), metrics history, callback states and <see cref="LearnerOptions.Config"/>.
    /// Inside a fit this is allowed at step boundaries (<see cref="Callback.AfterStep"/>, epoch hooks).
    /// </summary>
    public void Save(string path) => SaveTo(path, null);

    internal void SaveTo(string path, Func<string, Stream>? open)
    {
        if (_accum > 0)
            throw new InvalidOperationException($"Cannot checkpoint with {_accum} accumulated micro-batch(es) pending: save from AfterStep or an epoch hook, where no gradients are pending.");
        var callbacks = (_inFit ? _active : BuildCallbacks(null)).OfType<ICheckpointState>().ToList();
        var tensors = new List<(string, Tensor)>();
        using var scope = NewDisposeScope();
        foreach (var (name, t) in Model.state_dict()) tensors.Add(("model." + name, t));
        tensors.Add(("rng.cpu", torch.random.get_rng_state()));
        var cbJson = new Dictionary<string, string?>();
        foreach (var s in callbacks)
        {
            cbJson[s.StateKey] = s.SaveJson();
            foreach (var (n, t) in s.SaveTensors()) tensors.Add(($"cb.{s.StateKey}.{n}", t));
        }
        var info = new CheckpointInfo
        {
            Model = Model.GetType().Name,
            FitIndex = _inFit ? _posFit : _fitCounter,
            Epoch = _inFit ? _posEpoch : 0,
            Batch = _inFit ? _posBatch : 0,
            StepInFit = _inFit ? StepInFit : 0,
            GlobalStep = GlobalStep,
            Seed = _options.Seed,
            TrainLossSum = _trainLossSum,
            TrainItems = _trainItems,
            SmoothLoss = _smoothVal,
            SmoothCount = _smoothCount,
            NonFiniteTotal = NonFiniteSkipped,
            NonFiniteInARow = NonFiniteInARow,
            ScheduleState = _inFit ? _schedule?.SaveState() : null,
            Callbacks = cbJson,
            History = _history.Select(h => new Dictionary<string, double>(h)).ToList(),
            Config = _options.Config,
            HasOptimizer = _inFit && _opt is not null,
            SavedAtUtc = DateTime.UtcNow,
        };
        Checkpoint.Write(path, info, tensors, info.HasOptimizer ? _opt!.Save : null, open);
    }

    /// <summary>
    /// Loads a checkpoint written by <see cref="Save"/>: the weights and RNG state now, and the position, optimizer,
    /// schedule and callback states for the next <see cref="Fit"/>/<see cref="FineTune"/> call, which continues where the
    /// saved run stopped (fits the saved run had finished are skipped). Call the same sequence of fits as the saved run.
    /// </summary>
    public CheckpointInfo Resume(string path)
    {
        if (_inFit) throw new InvalidOperationException("Resume cannot run inside a fit.");
        using var zip = Checkpoint.OpenZip(path);
        var info = Checkpoint.ReadMeta(zip, path);
        if (info.Model != Model.GetType().Name)
            throw new InvalidDataException($"Checkpoint '{path}' holds a {info.Model}, but this learner trains a {Model.GetType().Name}.");
        var tensors = Checkpoint.ReadTensors(zip, path);
        var state = tensors.Where(kv => kv.Key.StartsWith("model.", StringComparison.Ordinal)).ToDictionary(kv => kv.Key["model.".Length..], kv => kv.Value);
        LoadModelState(path, state);
        var rng = tensors.GetValueOrDefault("rng.cpu") ?? throw new InvalidDataException($"Checkpoint '{path}' has no RNG state (rng.cpu).");
        torch.random.set_rng_state(rng);
        _resume = new ResumeState(info, tensors, Checkpoint.ReadBytes(zip, "optimizer.bin"), rng);
        _fitCounter = 0;
        _history.Clear();
        _history.AddRange(info.History);
        GlobalStep = info.GlobalStep;
        (_trainLossSum, _trainItems, _smoothVal, _smoothCount) = (info.TrainLossSum, info.TrainItems, info.SmoothLoss, info.SmoothCount);
        (NonFiniteSkipped, NonFiniteInARow) = (info.NonFiniteTotal, info.NonFiniteInARow);
        // Epochs logged after this checkpoint was written (the run died before the next one) are logged again when
        // they rerun, so the metrics files are cut back to the checkpoint's history.
        if (_options.RunFolder is { } folder) MetricsFileLogger.Rewrite(folder, _history);
        return info;
    }

    /// <summary>Loads only the weights of a checkpoint into the model (strict: names and shapes must match).</summary>
    public void LoadWeights(string path) => LoadModelState(path, Checkpoint.ReadModelState(path));

    private void LoadModelState(string path, Dictionary<string, Tensor> state)
    {
        var own = Model.state_dict();
        var missing = own.Keys.Except(state.Keys).ToList();
        var extra = state.Keys.Except(own.Keys).ToList();
        if (missing.Count > 0 || extra.Count > 0)
            throw new InvalidDataException($"Checkpoint '{path}' does not match the model: missing {string.Join(", ", missing.Take(5))}{(missing.Count > 5 ? ", …" : "")}; " +
                $"unexpected {string.Join(", ", extra.Take(5))}{(extra.Count > 5 ? ", …" : "")}. Was it saved from the same architecture and head size?");
        using var noGrad = no_grad();
        foreach (var (name, t) in own)
        {
            var src = state[name];
            if (!src.shape.SequenceEqual(t.shape))
                throw new InvalidDataException($"Checkpoint '{path}': '{name}' has shape [{string.Join(", ", src.shape)}], the model expects [{string.Join(", ", t.shape)}].");
            t.copy_(src);
        }
    }

    private sealed record ResumeState(CheckpointInfo Info, Dictionary<string, Tensor> Tensors, byte[]? Optimizer, Tensor Rng);

    /// <inheritdoc />
    public void Dispose()
    {
        _opt?.Dispose();
        _opt = null;
    }
}
