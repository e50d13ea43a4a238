using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.FineTune;

/// <summary>
/// A training callback. The learner calls these hooks in ascending <see cref="Order"/>; override the ones you need.
/// To cancel, throw <see cref="CancelFitException"/>, <see cref="CancelEpochException"/> or
/// <see cref="CancelBatchException"/> from a hook, or call <see cref="Learner.RequestStop"/> to end the fit after the
/// current batch.
/// </summary>
public abstract class Callback
{
    /// <summary>Lower runs first. Built-ins: metrics logger 50, EMA 10, checkpoints 60, progress 90. Default 0.</summary>
    public virtual int Order => 0;

    /// <summary>Before the first epoch of a fit.</summary>
    public virtual void BeforeFit(Learner learner) { }
    /// <summary>After the fit ends (normally, cancelled, or stopped).</summary>
    public virtual void AfterFit(Learner learner) { }
    /// <summary>Before each epoch.</summary>
    public virtual void BeforeEpoch(Learner learner) { }
    /// <summary>After each epoch, with <see cref="Learner.EpochMetrics"/> filled in.</summary>
    public virtual void AfterEpoch(Learner learner) { }
    /// <summary>Before the training pass of an epoch.</summary>
    public virtual void BeforeTrain(Learner learner) { }
    /// <summary>After the training pass of an epoch.</summary>
    public virtual void AfterTrain(Learner learner) { }
    /// <summary>Before the validation pass.</summary>
    public virtual void BeforeValidate(Learner learner) { }
    /// <summary>After the validation pass.</summary>
    public virtual void AfterValidate(Learner learner) { }
    /// <summary>Before a training batch is run (the batch is on the device).</summary>
    public virtual void BeforeBatch(Learner learner) { }
    /// <summary>After the loss of a training batch is computed, before backward.</summary>
    public virtual void BeforeBackward(Learner learner) { }
    /// <summary>After backward.</summary>
    public virtual void AfterBackward(Learner learner) { }
    /// <summary>Before the optimizer step (gradients complete, after clipping).</summary>
    public virtual void BeforeStep(Learner learner) { }
    /// <summary>After the optimizer step. This is a step boundary: <see cref="Learner.Save"/> is allowed here.</summary>
    public virtual void AfterStep(Learner learner) { }
    /// <summary>After each training batch, whether or not it ended in a step.</summary>
    public virtual void AfterBatch(Learner learner) { }
}

/// <summary>Throw from a callback to end the whole fit (<see cref="Callback.AfterFit"/> still runs).</summary>
public sealed class CancelFitException(string? reason = null) : Exception(reason ?? "Fit cancelled by a callback.");

/// <summary>Throw from a callback to skip the rest of the current epoch (training and validation); <see cref="Callback.AfterEpoch"/> still runs.</summary>
public sealed class CancelEpochException(string? reason = null) : Exception(reason ?? "Epoch cancelled by a callback.");

/// <summary>Throw from a callback to skip the rest of the current batch (no backward or step for it).</summary>
public sealed class CancelBatchException(string? reason = null) : Exception(reason ?? "Batch cancelled by a callback.");

/// <summary>Training produced non-finite losses or gradients too many steps in a row.</summary>
public sealed class TrainingDivergedException(string message) : Exception(message);

/// <summary>
/// A batch holds a class label outside the model's outputs (negative or ≥ the number of classes). Thrown before the
/// loss is computed, so nothing trains on it. <see cref="ItemIndex"/> is the item's index as the loader reported it
/// (<c>Batch.Indices</c>), so the caller can name the file or row.
/// </summary>
public sealed class LabelOutOfRangeException(string message, int itemIndex, long label, long numClasses) : Exception(message)
{
    /// <summary>The loader's index of the first offending item (-1 if the batch carries no indices).</summary>
    public int ItemIndex { get; } = itemIndex;
    /// <summary>The offending label.</summary>
    public long Label { get; } = label;
    /// <summary>Number of classes the model predicts.</summary>
    public long NumClasses { get; } = numClasses;
}

/// <summary>A callback whose state must survive checkpoint and resume.</summary>
public interface ICheckpointState
{
    /// <summary>Unique key of this state inside a checkpoint.</summary>
    string StateKey { get; }
    /// <summary>Small state as JSON (null for none).</summary>
    string? SaveJson();
    /// <summary>Tensor state (may be empty); the checkpoint copies them.</summary>
    IReadOnlyDictionary<string, Tensor> SaveTensors();
    /// <summary>Restores the state written by <see cref="SaveJson"/> and <see cref="SaveTensors"/>.</summary>
    void Load(string? json, IReadOnlyDictionary<string, Tensor> tensors);
}

