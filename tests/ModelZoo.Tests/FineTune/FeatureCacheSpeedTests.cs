using System.Diagnostics;
using ModelZoo.FineTune;
using static TorchSharp.torch;

namespace ModelZoo.Tests.FineTune;

[Collection(TorchGlobalRng.Name)]
public class FeatureCacheSpeedTests
{
    /// <summary>
    /// A frozen resnet50 (random weights, 64 px inputs, 48 items): one epoch of head training through the backbone vs
    /// one epoch on cached features. Prints the measured ratio (docs/finetune.md quotes it); asserts a loose floor
    /// because this machine's CPU is shared.
    /// </summary>
    [Fact]
    public void CachedHeadEpochsAreMuchFasterForAFrozenResNet50()
    {
        var data = MemoryData.Synthetic(48, 64, 10);
        var rgb = new MemoryData(data.Images.expand(-1, 3, -1, -1).contiguous().DetachFromDisposeScope(), data.Labels);
        var order = BatchOrder.Shuffled(rgb.Count, 16, 1);
        var model = ModelZoo.Zoo.Create("resnet50", new ModelOptions(NumClasses: 10));
        model.FreezeBackbone();
        var options = new LearnerOptions { Quiet = true, Device = CPU };

        var plain = new Learner(model, e => order(e).Select(rgb.Gather), null, options: options);
        plain.Fit(1, Schedule.Constant(1e-3)); // warm-up
        var sw = Stopwatch.StartNew();
        plain.Fit(1, Schedule.Constant(1e-3));
        double uncached = sw.Elapsed.TotalSeconds;

        sw.Restart();
        using var cache = FeatureCache.Build(model, rgb.Sequential(16), new FeatureCacheOptions(BatchSize: 16, Order: order));
        double build = sw.Elapsed.TotalSeconds;
        var cached = new Learner(model, e => order(e).Select(rgb.Gather), null, options: options);
        using (cached.UseFeatureCache(cache))
        {
            cached.Fit(1, Schedule.Constant(1e-3)); // warm-up
            sw.Restart();
            cached.Fit(3, Schedule.Constant(1e-3));
        }
        double perCachedEpoch = sw.Elapsed.TotalSeconds / 3;
        double ratio = uncached / perCachedEpoch;
        Console.WriteLine($"resnet50 frozen, 48 items at 64 px: uncached epoch {uncached:F3}s, cache build {build:F3}s, cached epoch {perCachedEpoch * 1000:F2}ms, speed-up {ratio:F0}x");
        Assert.True(ratio >= 5, $"speed-up only {ratio:F1}x (uncached {uncached:F3}s, cached {perCachedEpoch:F4}s)");
    }
}
