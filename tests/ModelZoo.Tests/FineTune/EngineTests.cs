using ModelZoo.Data;
using ModelZoo.FineTune;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.FineTune;

[Collection(TorchGlobalRng.Name)]
public class ScheduleTests
{
    // torch 1.13: OneCycleLR(SGD(momentum=0.9), max_lr=1.0, total_steps=10), lr and momentum before each step.
    private static readonly double[] TorchLr = [0.040000000000000036, 0.52, 1.0, 0.9504846320134737, 0.8117456539497631, 0.6112620219362893,
        0.38874197806371075, 0.18825834605023697, 0.049519367986526286, 4e-06];
    private static readonly double[] TorchMom = [0.95, 0.8999999999999999, 0.85, 0.854951556604879, 0.8688255099070633, 0.8888739533021842,
        0.9111260466978157, 0.9311744900929366, 0.945048443395121, 0.95];

    [Fact]
    public void OneCycleMatchesPyTorch()
    {
        var s = Schedule.OneCycle(1.0);
        for (int i = 0; i < 10; i++)
        {
            var at = new SchedulePosition(i, 5, 10);
            Assert.Equal(TorchLr[i], s.Factor(at), 12);
            Assert.Equal(TorchMom[i], s.Momentum(at)!.Value, 12);
        }
    }

    [Fact]
    public void ReduceOnPlateauMatchesPyTorch()
    {
        // torch 1.13: ReduceLROnPlateau(patience=1, factor=0.5) over these losses gives 1,1,1,.5,.5,.5,.25,.25.
        var s = Schedule.ReduceOnPlateau(1.0, factor: 0.5, patience: 1);
        double[] losses = [1.0, 0.9, 0.95, 0.96, 0.8, 0.85, 0.86, 0.87];
        double[] expected = [1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25];
        for (int i = 0; i < losses.Length; i++)
        {
            s.EpochEnded(new Dictionary<string, double> { ["valid_loss"] = losses[i] });
            Assert.Equal(expected[i], s.Factor(default));
        }
        var restored = Schedule.ReduceOnPlateau(1.0, factor: 0.5, patience: 1);
        restored.LoadState(s.SaveState()!);
        Assert.Equal(0.25, restored.Factor(default));
    }

    [Fact]
    public void CosineWarmupAndStepFollowTheirFormulas()
    {
        var c = Schedule.CosineWarmup(1.0, warmupPct: 0.1, minFactor: 0.0);
        Assert.Equal(0.1, c.Factor(new(0, 10, 100)), 12);
        Assert.Equal(1.0, c.Factor(new(9, 10, 100)), 12);
        Assert.Equal(1.0, c.Factor(new(10, 10, 100)), 12);
        Assert.Equal(0.5, c.Factor(new(55, 10, 100)), 12);
        var st = Schedule.Step(1.0, everyEpochs: 2, gamma: 0.1);
        Assert.Equal(1.0, st.Factor(new(19, 10, 100)), 12);
        Assert.Equal(0.1, st.Factor(new(20, 10, 100)), 12);
        Assert.Equal(0.01, st.Factor(new(45, 10, 100)), 12);
    }

    [Fact]
    public void LrSpecsSpreadRatesOverGroups()
    {
        Assert.Equal([1e-4, 1e-3, 1e-2], LrSpec.Slice(1e-4, 1e-2).ForGroups(3).Select(v => Math.Round(v, 12)));
        Assert.Equal([1e-3, 1e-3, 1e-2], LrSpec.Slice(1e-2).ForGroups(3));
        Assert.Equal([0.25, 0.5, 1.0], LrSpec.LayerDecay(1.0, 0.5).ForGroups(3));
        Assert.Equal([3e-3, 3e-3], ((LrSpec)3e-3).ForGroups(2));
        Assert.Throws<ArgumentOutOfRangeException>(() => LrSpec.Single(-1));
    }
}

[Collection(TorchGlobalRng.Name)]
public class OptimizerGroupTests
{
    [Fact]
    public void NormsAndBiasesGetNoWeightDecayAndGroupsFollowTheModel()
    {
        var model = new TinyCnn(4);
        using var opt = TrainOptimizer.Create(model, model.ParameterGroups(), OptimizerSettings.AdamW(weightDecay: 0.05));
        var names = model.named_parameters().ToDictionary(p => p.parameter.Handle, p => p.name);
        var groups = opt.Groups.Select(g => $"{g.Name}|{g.Decay}|{string.Join(",", g.Parameters.Select(p => names[p.Handle]))}").ToList();
        Assert.Equal(
        [
            "stem|True|conv1.weight", "stem.no_decay|False|bn1.weight,bn1.bias",
            "body|True|conv2.weight", "body.no_decay|False|bn2.weight,bn2.bias",
            "head|True|fc.weight", "head.no_decay|False|fc.bias",
        ], groups);
        Assert.Equal(3, opt.ModelGroupCount);
    }

