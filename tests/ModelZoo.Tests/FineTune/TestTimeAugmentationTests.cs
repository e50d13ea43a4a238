using ModelZoo.FineTune;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.FineTune;

public class TestTimeAugmentationTests
{
    [Fact]
    public void FlipAveragesTheProbabilitiesOfThePlainAndTheMirroredView()
    {
        using var scope = NewDisposeScope();
        manual_seed(3);
        var net = nn.Sequential(nn.Flatten(), nn.Linear(2 * 4 * 5, 3));
        var x = randn(6, 2, 4, 5);
        var tta = TestTimeAugmentation.FromNames(["hflip"])!;
        Assert.Equal(2, tta.Passes);
        var got = tta.Predict(net, x);
        var expected = nn.functional.softmax(net.call(x), 1).add(nn.functional.softmax(net.call(x.flip(3)), 1)).div(2).log();
        Assert.True(got.allclose(expected, rtol: 1e-5, atol: 1e-6));
        // A different answer from the plain view: the model is not mirror-symmetric.
        Assert.False(got.allclose(nn.functional.log_softmax(net.call(x), 1), rtol: 1e-3, atol: 1e-4));
    }

    [Fact]
    public void AMirrorSymmetricModelGivesThePlainPrediction()
    {
        using var scope = NewDisposeScope();
        var net = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 4));
        var x = randn(5, 3, 6, 6);
        var got = TestTimeAugmentation.HorizontalFlip.Predict(net, x);
        Assert.True(got.allclose(nn.functional.log_softmax(net.call(x), 1), rtol: 1e-5, atol: 1e-6));
    }

    [Fact]
    public void NamesAreCheckedAndAnEmptyListMeansNone()
    {
        Assert.Null(TestTimeAugmentation.FromNames([]));
        var e = Assert.Throws<ArgumentException>(() => TestTimeAugmentation.FromNames(["rotate"]));
        Assert.Contains("hflip", e.Message);
    }
}
