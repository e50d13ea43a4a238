using ModelZoo.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.FineTune;

// Checkpoints: atomic save, exact resume (position, optimizer, schedule, RNG, callback states) and weight loading.
public sealed partial class Learner
{
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

    /// <summary>
    /// Applies a checkpoint loaded by <see cref="Resume"/> to the fit that is starting: optimizer and schedule state and
    /// the position when it was saved inside a fit, the callback states, and the RNG state for the first batch.
    /// </summary>
    /// <returns>The epoch and batch to continue from, and whether the epoch's running loss sums are kept.</returns>
    private (int StartEpoch, int Skip, bool KeepSums) RestoreFitState(ResumeState resume, Schedule schedule, int fitIndex)
    {
        int startEpoch = 0, skip = 0;
        bool keepSums = false;
        var info = resume.Info;
        bool midFit = info.Epoch > 0 || info.Batch > 0 || info.StepInFit > 0;
        if (midFit)
        {
            if (resume.Optimizer is null) throw new InvalidDataException("The checkpoint was saved inside a fit but holds no optimizer state.");
            using (var r = new BinaryReader(new MemoryStream(resume.Optimizer))) _opt!.Load(r);
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
        return (startEpoch, skip, keepSums);
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
}
