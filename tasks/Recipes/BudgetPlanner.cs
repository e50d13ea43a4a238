using System.Diagnostics;
using ModelZoo.Data;
using ModelZoo.FineTune;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tasks.Recipes;

/// <summary>
/// Turns <c>train.budget</c> into a number of epochs: times a few real training steps and evaluation batches
/// (<see cref="SpeedProbe"/>), adds what the run spends outside the training steps (validation after every epoch,
/// checkpoint writes, the weight average, the final evaluation with its test-time views), and plans as many whole epochs
/// as fit. The recipe is rewritten to the plan: <c>train.epochs</c> is the planned number, <c>train.budget</c> is cleared
/// and <c>train.time_budget_seconds</c> becomes a safety stop, so the run folder's recipe.yaml replays (and resumes) the
/// run without measuring again.
/// </summary>
internal static class BudgetPlanner
{
    /// <summary>The most epochs a budget plans; a dataset that small is better served by a smaller budget.</summary>
    public const int MaxEpochs = 100;

    /// <summary>Of the time left for training, the share the planned epochs may fill (the rest absorbs a busier machine).</summary>
    public const double Fill = 0.92;

    /// <summary>
    /// Seconds of timed training steps the speed probe gathers for a budget: 1 % of it, at most a minute. Six timed steps
    /// (2.4 s on a 2-core CPU) once read a step 1.7× slower than the epochs that followed, which planned 35 epochs for a
    /// budget that fits 58; a longer window lets the median ride out such a stretch.
    /// </summary>
    public static double ProbeSeconds(double budgetSeconds) => Math.Clamp(budgetSeconds * 0.01, 0, 60);

    /// <summary>Plans <paramref name="r"/>'s epochs for its budget and returns the line that explains the plan.</summary>
    public static string Plan(Recipe r, ZooModel model, IReadOnlyCollection<Batch> train, IEnumerable<Batch>? valid, int batchSize, int validItems, int testItems,
        Loss loss, OptimizerSettings optimizer, Device device, Stopwatch runClock, int ttaPasses, TextWriter log)
    {
        var t = r.Train;
        double budget = DurationText.TryParseSeconds(t.Budget!) ?? throw new RecipeException($"train.budget '{t.Budget}' is not a duration (write 90s, 30m, 2h or 1h30m).");
        string text = DurationText.Format(budget);
        t.Budget = null;
        int stepsPerEpoch = train.Count;
        bool cachedProbe = t.Mode == "linear-probe" && r.Data.Augment.Count == 0 && t.FeatureCache != "off";
        if (cachedProbe)
        {
            // One pass of feature extraction is the whole cost; the head's epochs on cached features take milliseconds.
            t.TimeBudgetSeconds = Math.Max(1, (int)(budget - runClock.Elapsed.TotalSeconds));
            return $"budget {text}: a linear probe on cached features spends its time in one feature pass, so the {t.Epochs} epoch(s) stay; training stops at {t.TimeBudgetSeconds}s if it runs over";
        }

        if (t.Mode == "linear-probe") model.FreezeBackbone();
        SpeedMeasurement speed;
        try
        {
            speed = SpeedProbe.Measure(model, train, valid, loss, optimizer, device, warmupSteps: 4, steps: 6, minSeconds: ProbeSeconds(budget));
        }
        finally
        {
            if (t.Mode == "linear-probe") model.Unfreeze();
        }
        double emaSeconds = t.Ema > 0 ? new EmaWeights(t.Ema).TimeOneUpdate(model) : 0;
        double step = speed.StepSeconds + emaSeconds;
        double eval = double.IsNaN(speed.EvalSecondsPerItem) ? speed.StepSeconds / batchSize / 3 : speed.EvalSecondsPerItem;
        // best.ckpt and last.ckpt after every epoch: the weights and, in last.ckpt, the optimizer's two moments.
        long weightBytes = model.parameters().Sum(p => p.NumberOfElements * p.ElementSize);
        double checkpointSeconds = 4.0 * weightBytes / 200e6;
        double epoch = stepsPerEpoch * step + validItems * eval + checkpointSeconds;
        // At the end: choosing between averaged and trained weights (two validation passes), the validation pass with
        // the test-time views and without, and the test set with its views; 10s for checkpoints and the report.
        double reserve = eval * ((t.Ema > 0 ? 2 : 0) * validItems + (ttaPasses + (ttaPasses > 1 ? 1 : 0)) * validItems + ttaPasses * testItems) + 10;
        double spent = runClock.Elapsed.TotalSeconds;
        // train.lr 0 runs the LR finder first: up to 100 steps.
        double finder = t.Lr <= 0 ? 100 * speed.StepSeconds : 0;
        double left = budget - spent - finder - reserve;
        int epochs = (int)Math.Floor(left * Fill / epoch);
        int frozen = t.Mode == "fastai" ? t.FreezeEpochs : 0;
        string fitNote;
        if (epochs - frozen >= 1)
        {
            // fastai's frozen epochs train the head only and take less; counting them as full ones leaves a margin.
            int planned = Math.Min(MaxEpochs, epochs - frozen);
            fitNote = $"{planned} epoch(s) planned{(frozen > 0 ? $" after {frozen} frozen" : "")}{(planned == MaxEpochs ? $" (the most a budget plans; the budget would allow {epochs - frozen})" : "")}";
            t.Epochs = planned;
        }
        else
        {
            fitNote = $"not even one epoch fits the {Math.Max(0, left):F0}s left, so 1 epoch is planned and training stops early at the budget; give a larger budget, a smaller data.image_size or data.limit";
            t.Epochs = 1;
        }
        t.TimeBudgetSeconds = Math.Max(1, (int)(budget - reserve));
        var line = $"budget {text}: a training step takes {step * 1000:F0} ms (median of {speed.StepsMeasured} after warm-up, {speed.FastestStepSeconds * 1000:F0}–{speed.SlowestStepSeconds * 1000:F0} ms{(emaSeconds > 0 ? $", weight average {emaSeconds * 1000:F0} ms included" : "")}), " +
            $"evaluation {eval * 1000:F2} ms per item → one epoch ≈ {epoch:F0}s ({stepsPerEpoch:N0} steps, {validItems:N0} validation items); " +
            $"{spent:F0}s spent on setup and measuring{(finder > 0 ? $", ~{finder:F0}s for the LR finder" : "")}, {reserve:F0}s kept for the final evaluation; {fitNote}; training stops at {t.TimeBudgetSeconds}s if it runs slower than measured";
        log.WriteLine(line);
        return line;
    }
}
