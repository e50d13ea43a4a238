using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Zoo;

public class TinyNetTests
{
    /// <summary>A tiny conv net with hand-set weights: forward and backward values are checked against arithmetic done by hand.</summary>
    [Fact]
    public void ConvNetForwardAndBackwardGiveHandComputedValues()
    {
        using var scope = NewDisposeScope();
        var conv = nn.Conv2d(1, 2, 2, bias: true);
        var fc = nn.Linear(2, 1);
        using (no_grad())
        {
            conv.weight!.copy_(tensor(new float[] { 1, 0, 0, 1, 0, 1, 1, 0 }).reshape(2, 1, 2, 2));
            conv.bias!.copy_(tensor(new float[] { 0, -1 }));
            fc.weight!.copy_(tensor(new float[] { 0.5f, 2f }).reshape(1, 2));
            fc.bias!.copy_(tensor(new float[] { 1f }));
        }
        // input 1×1×2×2 = [[1,2],[3,4]]: conv channel 0 = 1+4+0 = 5, channel 1 = 2+3-1 = 4
        var x = tensor(new float[] { 1, 2, 3, 4 }).reshape(1, 1, 2, 2);
        var h = nn.functional.relu(conv.call(x)).flatten(1);
        var y = fc.call(h);
        Assert.Equal(new float[] { 5, 4 }, h.data<float>().ToArray());
        Assert.Equal(0.5f * 5 + 2f * 4 + 1f, y.item<float>(), 5);

        y.backward();
        // dy/dw_fc = h, dy/db_fc = 1, dy/dW_conv[c] = w_fc[c] * x (relu active on both channels)
        Assert.Equal(new float[] { 5, 4 }, fc.weight!.grad!.data<float>().ToArray());
        Assert.Equal(1f, fc.bias!.grad!.item<float>());
        Assert.Equal(new float[] { 0.5f, 1f, 1.5f, 2f, 2f, 4f, 6f, 8f }, conv.weight!.grad!.data<float>().ToArray());
        Assert.Equal(new float[] { 0.5f, 2f }, conv.bias!.grad!.data<float>().ToArray());
    }

    [Fact]
    public void LibTorchIsTheExpectedVersion() => Assert.StartsWith("2.10", __version__);
}
