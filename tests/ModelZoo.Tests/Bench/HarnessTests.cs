using ModelZoo.Bench;

namespace ModelZoo.Tests.Bench;

/// <summary>The benchmark harness (bench/ModelZoo.Bench) works: arms alternate, tables carry medians and ratios, every arm kind runs a real step.</summary>
public class HarnessTests
{
    [Fact]
    public void ArmsAlternateRoundByRoundAndTheTableCarriesMediansAndRatios()
    {
        var calls = new List<string>();
        Arm Fake(string name, double seconds) => new(name, n => { calls.Add($"{name}{n}"); return Enumerable.Repeat(seconds, n).ToArray(); });
        var res = Alternation.Run([Fake("A", 0.1), Fake("B", 0.2)], rounds: 3, units: 4, TextWriter.Null);
        Assert.Equal(["A2", "B2", "A4", "B4", "A4", "B4", "A4", "B4"], calls);   // warm-up round (min(units, 2)), then A,B,A,B,…
        Assert.Equal(0.1, res[0].Median, 12);
        Assert.Equal(0.2, res[1].Median, 12);
        var table = Alternation.Table("t", res, itemsPerUnit: 8);
        Assert.Contains("| A | 100.0 | 80.0 |", table);
        Assert.Contains("| B | 200.0 | 40.0 |", table);
        Assert.Contains("speed ratio A / B = **2.000**", table);
        Assert.Equal(2.5, Stats.Median([4, 1, 2, 3]));
    }

    /// <summary>The smoke run of the train-step comparison: Learner, raw TorchSharp and the Python worker each run real steps of a tiny resnet18.</summary>
    [Fact]
    public void TrainStepArmsRunSideBySideIncludingThePythonWorker()
    {
        var w = Workload.Parse("resnet18", batch: 2, size: 16);
        using var py = new PyWorker(threads: 1);
        Assert.StartsWith("1.", py.Info["torch"]!.GetValue<string>());
        var arms = new List<Arm> { ModelArms.Learner(w), ModelArms.RawTrain(w), py.Arm("python", w.PySetup("train")) };
        try
        {
            var res = Alternation.Run(arms, rounds: 1, units: 2, TextWriter.Null);
            Assert.All(res, r => Assert.True(r.Median > 0 && double.IsFinite(r.Median), $"{r.Name}: {r.Median}"));
            var table = Alternation.Table("smoke", res, w.Batch);
            Assert.Contains("speed ratio toolkit Learner / raw TorchSharp", table);
            Assert.Contains("speed ratio toolkit Learner / python", table);
        }
        finally
        {
            foreach (var a in arms) a.Owner?.Dispose();
        }
    }
}

/// <summary>The short, seeded version of the 2,000-step memory soak (scripts/bench.sh soak): no live-tensor growth.</summary>
[Collection("TensorCounting")]
public class SoakTests
{
    [Fact]
    public void TwoHundredLearnerStepsLeaveTheLiveTensorCountFlat()
    {
        var rows = Soak.Run("squeezenet1_1", steps: 200, every: 50, size: 32, batch: 4, seed: 7, collect: true);
        Assert.Equal([1, 50, 100, 150, 200], rows.Select(r => r.Step));
        // From the first step on (optimizer state created), with finalizers run before each sample, the number of live
        // tensors must not change at all.
        var afterFirst = rows.Skip(1).Select(r => r.LiveTensors).Distinct().ToList();
        Assert.True(afterFirst.Count == 1, $"live tensors changed during the run: {string.Join(", ", rows.Select(r => $"{r.Step}:{r.LiveTensors}"))}");
        Assert.Equal(rows[1].LiveTensors, rows[0].LiveTensors);
        var (_, tensorDrift) = Soak.Drift(rows, warmup: 50);
        Assert.Equal(0, tensorDrift);
    }
}