    [Fact]
    public void FrozenParametersAreLeftOutAndDiscriminativeRatesApply()
    {
        var data = MemoryData.Synthetic(32, 16, 4);
        var model = new TinyCnn(4);
        var learner = new Learner(model, data.Shuffled(16, 1), null, options: new LearnerOptions { Quiet = true, Device = CPU });
        learner.Fit(1, Schedule.Constant(LrSpec.Slice(1e-4, 1e-2)));
        Assert.Equal([1e-4, 1e-4, 1e-3, 1e-3, 1e-2, 1e-2], learner.CurrentLrs.Select(v => Math.Round(v, 12)));
        model.FreezeBackbone();
        using var opt = TrainOptimizer.Create(model, model.ParameterGroups(), OptimizerSettings.Sgd());
        Assert.Equal(["head", "head.no_decay"], opt.Groups.Select(g => g.Name));
        model.Freeze();
        Assert.Contains("every parameter is frozen", Assert.Throws<InvalidOperationException>(() => TrainOptimizer.Create(model, model.ParameterGroups(), OptimizerSettings.Sgd())).Message);
    }

    [Fact]
    public void GradientAccumulationMatchesOneLargeBatch()
    {
        var data = MemoryData.Synthetic(64, 16, 4);
        var order = BatchOrder.Shuffled(64, 16, 9);
        Dictionary<string, float[]> Train(bool split)
        {
            manual_seed(4);
            var m = new TinyCnn(4);
            m.FreezeBackbone(); // frozen BatchNorm keeps eval statistics, so batch composition does not matter
            Func<int, IEnumerable<Batch>> src = split
                ? e => order(e).SelectMany(b => new[] { b[..8], b[8..] }).Select(data.Gather)
                : e => order(e).Select(data.Gather);
            new Learner(m, src, null, options: new LearnerOptions { Quiet = true, Device = CPU, AccumulationSteps = split ? 2 : 1, Optimizer = OptimizerSettings.Sgd(0.9) })
                .Fit(2, Schedule.Constant(0.05));
            return Weights.Snapshot(m);
        }
        double diff = Weights.MaxAbsDiff(Train(false), Train(true));
        Assert.True(diff < 1e-6, $"max |Δ| = {diff}");
    }
}

[Collection(TorchGlobalRng.Name)]
public class MetricTests
{
    private static Evaluation Example()
    {
        // targets 0,0,1,1,2,2; predictions 0,1,1,1,2,0 (argmax of one-hot-ish logits)
        int[] pred = [0, 1, 1, 1, 2, 0];
        var logits = new float[18];
        for (int i = 0; i < 6; i++) { logits[i * 3 + pred[i]] = 2; logits[i * 3 + (pred[i] + 1) % 3] = 1; }
        return new Evaluation(logits, 3, [0, 0, 1, 1, 2, 2], [0.1f, 2.0f, 0.2f, 0.3f, 0.1f, 3.0f], [10, 11, 12, 13, 14, 15]);
    }

    [Fact]
    public void ReportsMatchHandComputedValues()
    {
        var e = Example();
        Assert.Equal(4 / 6.0, e.Accuracy, 12);
        Assert.Equal(new int[,] { { 1, 1, 0 }, { 0, 2, 0 }, { 1, 0, 1 } }, e.ConfusionMatrix);
        var pc = e.PerClass();
        Assert.Equal([0.5, 2 / 3.0, 1.0], pc.Select(r => r.Precision));
        Assert.Equal([0.5, 1.0, 0.5], pc.Select(r => r.Recall));
        Assert.Equal(0.5, pc[0].F1, 12);
        Assert.Equal(0.8, pc[1].F1, 12);
        Assert.Equal(2 / 3.0, pc[2].F1, 12);
        Assert.Equal((0.5 + 0.8 + 2 / 3.0) / 3, e.MacroF1, 12);
        Assert.Equal([new ConfusedPair(0, 1, 1), new ConfusedPair(2, 0, 1)], e.MostConfused());
        // top-2: item 1 (target 0, logits [0,2,1]) misses; item 5 (target 2, logits [2,1,0]) misses.
        Assert.Equal(4 / 6.0, e.TopK(2), 12);
        Assert.Equal(1.0, e.TopK(3), 12);
        var top = e.TopLosses(2);
        Assert.Equal([15, 11], top.Select(t => t.Index));
        Assert.Equal((2, 0), (top[0].Actual, top[0].Predicted));
        Assert.Equal(Math.Exp(2) / (Math.Exp(2) + Math.Exp(1) + 1), top[0].Probability, 6);
        Assert.Contains("macro_f1", e.Report(["a", "b", "c"]));
        Assert.Equal(1 - e.Accuracy, Metric.ErrorRate().Compute(e), 12);
    }

