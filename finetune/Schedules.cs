using System.Globalization;
using System.Text.Json;

namespace ModelZoo.FineTune;

/// <summary>
/// How a peak learning rate spreads over a model's parameter groups (ordered from the input end, depth 0, to the head).
/// A plain <see cref="double"/> converts to <see cref="Single"/>.
/// </summary>
public sealed class LrSpec
{
    private readonly Func<int, double[]> _spread;

    private LrSpec(string text, double max, Func<int, double[]> spread)
    {
        Text = text;
        Max = max;
        _spread = spread;
    }

    /// <summary>The highest rate (the head's).</summary>
    public double Max { get; }

    /// <summary>A readable description, e.g. <c>slice(1e-05, 0.001)</c>.</summary>
    public string Text { get; }

    /// <summary>The same rate for every group.</summary>
    public static LrSpec Single(double lr) => new(Fmt(lr), Check(lr), n => Enumerable.Repeat(lr, n).ToArray());

    /// <summary>fastai's <c>slice(hi)</c>: the head gets <paramref name="hi"/>, every other group <paramref name="hi"/>/10.</summary>
    public static LrSpec Slice(double hi) => new($"slice({Fmt(hi)})", Check(hi), n => Enumerable.Range(0, n).Select(i => i == n - 1 ? hi : hi / 10).ToArray());

    /// <summary>fastai's <c>slice(lo, hi)</c>: rates spaced geometrically from <paramref name="lo"/> (input end) to <paramref name="hi"/> (head).</summary>
    public static LrSpec Slice(double lo, double hi)
    {
        Check(lo);
        Check(hi);
        return new($"slice({Fmt(lo)}, {Fmt(hi)})", hi, n => n == 1 ? [hi]
            : Enumerable.Range(0, n).Select(i => lo * Math.Pow(hi / lo, i / (double)(n - 1))).ToArray());
    }

    /// <summary>Layer-wise decay: group at depth d of n gets <paramref name="lr"/>·<paramref name="decay"/>^(n-1-d), so the head gets <paramref name="lr"/>.</summary>
    public static LrSpec LayerDecay(double lr, double decay)
    {
        if (decay is <= 0 or > 1) throw new ArgumentOutOfRangeException(nameof(decay), decay, "Layer decay must be in (0, 1], e.g. 0.75.");
        return new($"layer_decay({Fmt(lr)}, {Fmt(decay)})", Check(lr), n => Enumerable.Range(0, n).Select(i => lr * Math.Pow(decay, n - 1 - i)).ToArray());
    }

    /// <summary>A single rate.</summary>
    public static implicit operator LrSpec(double lr) => Single(lr);

    /// <summary>The rate of each of <paramref name="groups"/> groups, input end first.</summary>
    public double[] ForGroups(int groups)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(groups, 1);
        return _spread(groups);
    }

    /// <summary>This spec with every rate multiplied by <paramref name="factor"/>.</summary>
    public LrSpec Scale(double factor) => new($"{Text}*{Fmt(factor)}", Max * factor, n => _spread(n).Select(v => v * factor).ToArray());

    /// <inheritdoc />
    public override string ToString() => Text;

    private static double Check(double lr) =>
        double.IsFinite(lr) && lr > 0 ? lr : throw new ArgumentOutOfRangeException(nameof(lr), lr, "A learning rate must be a positive finite number.");

    internal static string Fmt(double v) => v.ToString("G6", CultureInfo.InvariantCulture);
}

/// <summary>Where training is, for schedules: optimizer step index (0-based), steps per epoch and steps in the whole fit.</summary>
/// <param name="Step">Optimizer steps taken so far in this fit.</param>
/// <param name="StepsPerEpoch">Optimizer steps in one epoch.</param>
/// <param name="TotalSteps">Optimizer steps in the whole fit.</param>
public readonly record struct SchedulePosition(long Step, long StepsPerEpoch, long TotalSteps);

/// <summary>
/// A learning-rate schedule: the peak rates (<see cref="Lr"/>) times a factor that depends on the position in the fit,
/// and optionally a momentum (SGD momentum or AdamW β1) to use at that position.
/// </summary>
public abstract class Schedule
{
    /// <summary>Creates a schedule with peak rates <paramref name="lr"/>.</summary>
    protected Schedule(LrSpec lr) => Lr = lr;