/// <summary>Stops the fit when <paramref name="monitor"/> has not improved by more than <paramref name="minDelta"/> for <paramref name="patience"/> epochs.</summary>
/// <param name="monitor">A logged metric, e.g. <c>valid_loss</c> or <c>accuracy</c>.</param>
/// <param name="patience">Epochs without improvement before stopping.</param>
/// <param name="minimize">True for losses, false for accuracies.</param>
/// <param name="minDelta">Smallest change that counts as an improvement.</param>
public sealed class EarlyStopping(string monitor = "valid_loss", int patience = 3, bool minimize = true, double minDelta = 0) : Callback, ICheckpointState
{
    private double _best = double.NaN;
    private int _wait;

    /// <inheritdoc />
    public override int Order => 70;

    /// <summary>Epoch at which the fit was stopped, or null.</summary>
    public int? StoppedEpoch { get; private set; }

    /// <inheritdoc />
    public override void AfterEpoch(Learner learner)
    {
        if (!MetricKeys.TryGet(learner.EpochMetrics, monitor, out double v))
            throw new KeyNotFoundException($"EarlyStopping monitors '{monitor}', which this run does not log. Logged: {string.Join(", ", learner.EpochMetrics.Keys)}.");
        bool better = double.IsNaN(_best) || (minimize ? v < _best - minDelta : v > _best + minDelta);
        if (better) { _best = v; _wait = 0; return; }
        if (++_wait >= patience)
        {
            StoppedEpoch = learner.Epoch;
            learner.Log($"Early stopping: {monitor} has not improved on {_best:G5} for {patience} epoch(s).");
            learner.RequestStop();
        }
    }

    /// <inheritdoc />
    public string StateKey => $"early_stopping.{monitor}";
    /// <inheritdoc />
    public string? SaveJson() => JsonSerializer.Serialize(new double[] { _best, _wait }, Json.Options);
    /// <inheritdoc />
    public IReadOnlyDictionary<string, Tensor> SaveTensors() => new Dictionary<string, Tensor>();
    /// <inheritdoc />
    public void Load(string? json, IReadOnlyDictionary<string, Tensor> tensors)
    {
        if (json is null) return;
        var a = JsonSerializer.Deserialize<double[]>(json, Json.Options)!;
        (_best, _wait) = (a[0], (int)a[1]);
    }
}

/// <summary>
/// Writes <c>last.ckpt</c> after every epoch (and every <paramref name="everySteps"/> optimizer steps when set) and
/// <c>best.ckpt</c> whenever <paramref name="monitor"/> improves, into <paramref name="folder"/>. Every write is atomic.
/// </summary>
public sealed class SaveCheckpoints(string folder, string monitor = "valid_loss", bool minimize = true, int everySteps = 0) : Callback, ICheckpointState
{
    private double _best = double.NaN;

    /// <inheritdoc />
    public override int Order => 60;

    /// <summary>Path of the last checkpoint.</summary>
    public string LastPath => Path.Combine(folder, "last.ckpt");

    /// <summary>Path of the best checkpoint.</summary>
    public string BestPath => Path.Combine(folder, "best.ckpt");

    /// <summary>Best monitored value so far.</summary>
    public double Best => _best;

    /// <inheritdoc />
    public override void AfterStep(Learner learner)
    {
        if (everySteps > 0 && learner.StepInFit % everySteps == 0) learner.Save(LastPath);
    }

    /// <inheritdoc />
    public override void AfterEpoch(Learner learner)
    {
        if (MetricKeys.TryGet(learner.EpochMetrics, monitor, out double v) && (double.IsNaN(_best) || (minimize ? v < _best : v > _best)))
        {
            _best = v;
            learner.Save(BestPath);
        }
        learner.Save(LastPath);
    }

    /// <inheritdoc />
    public string StateKey => $"save_checkpoints.{monitor}";
    /// <inheritdoc />
    public string? SaveJson() => JsonSerializer.Serialize(new[] { _best }, Json.Options);
    /// <inheritdoc />
    public IReadOnlyDictionary<string, Tensor> SaveTensors() => new Dictionary<string, Tensor>();
    /// <inheritdoc />
    public void Load(string? json, IReadOnlyDictionary<string, Tensor> tensors)
    {
        if (json is not null) _best = JsonSerializer.Deserialize<double[]>(json, Json.Options)![0];
    }
}

