using ModelZoo.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Data;

/// <summary>Per-item shifts and erasing on whole batches (the in-memory image path) and their single-image twins.</summary>
public class BatchAugmentTests
{
    /// <summary>N images of one bright pixel at (row 10, column 12) on zeros.</summary>
    private static Tensor Dots(int n)
    {
        var x = zeros(n, 1, 28, 28);
        x[.., 0, 10, 12] = tensor(1f);
        return x;
    }

    [Fact]
    public void ShiftsMoveEachItemByItsOwnOffsetWithinThePadding()
    {
        using var scope = NewDisposeScope();
        var shifted = BatchAugment.RandomShift(Dots(64), padding: 3, new Random(1));
        Assert.Equal(new long[] { 64, 1, 28, 28 }, shifted.shape);
        var offsets = new HashSet<(long, long)>();
        for (int i = 0; i < 64; i++)
        {
            var item = shifted[i, 0];
            Assert.Equal(1f, item.sum().item<float>(), 5);
            var flat = item.flatten().argmax().item<long>();
            long dy = flat / 28 - 10, dx = flat % 28 - 12;
            Assert.InRange(dy, -3, 3);
            Assert.InRange(dx, -3, 3);
            offsets.Add((dy, dx));
        }
        Assert.True(offsets.Count > 10, $"64 items took only {offsets.Count} distinct offsets");
    }

    [Fact]
    public void ShiftsRepeatTheBorderSoAConstantImageStaysConstant()
    {
        using var scope = NewDisposeScope();
        var x = full(8, 3, 16, 16, 0.25f);
        var shifted = BatchAugment.RandomShift(x, padding: 2, new Random(3));
        Assert.True(shifted.allclose(x));
        var single = new RandomShift(2).Apply(new ImageTensor(Enumerable.Repeat(0.25f, 3 * 16 * 16).ToArray(), 3, 16, 16, 0), new Random(3));
        Assert.All(single.Data, v => Assert.Equal(0.25f, v));
    }

    [Fact]
    public void SingleImageShiftMovesTheDotWithinThePadding()
    {
        var data = new float[28 * 28];
        data[10 * 28 + 12] = 1;
        var rng = new Random(7);
        var moved = 0;
        for (int k = 0; k < 20; k++)
        {
            var t = RandomShift.ForSize(28).Apply(new ImageTensor(data, 1, 28, 28, 0), rng);
            int at = Array.IndexOf(t.Data, 1f);
            Assert.InRange(at / 28 - 10, -4, 4);
            Assert.InRange(at % 28 - 12, -4, 4);
            if (at != 10 * 28 + 12) moved++;
        }
        Assert.Equal(4, RandomShift.ForSize(28).Padding);
        Assert.True(moved > 10);
    }

    [Fact]
    public void ErasingBlanksOneRectangleOfTheAllowedAreaPerChosenItem()
    {
        using var scope = NewDisposeScope();
        var x = ones(40, 2, 20, 20);
        var erased = BatchAugment.RandomErasing(x, new RandomErasing(P: 1, Scale: (0.1, 0.2)), new Random(5));
        for (int i = 0; i < 40; i++)
        {
            var zerosPerChannel = erased[i].eq(0).sum(dim: [1, 2]);
            long a = zerosPerChannel[0].item<long>();
            Assert.Equal(a, zerosPerChannel[1].item<long>());
            // Rounding of the sides lets the area stray a little outside [0.1, 0.2] × 400.
            Assert.InRange(a, 30, 95);
        }
        var kept = BatchAugment.RandomErasing(x, new RandomErasing(P: 0), new Random(5));
        Assert.True(kept.eq(x).all().item<bool>());
        var filled = BatchAugment.RandomErasing(x, new RandomErasing(P: 1, Value: -2f), new Random(5));
        Assert.True(filled.eq(-2f).any().item<bool>());
        Assert.True(filled.eq(-2f).logical_or(filled.eq(1f)).all().item<bool>());
    }
}
