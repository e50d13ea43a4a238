using System.Diagnostics;
using Xunit.Abstractions;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Zoo;

/// <summary>
/// Every catalog entry, untouched by new families: builds with default options, parameter count equals the entry's,
/// output shape at the model's dry-run input (batch 2), no NaN, a gradient on every trainable parameter, the head
/// replaced by itself changes nothing, <c>ReplaceHead(0)</c> gives <c>NumFeatures</c>.
/// Entries above <see cref="HeavyParameters"/> parameters run under the trait Category=Heavy (still part of the full run).
/// </summary>
public class CatalogSweepTests(ITestOutputHelper output)
{
    /// <summary>Entries with more parameters than this are in the Heavy category.</summary>
    public const long HeavyParameters = 30_000_000;

    public static TheoryData<string> Light() => new(global::ModelZoo.Zoo.Catalog.Entries.Where(e => e.ParameterCount <= HeavyParameters).Select(e => e.Name));
    public static TheoryData<string> Heavy() => new(global::ModelZoo.Zoo.Catalog.Entries.Where(e => e.ParameterCount > HeavyParameters).Select(e => e.Name));

    [Theory]
    [MemberData(nameof(Light))]
    public void EntryBuildsRunsAndTrains(string name) => Check(name);

    [Theory]
    [Trait("Category", "Heavy")]
    [MemberData(nameof(Heavy))]
    public void HeavyEntryBuildsRunsAndTrains(string name) => Check(name);

    [Fact]
    public void EveryEntryIsSwept() =>
        Assert.Equal(global::ModelZoo.Zoo.Catalog.Entries.Count, Light().Count + Heavy().Count);

    private void Check(string name)
    {
        var sw = Stopwatch.StartNew();
        using var scope = NewDisposeScope();
        var entry = global::ModelZoo.Zoo.Catalog.Get(name);
        using var model = global::ModelZoo.Zoo.Create(name);
        Assert.Equal(entry.ParameterCount, model.CountParameters());
        Assert.Equal(entry.Name, model.Entry?.Name);

        var x = cat([model.SampleInput(), model.SampleInput()], 0);
        void CheckOutput(Tensor y, long width)
        {
            switch (entry.Task)
            {
                case ModelTask.Vision:
                    Assert.Equal([2, width], y.shape);
                    break;
                default:
                    Assert.Equal(2, y.shape[0]);
                    Assert.Equal(width, y.shape[^1]);
                    break;
            }
            Assert.False(y.isnan().any().item<bool>(), $"{name}: NaN in the output");
        }

        model.train();
        var y = model.call(x);
        CheckOutput(y, model.NumClasses == 0 ? model.NumFeatures : model.NumClasses);   // 0 classes = identity head (text encoders' default)
        y.square().mean().backward();
        foreach (var (p, t) in model.named_parameters())
        {
            if (!t.requires_grad) continue;
            Assert.True(t.grad is not null, $"{name}: no gradient for {p}");
            Assert.False(t.grad!.isnan().any().item<bool>(), $"{name}: NaN gradient for {p}");
        }

        model.eval();
        using (no_grad())
        {
            var before = model.call(x);
            model.Replace(model.HeadPath, (nn.Module<Tensor, Tensor>)model.Get(model.HeadPath));
            Assert.True(before.allclose(model.call(x)), $"{name}: replacing the head by itself changed the output");
            model.ReplaceHead(0);
            CheckOutput(model.call(x), model.NumFeatures);
        }
        output.WriteLine($"{name}: {sw.Elapsed.TotalSeconds:0.0} s");
    }
}