    [Fact]
    public void SoftOneHotTargetsGiveTheSameLossAsClassIndices()
    {
        var logits = randn(5, 4);
        var y = tensor(new long[] { 0, 3, 1, 2, 3 });
        var soft = nn.functional.one_hot(y, 4).to(ScalarType.Float32);
        foreach (var eps in new[] { 0.0, 0.1 })
        {
            var l = Loss.CrossEntropy(eps);
            Assert.True(l.PerItem(logits, y).allclose(l.PerItem(logits, soft), rtol: 1e-5, atol: 1e-6), $"ε={eps}");
        }
        Assert.Equal(y.data<long>().ToArray(), Loss.HardTargets(soft).data<long>().ToArray());
    }

    [Fact]
    public void ClassWeightsScaleEachTargetClassAsPyTorchsWeightDoes()
    {
        var logits = randn(6, 3);
        var y = tensor(new long[] { 0, 1, 2, 2, 0, 1 });
        float[] w = [0.5f, 2f, 1.25f];
        var p = logits.softmax(1).data<float>().ToArray();
        foreach (var eps in new[] { 0.0, 0.2 })
        {
            // −Σₖ wₖ·tₖ·log pₖ with t = (1−ε)·one-hot + ε/K, written out by hand.
            var expected = Enumerable.Range(0, 6).Select(i => -Enumerable.Range(0, 3).Sum(k =>
                w[k] * ((k == y[i].item<long>() ? 1 - eps : 0) + eps / 3) * Math.Log(p[i * 3 + k]))).ToArray();
            var l = Loss.CrossEntropy(eps, w);
            var byIndex = l.PerItem(logits, y).to(ScalarType.Float64).data<double>().ToArray();
            var bySoft = l.PerItem(logits, nn.functional.one_hot(y, 3).to(ScalarType.Float32)).to(ScalarType.Float64).data<double>().ToArray();
            for (int i = 0; i < 6; i++)
            {
                Assert.Equal(expected[i], byIndex[i], 4);
                Assert.Equal(expected[i], bySoft[i], 4);
            }
        }
        Assert.Throws<ArgumentException>(() => Loss.CrossEntropy(0, [1f, 1f]).PerItem(logits, y));
        Assert.Throws<ArgumentOutOfRangeException>(() => Loss.CrossEntropy(0, [1f, -1f, 1f]));
    }

    [Fact]
    public void BalancedClassWeightsGiveEveryClassTheSameTotalAndAverageOnePerItem()
    {
        var w = Loss.BalancedClassWeights([600, 60, 12, 0]);
        Assert.Equal(672 / (4.0 * 600), w[0], 5);
        Assert.Equal(672 / (4.0 * 12), w[2], 5);
        Assert.Equal(0f, w[3]);
        Assert.Equal(600 * w[0], 12 * w[2], 2);
        Assert.Equal(672.0 * 3 / 4, 600 * w[0] + 60 * w[1] + 12 * w[2], 2); // three of four classes present: 3/4 of N
        Assert.Throws<ArgumentException>(() => Loss.BalancedClassWeights([0, 0]));
    }
}

[Collection(TorchGlobalRng.Name)]
public class CallbackTests
{
    private sealed class Recorder(string name, int order, List<string> log, Action<Learner, string>? act = null) : Callback
    {
        public override int Order => order;
        private void R(Learner l, string e) { log.Add($"{name}:{e}"); act?.Invoke(l, e); }
        public override void BeforeFit(Learner l) => R(l, "BeforeFit");
        public override void AfterFit(Learner l) => R(l, "AfterFit");
        public override void BeforeEpoch(Learner l) => R(l, "BeforeEpoch");
        public override void AfterEpoch(Learner l) => R(l, "AfterEpoch");
        public override void BeforeTrain(Learner l) => R(l, "BeforeTrain");
        public override void AfterTrain(Learner l) => R(l, "AfterTrain");
        public override void BeforeValidate(Learner l) => R(l, "BeforeValidate");
        public override void AfterValidate(Learner l) => R(l, "AfterValidate");
        public override void BeforeBatch(Learner l) => R(l, "BeforeBatch");
        public override void BeforeBackward(Learner l) => R(l, "BeforeBackward");
        public override void AfterBackward(Learner l) => R(l, "AfterBackward");
        public override void BeforeStep(Learner l) => R(l, "BeforeStep");
        public override void AfterStep(Learner l) => R(l, "AfterStep");
        public override void AfterBatch(Learner l) => R(l, "AfterBatch");
    }