/// <summary>
/// Exponential moving average of the weights (parameters and float buffers), updated after every optimizer step:
/// ema = decay·ema + (1-decay)·w. With <paramref name="validateWithEma"/> the validation pass runs on the averaged
/// weights (the training weights are restored afterwards). <see cref="CopyTo"/> puts the average into a model.
/// </summary>
public sealed class EmaWeights(double decay = 0.999, bool validateWithEma = true) : Callback, ICheckpointState
{
    private Dictionary<string, Tensor>? _ema;
    private Dictionary<string, Tensor>? _backup;

    /// <inheritdoc />
    public override int Order => 10;

    /// <inheritdoc />
    public override void BeforeFit(Learner learner)
    {
        if (_ema is null) { _ema = Snapshot(learner.Model); return; }
        var device = learner.Device;
        foreach (var key in _ema.Keys.ToList())
            if (_ema[key].device != device) _ema[key] = _ema[key].to(device).DetachFromDisposeScope();
    }

    /// <inheritdoc />
    public override void AfterStep(Learner learner)
    {
        if (_ema is not null) Update(_ema, learner.Model);
    }

    private void Update(Dictionary<string, Tensor> ema, nn.Module model)
    {
        using var noGrad = no_grad();
        // Scalars held by `using`: a temporary one can be freed by the finalizer during the native call (BatchNormTraining).
        using var keep = decay.ToScalar();
        using var take = (1 - decay).ToScalar();
        foreach (var (name, t) in model.state_dict())
        {
            var e = ema[name];
            if (t.dtype.IsFloatingPoint()) e.mul_(keep).add_(t, take);
            else e.copy_(t);
        }
    }

    /// <summary>
    /// Seconds one update of the average takes after a step of <paramref name="model"/> (what a time budget adds to
    /// each step), timed on a scratch copy of its state: the model and this callback are not changed.
    /// </summary>
    public double TimeOneUpdate(nn.Module model)
    {
        var scratch = Snapshot(model);
        try
        {
            Update(scratch, model);   // warm-up
            var clock = System.Diagnostics.Stopwatch.StartNew();
            for (int round = 0; round < 3; round++) Update(scratch, model);
            if (scratch.Values.FirstOrDefault() is { } first && first.device.type == DeviceType.CUDA) torch.cuda.synchronize(first.device);
            return clock.Elapsed.TotalSeconds / 3;
        }
        finally
        {
            foreach (var t in scratch.Values) t.Dispose();
        }
    }

    /// <inheritdoc />
    public override void BeforeValidate(Learner learner)
    {
        if (!validateWithEma || _ema is null) return;
        _backup = Snapshot(learner.Model);
        Load(learner.Model, _ema);
    }

    /// <inheritdoc />
    public override void AfterValidate(Learner learner)
    {
        if (_backup is null) return;
        Load(learner.Model, _backup);
        foreach (var t in _backup.Values) t.Dispose();
        _backup = null;
    }

    /// <summary>Copies the averaged weights into <paramref name="model"/>.</summary>
    public void CopyTo(nn.Module model)
    {
        if (_ema is null) throw new InvalidOperationException("No averaged weights yet: run a fit with this callback first.");
        Load(model, _ema);
    }

    private static Dictionary<string, Tensor> Snapshot(nn.Module m)
    {
        using var noGrad = no_grad();
        return m.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone().DetachFromDisposeScope());
    }

    private static void Load(nn.Module m, Dictionary<string, Tensor> src)
    {
        using var noGrad = no_grad();
        foreach (var (name, t) in m.state_dict()) t.copy_(src[name]);
    }

    /// <inheritdoc />
    public string StateKey => "ema";
    /// <inheritdoc />
    public string? SaveJson() => null;
    /// <inheritdoc />
    public IReadOnlyDictionary<string, Tensor> SaveTensors() => _ema ?? new Dictionary<string, Tensor>();
    /// <inheritdoc />
    public void Load(string? json, IReadOnlyDictionary<string, Tensor> tensors)
    {
        if (tensors.Count == 0) return;
        _ema = tensors.ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone().DetachFromDisposeScope());
    }
}

internal static class MetricKeys
{
    /// <summary>Looks a metric up by name, accepting Keras/Lightning spellings (<c>val_loss</c> for <c>valid_loss</c>).</summary>
    public static bool TryGet(IReadOnlyDictionary<string, double> metrics, string name, out double value) =>
        metrics.TryGetValue(name, out value)
        || (name.StartsWith("val_", StringComparison.Ordinal) && metrics.TryGetValue("valid_" + name[4..], out value));
}
