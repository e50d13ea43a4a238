using System.Diagnostics;
using ModelZoo.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.FineTune;

/// <summary>Measured wall times of one model on one machine, from <see cref="SpeedProbe.Measure"/>.</summary>
/// <param name="StepSeconds">Median seconds of one training step (loading the batch, forward, loss, backward, optimizer step).</param>
/// <param name="EvalSecondsPerItem">Seconds per item of an evaluation forward pass (eval mode, no gradients); NaN without evaluation data.</param>
/// <param name="StepsMeasured">Training steps timed (after the warm-up steps, which are not counted).</param>
/// <param name="ProbeSeconds">Wall time of the whole probe, warm-up and restoring included.</param>
/// <param name="FastestStepSeconds">The fastest timed step.</param>
/// <param name="SlowestStepSeconds">The slowest timed step.</param>
public sealed record SpeedMeasurement(double StepSeconds, double EvalSecondsPerItem, int StepsMeasured, double ProbeSeconds, double FastestStepSeconds, double SlowestStepSeconds);

/// <summary>
/// Times a few real training steps and evaluation batches of a model, then puts everything back: weights, buffers
/// (batch-norm statistics), the torch RNG state and the train/eval mode. What a time budget is planned from: like the
/// LR finder, it runs the real loader, loss and optimizer, so the numbers include data loading and the optimizer step.
/// </summary>
public static class SpeedProbe
{
    /// <summary>
    /// Runs <paramref name="warmupSteps"/> untimed and then up to <paramref name="steps"/> timed training steps on the
    /// first batches of <paramref name="train"/> (an optimizer of kind <paramref name="optimizer"/> over the trainable
    /// parameters, at a small rate), then one untimed and up to <paramref name="evalBatches"/> timed evaluation batches
    /// of <paramref name="valid"/>. The first steps of a process pay for kernel selection and allocation, hence the warm-up.
    /// With <paramref name="minSeconds"/>, timing goes on past <paramref name="steps"/> until the timed steps add up to
    /// that many seconds (or the loader ends): a few seconds of steps can catch a passing slowdown of a shared machine
    /// (measured: a 6-step probe once read 401 ms per step where the epoch that followed averaged 231 ms).
    /// </summary>
    /// <exception cref="InvalidOperationException">The training loader yields no batches, or every parameter is frozen.</exception>
    public static SpeedMeasurement Measure(ZooModel model, IEnumerable<Batch> train, IEnumerable<Batch>? valid, Loss loss, OptimizerSettings optimizer, Device device,
        int warmupSteps = 2, int steps = 4, int evalBatches = 2, double minSeconds = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(warmupSteps);
        ArgumentOutOfRangeException.ThrowIfLessThan(steps, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(evalBatches);
        ArgumentOutOfRangeException.ThrowIfNegative(minSeconds);
        var total = Stopwatch.StartNew();
        var stepTimes = new List<double>();
        double evalSeconds = 0;
        long evalItems = 0;
        using (new ModelStateGuard(model))
        {
            using var opt = TrainOptimizer.Create(model, model.ParameterGroups(), optimizer);
            var peaks = Enumerable.Repeat(1e-6, opt.ModelGroupCount).ToArray();
            opt.SetLr(peaks, 1);
            model.train();
            int seen = 0;
            double lastStep = 0, timed = 0;
            var clock = Stopwatch.StartNew();
            foreach (var raw in train)
            {
                if (seen >= warmupSteps + steps && timed >= minSeconds) { raw.Dispose(); break; }
                using (var scope = NewDisposeScope())
                {
                    var b = raw.To(device);
                    try
                    {
                        var value = loss.Mean(model.call(b.Input), b.Target);
                        value.backward();
                        opt.Step();
                        opt.ZeroGrad();
                        Synchronize(device);
                    }
                    finally
                    {
                        if (!ReferenceEquals(b, raw)) b.Dispose();
                        raw.Dispose();
                    }
                }
                lastStep = clock.Elapsed.TotalSeconds;
                if (seen++ >= warmupSteps) { stepTimes.Add(lastStep); timed += lastStep; }
                clock.Restart();
            }
            if (seen == 0) throw new InvalidOperationException("The training loader yielded no batches.");
            // A loader shorter than the warm-up: time what there was rather than nothing.
            if (stepTimes.Count == 0) stepTimes.Add(lastStep);

            if (valid is not null)
            {
                model.eval();
                using var noGrad = no_grad();
                int batches = 0;
                double firstSeconds = 0;
                long firstItems = 0;
                clock.Restart();
                foreach (var raw in valid)
                {
                    if (batches >= 1 + evalBatches) { raw.Dispose(); break; }
                    using (var scope = NewDisposeScope())
                    {
                        var b = raw.To(device);
                        try
                        {
                            _ = model.call(b.Input);
                            Synchronize(device);
                            if (batches == 0) { firstSeconds = clock.Elapsed.TotalSeconds; firstItems = b.Count; }
                            else { evalSeconds += clock.Elapsed.TotalSeconds; evalItems += b.Count; }
                        }
                        finally
                        {
                            if (!ReferenceEquals(b, raw)) b.Dispose();
                            raw.Dispose();
                        }
                    }
                    batches++;
                    clock.Restart();
                }
                // One batch in all: its time includes the warm-up, which overestimates (the safe side).
                if (evalItems == 0) (evalSeconds, evalItems) = (firstSeconds, firstItems);
            }
        }
        stepTimes.Sort();
        double median = stepTimes.Count % 2 == 1 ? stepTimes[stepTimes.Count / 2] : (stepTimes[stepTimes.Count / 2 - 1] + stepTimes[stepTimes.Count / 2]) / 2;
        return new SpeedMeasurement(median, evalItems > 0 ? evalSeconds / evalItems : double.NaN, stepTimes.Count, total.Elapsed.TotalSeconds, stepTimes[0], stepTimes[^1]);
    }

    private static void Synchronize(Device device)
    {
        if (device.type == DeviceType.CUDA) torch.cuda.synchronize(device);
    }
}