    private static Learner Make(MemoryData d, IEnumerable<Batch>? valid = null, IReadOnlyList<Callback>? cbs = null) =>
        new(new TinyCnn(4), _ => d.Sequential(16), valid, metrics: [Metric.Accuracy()],
            options: new LearnerOptions { Quiet = true, Device = CPU, Callbacks = cbs ?? [] });

    [Fact]
    public void EventsRunInOrderAndCallbacksByOrder()
    {
        var d = MemoryData.Synthetic(16, 16, 4);
        var log = new List<string>();
        var l = Make(d, d.Sequential(16), [new Recorder("late", 5, log), new Recorder("early", -5, log)]);
        l.Fit(1);
        Assert.Equal(["BeforeFit", "BeforeEpoch", "BeforeTrain", "BeforeBatch", "BeforeBackward", "AfterBackward", "BeforeStep", "AfterStep",
            "AfterBatch", "AfterTrain", "BeforeValidate", "AfterValidate", "AfterEpoch", "AfterFit"],
            log.Where(s => s.StartsWith("early:")).Select(s => s[6..]));
        Assert.Equal(log.Count(s => s.StartsWith("early:")), log.Count(s => s.StartsWith("late:")));
        for (int i = 0; i < log.Count; i += 2) Assert.StartsWith("early:", log[i]);
        Assert.True(l.EpochMetrics.ContainsKey("accuracy") && l.EpochMetrics.ContainsKey("valid_loss"));
    }

    [Fact]
    public void CancelBatchSkipsItsStepCancelEpochSkipsTheRestAndCancelFitEnds()
    {
        var d = MemoryData.Synthetic(64, 16, 4);
        var log = new List<string>();
        var l = Make(d, null, [new Recorder("r", 0, log, (l, e) =>
        {
            if (e == "BeforeBackward" && l.Epoch == 0 && l.Iteration == 1) throw new CancelBatchException();
            if (e == "BeforeBatch" && l.Epoch == 1 && l.Iteration == 2) throw new CancelEpochException();
            if (e == "BeforeEpoch" && l.Epoch == 2) throw new CancelFitException();
        })]);
        l.Fit(5);
        Assert.Equal(3 + 2, l.GlobalStep);
        Assert.Equal(2, l.History.Count);
        Assert.Equal("r:AfterFit", log[^1]);
    }

    [Fact]
    public void EarlyStoppingStopsAfterPatienceEpochsWithoutImprovement()
    {
        var d = MemoryData.Synthetic(16, 16, 4);
        var stop = new EarlyStopping("const", patience: 2);
        var l = new Learner(new TinyCnn(4), _ => d.Sequential(16), d.Sequential(16), metrics: [Metric.Custom("const", false, _ => 1.0)],
            options: new LearnerOptions { Quiet = true, Device = CPU });
        l.Fit(10, callbacks: [stop]);
        Assert.Equal(3, l.History.Count);
        Assert.Equal(2, stop.StoppedEpoch);
    }

    [Fact]
    public void EmaWithDecayZeroEqualsTheWeights()
    {
        var d = MemoryData.Synthetic(32, 16, 4);
        var ema = new EmaWeights(decay: 0.0);
        var model = new TinyCnn(4);
        new Learner(model, _ => d.Sequential(16), null, options: new LearnerOptions { Quiet = true, Device = CPU, Callbacks = [ema] }).Fit(1, Schedule.Constant(1e-2));
        var copy = new TinyCnn(4);
        ema.CopyTo(copy);
        Weights.AssertBitIdentical(Weights.Snapshot(model), Weights.Snapshot(copy));
    }

    [Fact]
    public void TimingAnEmaUpdateLeavesTheModelAndTheAverageAlone()
    {
        var d = MemoryData.Synthetic(32, 16, 4);
        var ema = new EmaWeights(decay: 0.5);
        var model = new TinyCnn(4);
        new Learner(model, _ => d.Sequential(16), null, options: new LearnerOptions { Quiet = true, Device = CPU, Callbacks = [ema] }).Fit(1, Schedule.Constant(1e-2));
        var weights = Weights.Snapshot(model);
        var averaged = new TinyCnn(4);
        ema.CopyTo(averaged);
        var average = Weights.Snapshot(averaged);
        Assert.True(ema.TimeOneUpdate(model) > 0);
        Weights.AssertBitIdentical(weights, Weights.Snapshot(model));
        ema.CopyTo(averaged);
        Weights.AssertBitIdentical(average, Weights.Snapshot(averaged));
    }