    /// <summary>Peak rates per parameter group.</summary>
    public LrSpec Lr { get; }

    /// <summary>Multiplier on <see cref="Lr"/> at <paramref name="at"/>.</summary>
    public abstract double Factor(SchedulePosition at);

    /// <summary>Momentum at <paramref name="at"/>, or null to leave the optimizer's own.</summary>
    public virtual double? Momentum(SchedulePosition at) => null;

    /// <summary>Called after each epoch's validation with that epoch's metrics (used by plateau schedules).</summary>
    public virtual void EpochEnded(IReadOnlyDictionary<string, double> metrics) { }

    /// <summary>Mutable state as JSON, for checkpoints (null when stateless).</summary>
    public virtual string? SaveState() => null;

    /// <summary>Restores state written by <see cref="SaveState"/>.</summary>
    public virtual void LoadState(string state) { }

    /// <summary>A fixed rate.</summary>
    public static Schedule Constant(LrSpec lr) => new ConstantSchedule(lr);

    /// <summary>
    /// One-cycle policy as in PyTorch's <c>OneCycleLR</c> (cosine annealing): the rate rises from max/<paramref name="divFactor"/>
    /// to max over the first <paramref name="pctStart"/> of the steps, then falls to max/(divFactor·<paramref name="finalDivFactor"/>);
    /// momentum moves the opposite way between <paramref name="maxMomentum"/> and <paramref name="baseMomentum"/>.
    /// </summary>
    public static Schedule OneCycle(LrSpec lr, double pctStart = 0.3, double divFactor = 25, double finalDivFactor = 1e4,
        double baseMomentum = 0.85, double maxMomentum = 0.95, bool cycleMomentum = true) =>
        new OneCycleSchedule(lr, pctStart, divFactor, finalDivFactor, baseMomentum, maxMomentum, cycleMomentum);

    /// <summary>Linear warm-up from 0 over <paramref name="warmupPct"/> of the steps, then cosine decay to <paramref name="minFactor"/>·lr.</summary>
    public static Schedule CosineWarmup(LrSpec lr, double warmupPct = 0.05, double minFactor = 0.0) => new CosineWarmupSchedule(lr, warmupPct, minFactor);

    /// <summary>Multiplies the rate by <paramref name="gamma"/> every <paramref name="everyEpochs"/> epochs.</summary>
    public static Schedule Step(LrSpec lr, int everyEpochs, double gamma = 0.1) => new StepSchedule(lr, everyEpochs, gamma);

    /// <summary>Multiplies the rate by <paramref name="factor"/> when <paramref name="monitor"/> has not improved for more than <paramref name="patience"/> epochs (PyTorch's ReduceLROnPlateau).</summary>
    public static Schedule ReduceOnPlateau(LrSpec lr, string monitor = "valid_loss", double factor = 0.1, int patience = 2,
        bool minimize = true, double threshold = 1e-4, double minFactor = 0) => new PlateauSchedule(lr, monitor, factor, patience, minimize, threshold, minFactor);

    internal static double CosineAnneal(double start, double end, double pct) => end + (start - end) / 2.0 * (Math.Cos(Math.PI * pct) + 1);

    private sealed class ConstantSchedule(LrSpec lr) : Schedule(lr)
    {
        public override double Factor(SchedulePosition at) => 1.0;
    }

    private sealed class OneCycleSchedule : Schedule
    {
        private readonly double _pctStart, _div, _finalDiv, _baseMom, _maxMom;
        private readonly bool _cycleMomentum;

        public OneCycleSchedule(LrSpec lr, double pctStart, double div, double finalDiv, double baseMom, double maxMom, bool cycle) : base(lr)
        {
            if (pctStart is <= 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(pctStart), pctStart, "pctStart must be in (0, 1).");
            if (div <= 0 || finalDiv <= 0) throw new ArgumentOutOfRangeException(nameof(div), "Division factors must be positive.");
            (_pctStart, _div, _finalDiv, _baseMom, _maxMom, _cycleMomentum) = (pctStart, div, finalDiv, baseMom, maxMom, cycle);
        }

