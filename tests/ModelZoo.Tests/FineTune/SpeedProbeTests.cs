using ModelZoo.FineTune;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.FineTune;

[Collection(TorchGlobalRng.Name)]
public class SpeedProbeTests
{
    [Fact]
    public void MeasuresStepsAndEvaluationThenRestoresWeightsStatisticsRngAndMode()
    {
        var data = MemoryData.Synthetic(64);
        using var model = new TinyCnn(numClasses: 4, dropout: 0.3);
        model.eval();
        var before = Weights.Snapshot(model);
        var rngBefore = torch.random.get_rng_state().data<byte>().ToArray();
        var speed = SpeedProbe.Measure(model, data.Shuffled(8, seed: 1)(0), data.Sequential(8), Loss.CrossEntropy(), OptimizerSettings.AdamW(0.01), CPU,
            warmupSteps: 1, steps: 3, evalBatches: 2);
        Assert.Equal(3, speed.StepsMeasured);
        Assert.True(speed.StepSeconds > 0 && double.IsFinite(speed.StepSeconds), $"step {speed.StepSeconds}");
        Assert.True(speed.EvalSecondsPerItem > 0 && double.IsFinite(speed.EvalSecondsPerItem), $"eval {speed.EvalSecondsPerItem}");
        Assert.True(speed.ProbeSeconds >= 3 * speed.StepSeconds);
        // Training steps moved the weights and batch-norm statistics and drew dropout masks; all of it is undone.
        Weights.AssertBitIdentical(before, Weights.Snapshot(model));
        Assert.Equal(rngBefore, torch.random.get_rng_state().data<byte>().ToArray());
        Assert.False(model.training);
        // No gradient is left behind to leak into the first real step.
        Assert.All(model.parameters(), p => Assert.True(p.grad is null || p.grad.abs().max().item<float>() == 0));
    }

    [Fact]
    public void ALoaderShorterThanTheWarmUpIsStillTimedAndNoEvaluationDataGivesNaN()
    {
        var data = MemoryData.Synthetic(8);
        using var model = new TinyCnn(numClasses: 4);
        var speed = SpeedProbe.Measure(model, data.Sequential(8), null, Loss.CrossEntropy(), OptimizerSettings.Sgd(0.9), CPU);
        Assert.Equal(1, speed.StepsMeasured);
        Assert.True(speed.StepSeconds > 0);
        Assert.True(double.IsNaN(speed.EvalSecondsPerItem));
        Assert.Throws<InvalidOperationException>(() => SpeedProbe.Measure(model, [], null, Loss.CrossEntropy(), OptimizerSettings.Sgd(0.9), CPU));
    }

    [Fact]
    public void MinSecondsKeepsTimingPastTheStepCountUntilTheLoaderEnds()
    {
        var data = MemoryData.Synthetic(64);
        using var model = new TinyCnn(numClasses: 4);
        var few = SpeedProbe.Measure(model, data.Sequential(8), null, Loss.CrossEntropy(), OptimizerSettings.Sgd(0.9), CPU, warmupSteps: 1, steps: 2);
        Assert.Equal(2, few.StepsMeasured);
        // Far more seconds asked for than 8 tiny batches take: every batch after the warm-up is timed, then the probe stops.
        var all = SpeedProbe.Measure(model, data.Sequential(8), null, Loss.CrossEntropy(), OptimizerSettings.Sgd(0.9), CPU, warmupSteps: 1, steps: 2, minSeconds: 1000);
        Assert.Equal(7, all.StepsMeasured);
        Assert.Throws<ArgumentOutOfRangeException>(() => SpeedProbe.Measure(model, data.Sequential(8), null, Loss.CrossEntropy(), OptimizerSettings.Sgd(0.9), CPU, minSeconds: -1));
    }
}