    [Fact]
    public void FindLrReturnsACurveAndRestoresTheWeights()
    {
        var d = MemoryData.Synthetic(64, 16, 4);
        var model = new TinyCnn(4);
        var l = new Learner(model, _ => d.Sequential(16), null, options: new LearnerOptions { Quiet = true, Device = CPU });
        var before = Weights.Snapshot(model);
        using var rngBefore = random.get_rng_state();
        var r = l.FindLr(1e-6, 10, numIterations: 40);
        Weights.AssertBitIdentical(before, Weights.Snapshot(model));
        using var rngAfter = random.get_rng_state();
        Assert.True(rngBefore.equal(rngAfter).all().item<bool>());
        Assert.Equal(r.Lrs.Count, r.Losses.Count);
        Assert.True(r.Lrs.Count >= 10);
        Assert.Equal(1e-6, r.Lrs[0], 12);
        Assert.All(r.Lrs.Zip(r.Lrs.Skip(1)), p => Assert.True(p.Second > p.First));
        Assert.InRange(r.Suggested, 1e-6, 10);
        Assert.InRange(r.Steepest, 1e-6, 10);
    }

    [Fact]
    public void MetricsFilesGetOneRowPerEpoch()
    {
        var d = MemoryData.Synthetic(16, 16, 4);
        string dir = Path.Combine(Path.GetTempPath(), "zoo-ft-log-" + Guid.NewGuid().ToString("N"));
        try
        {
            var l = new Learner(new TinyCnn(4), _ => d.Sequential(16), d.Sequential(16), metrics: [Metric.Accuracy()],
                options: new LearnerOptions { Quiet = true, Device = CPU, RunFolder = dir });
            l.Fit(2);
            var csv = File.ReadAllLines(Path.Combine(dir, "metrics.csv"));
            Assert.Equal("epoch,train_loss,valid_loss,accuracy,lr,time_s", csv[0]);
            Assert.Equal(3, csv.Length);
            var jsonl = File.ReadAllLines(Path.Combine(dir, "metrics.jsonl"));
            Assert.Equal(2, jsonl.Length);
            using var doc = System.Text.Json.JsonDocument.Parse(jsonl[1]);
            Assert.Equal(2, doc.RootElement.GetProperty("epoch").GetDouble());
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}

[Collection(TorchGlobalRng.Name)]
public class ProgressTests
{
    [Fact]
    public async Task ProgressBarModeTrainsWithoutHangingAndPrintsEpochLines()
    {
        var d = MemoryData.Synthetic(32, 16, 4);
        var output = new StringWriter();
        var l = new Learner(new TinyCnn(4), _ => d.Sequential(8), d.Sequential(16), metrics: [Metric.Accuracy()],
            options: new LearnerOptions { Device = CPU, Output = output, ProgressBar = true });
        await Task.Run(() => l.Fit(2)).WaitAsync(TimeSpan.FromSeconds(120));
        Assert.Equal(2, l.History.Count);
        Assert.Equal(2, output.ToString().Split('\n').Count(s => s.StartsWith("epoch ", StringComparison.Ordinal)));
    }
}

[Collection(TorchGlobalRng.Name)]
public class FineTuneCacheTests
{
    [Fact]
    public void FineTuneWithAutoCacheTrainsTheHeadOnCachedFeaturesThenEverything()
    {
        var d = MemoryData.Synthetic(64, 16, 4);
        manual_seed(2);
        var model = new TinyCnn(4);
        var init = Weights.Snapshot(model);
        var output = new StringWriter();
        var l = new Learner(model, d.Shuffled(16, 1), d.Sequential(32), metrics: [Metric.Accuracy()],
            options: new LearnerOptions { Device = CPU, Output = output, ProgressBar = false });
        l.FineTune(1, freezeEpochs: 1, baseLr: 1e-2, featureCache: FeatureCacheMode.Auto);
        Assert.Contains("Feature cache: 64 items × 16 features", output.ToString());
        Assert.Equal(2, l.History.Count);
        var after = Weights.Snapshot(model);
        Assert.True(Weights.MaxAbsDiff(init, after, k => k.StartsWith("conv1.", StringComparison.Ordinal)) > 0); // phase 2 trained the backbone
        Assert.All(model.parameters(), p => Assert.True(p.requires_grad));
    }
}
