using System.Diagnostics;
using ModelZoo.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.FineTune;

// The training loop: Fit and FineTune, epochs, batches, optimizer steps and the callback events around them.
public sealed partial class Learner
{
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
        var (startEpoch, skip, keepSums) = resume is null ? (0, 0, false) : RestoreFitState(resume, schedule, fitIndex);
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
}
