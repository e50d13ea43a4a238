using ModelZoo.Data;
using ModelZoo.FineTune;
using static TorchSharp.torch;

namespace ModelZoo.Tests.FineTune;

public class FeatureCacheProbeTests
{
    [Fact]
    public void DeterminismProbeWorksOnLoadersThatDisposeTheirBatches()
    {
        using var scope = NewDisposeScope();
        var images = randint(0, 255, [32, 1, 8, 8]).to(ScalarType.Byte);
        var labels = randint(0, 3, [32]);
        using var fixedOrder = new TensorDataLoader(images, labels, batchSize: 8);
        Assert.True(FeatureCache.IsDeterministic(fixedOrder));
        using var shuffled = new TensorDataLoader(images, labels, batchSize: 8, shuffle: true, seed: 3);
        var noisy = shuffled.Select(b => b with { Input = b.Input.add(rand_like(b.Input)) });
        Assert.False(FeatureCache.IsDeterministic(noisy));
    }
}