        // Phase boundaries as in OneCycleLR: phase 1 ends at pct_start·total - 1, phase 2 at total - 1.
        private (double Pct, bool Rising) Where(SchedulePosition at)
        {
            double end1 = _pctStart * at.TotalSteps - 1, end2 = at.TotalSteps - 1;
            double step = Math.Min(at.Step, at.TotalSteps - 1);
            if (step <= end1) return (end1 <= 0 ? 1 : step / end1, true);
            double span = end2 - end1;
            return (span <= 0 ? 1 : (step - end1) / span, false);
        }

        public override double Factor(SchedulePosition at)
        {
            double initial = 1 / _div, min = initial / _finalDiv;
            var (pct, rising) = Where(at);
            return rising ? CosineAnneal(initial, 1, pct) : CosineAnneal(1, min, pct);
        }

        public override double? Momentum(SchedulePosition at)
        {
            if (!_cycleMomentum) return null;
            var (pct, rising) = Where(at);
            return rising ? CosineAnneal(_maxMom, _baseMom, pct) : CosineAnneal(_baseMom, _maxMom, pct);
        }
    }

    private sealed class CosineWarmupSchedule : Schedule
    {
        private readonly double _warmupPct, _minFactor;

        public CosineWarmupSchedule(LrSpec lr, double warmupPct, double minFactor) : base(lr)
        {
            if (warmupPct is < 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(warmupPct), warmupPct, "warmupPct must be in [0, 1).");
            (_warmupPct, _minFactor) = (warmupPct, minFactor);
        }

        public override double Factor(SchedulePosition at)
        {
            long warm = (long)Math.Round(_warmupPct * at.TotalSteps);
            if (at.Step < warm) return (at.Step + 1) / (double)warm;
            long rest = Math.Max(1, at.TotalSteps - warm);
            return CosineAnneal(1, _minFactor, Math.Min(1.0, (at.Step - warm) / (double)rest));
        }
    }

    private sealed class StepSchedule : Schedule
    {
        private readonly int _every;
        private readonly double _gamma;

        public StepSchedule(LrSpec lr, int every, double gamma) : base(lr)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(every, 1);
            (_every, _gamma) = (every, gamma);
        }

        public override double Factor(SchedulePosition at) => Math.Pow(_gamma, at.Step / Math.Max(1, at.StepsPerEpoch) / _every);
    }

    private sealed class PlateauSchedule : Schedule
    {
        private readonly string _monitor;
        private readonly double _factor, _threshold, _minFactor;
        private readonly int _patience;
        private readonly bool _minimize;
        private double _current = 1, _best = double.NaN;
        private int _bad;

        public PlateauSchedule(LrSpec lr, string monitor, double factor, int patience, bool minimize, double threshold, double minFactor) : base(lr)
        {
            if (factor is <= 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(factor), factor, "The reduction factor must be in (0, 1).");
            (_monitor, _factor, _patience, _minimize, _threshold, _minFactor) = (monitor, factor, patience, minimize, threshold, minFactor);
        }

        public override double Factor(SchedulePosition at) => _current;

        public override void EpochEnded(IReadOnlyDictionary<string, double> metrics)
        {
            if (!MetricKeys.TryGet(metrics, _monitor, out double v))
                throw new KeyNotFoundException($"ReduceOnPlateau monitors '{_monitor}', which this run does not log. Logged: {string.Join(", ", metrics.Keys)}.");
            // Relative threshold, as PyTorch's default threshold_mode='rel'.
            bool better = double.IsNaN(_best) || (_minimize ? v < _best * (1 - _threshold) : v > _best * (1 + _threshold));
            if (better) { _best = v; _bad = 0; return; }
            if (++_bad > _patience)
            {
                _current = Math.Max(_minFactor, _current * _factor);
                _bad = 0;
            }
        }

        public override string? SaveState() => JsonSerializer.Serialize(new double[] { _current, _best, _bad }, Json.Options);

        public override void LoadState(string state)
        {
            var a = JsonSerializer.Deserialize<double[]>(state, Json.Options) ?? throw new InvalidDataException("Plateau schedule state is empty.");
            (_current, _best, _bad) = (a[0], a[1], (int)a[2]);
        }
    }
}
