using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Zoo;

/// <summary>
/// The guard that keeps zoo models clear of oneDNN's SIGFPE (strided 1×1 backward) and NaN (uninitialised channel
/// padding): the guarded computation equals the convolution (output and every gradient), it applies only where the
/// defects can happen, and — in child processes, so that a crash fails one test and not the suite — the shapes that
/// crashed now train.
/// </summary>
public class OneDnnConvGuardTests
{
    public static TheoryData<int, int, int, int, int, int, int> Shapes() => new()
    {
        // in, out, kernel, groups, strideH, strideW, padding
        { 8, 16, 1, 1, 2, 2, 0 },
        { 6, 4, 1, 2, 2, 2, 0 },
        { 5, 7, 1, 1, 3, 2, 0 },
        { 4, 6, 1, 1, 2, 1, 1 },
        { 24, 40, 3, 1, 1, 1, 1 },
        { 20, 12, 3, 1, 2, 2, 1 },
        { 17, 33, 1, 1, 2, 2, 0 },
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void GuardedComputationEqualsTheConvolution(int cin, int cout, int kernel, int groups, int strideH, int strideW, int padding)
    {
        using var scope = NewDisposeScope();
        manual_seed(1);
        // float64: the reference and the guarded computation both run libtorch's plain kernels, so the bound is float64's.
        var conv = nn.Conv2d(cin, cout, (kernel, kernel), stride: (strideH, strideW), padding: (padding, padding), groups: groups, bias: true, dtype: float64);
        var xRef = randn(new long[] { 2, cin, 9, 11 }, dtype: float64).requires_grad_();
        var xGuard = xRef.detach().clone().requires_grad_();

        var yRef = conv.call(xRef);
        var upstream = randn_like(yRef);
        (yRef * upstream).sum().backward();
        var (wRef, bRef) = (conv.weight!.grad!.clone(), conv.bias!.grad!.clone());
        conv.zero_grad();

        var yGuard = OneDnnConvGuard.Guarded(conv, xGuard, subsample: OneDnnConvGuard.IsStridedPointwise(conv), padChannels: OneDnnConvGuard.HasPaddedChannelBlock(conv));
        (yGuard * upstream).sum().backward();

        Assert.Equal(yRef.shape, yGuard.shape);
        AssertClose(yRef, yGuard, "output");
        AssertClose(xRef.grad!, xGuard.grad!, "input gradient");
        AssertClose(wRef, conv.weight!.grad!, "weight gradient");
        AssertClose(bRef, conv.bias!.grad!, "bias gradient");
    }

    private static void AssertClose(Tensor expected, Tensor actual, string what)
    {
        double scale = Math.Max(1.0, expected.abs().max().item<double>());
        double diff = (expected - actual).abs().max().item<double>();
        Assert.True(diff <= 1e-12 * scale, $"{what}: max |Δ| = {diff:g3} (scale {scale:g3})");
    }

    [Fact]
    public void AppliesOnlyWhereOneDnnFails()
    {
        using var scope = NewDisposeScope();
        Assert.True(OneDnnConvGuard.IsStridedPointwise(nn.Conv2d(4, 8, 1, stride: 2)));
        Assert.False(OneDnnConvGuard.IsStridedPointwise(nn.Conv2d(4, 8, 1)));
        Assert.False(OneDnnConvGuard.IsStridedPointwise(nn.Conv2d(4, 8, 3, stride: 2)));

        Assert.True(OneDnnConvGuard.HasPaddedChannelBlock(nn.Conv2d(24, 32, 3)));
        Assert.True(OneDnnConvGuard.HasPaddedChannelBlock(nn.Conv2d(32, 24, 3)));
        Assert.True(OneDnnConvGuard.HasPaddedChannelBlock(nn.Conv2d(12, 16, 3)));
        Assert.False(OneDnnConvGuard.HasPaddedChannelBlock(nn.Conv2d(32, 48, 3)));
        Assert.False(OneDnnConvGuard.HasPaddedChannelBlock(nn.Conv2d(3, 32, 3)));     // a stem: at most 8 channels in
        Assert.False(OneDnnConvGuard.HasPaddedChannelBlock(nn.Conv2d(24, 40, 1)));    // 1×1 kernels do not pad
        Assert.False(OneDnnConvGuard.HasPaddedChannelBlock(nn.Conv2d(24, 24, 3, groups: 24)));  // depthwise does not pad

        var strided = nn.Conv2d(32, 64, 1, stride: 2);
        var x = randn(1, 32, 8, 8);
        long before = OneDnnConvGuard.ReroutedOnThisThread;
        OneDnnConvGuard.Forward(strided, x);                                          // no gradient to the input
        using (no_grad()) OneDnnConvGuard.Forward(strided, randn(new long[] { 1, 32, 8, 8 }, requires_grad: true));  // gradients off
        OneDnnConvGuard.Forward(nn.Conv2d(32, 32, 3, padding: 1), x);                  // nothing to guard
        OneDnnConvGuard.Forward(nn.Conv2d(32, 24, 3, padding: 1), x);                  // padded outputs matter only for an input gradient
        Assert.Equal(before, OneDnnConvGuard.ReroutedOnThisThread);
        var y = OneDnnConvGuard.Forward(strided, randn(1, 32, 8, 8, requires_grad: true));
        Assert.Equal(new long[] { 1, 64, 4, 4 }, y.shape);
        Assert.True(OneDnnConvGuard.ReroutedOnThisThread > before || !OneDnnConvGuard.Enabled);
    }

    [Fact]
    public void ZooModulesRouteTheirChildrenThroughTheGuard()
    {
        using var scope = NewDisposeScope();
        using var block = new ZooSequential(nn.Conv2d(32, 64, 1, stride: 2, bias: false), nn.ReLU(), nn.Conv2d(64, 24, 3, padding: 1));
        long before = OneDnnConvGuard.ReroutedOnThisThread;
        block.call(randn(new long[] { 1, 32, 8, 8 }, requires_grad: true)).sum().backward();
        Assert.Equal(OneDnnConvGuard.Enabled ? before + 2 : before, OneDnnConvGuard.ReroutedOnThisThread);
    }

    [Fact]
    public void OddChannelCountsStayFiniteOnNaNFilledMemory()
    {
        manual_seed(2);
        using var block = new ZooSequential(nn.Conv2d(24, 40, 3, padding: 1), nn.ReLU(), nn.Conv2d(40, 24, 3, padding: 1));
        for (int round = 0; round < 5; round++)
        {
            using var scope = NewDisposeScope();
            var x = randn(new long[] { 2, 24, 16, 16 }, requires_grad: true);
            FillFreedMemoryWithNaN();
            var y = block.call(x);
            Assert.True(y.isfinite().all().item<bool>(), $"round {round}: non-finite output");
            FillFreedMemoryWithNaN();
            y.square().mean().backward();
            Assert.True(x.grad!.isfinite().all().item<bool>(), $"round {round}: non-finite input gradient");
        }
    }

    private static void FillFreedMemoryWithNaN()
    {
        for (int k = 0; k < 120; k++)
        {
            using var t = full([1L << (k % 18 + 4)], float.NaN);
        }
    }

    [Fact]
    public void ShapesThatFailedInOneDnnTrainInAChildProcess()
    {
        var (code, output) = RunZoo("doctor --conv-check");
        Assert.True(code == 0, $"zoo doctor --conv-check exited with {code} (136 = SIGFPE):\n{output}");
        Assert.Contains("passed: 11 shapes", output);
    }

    [Fact]
    public void ResNet50TrainsInAChildProcess()
    {
        var (code, output) = RunZoo("smoke --model resnet50 --size 32");
        Assert.True(code == 0, $"zoo smoke --model resnet50 exited with {code} (136 = SIGFPE):\n{output}");
        Assert.Contains("resnet50: input [2, 3, 32, 32]", output);
    }

    private static (int Code, string Output) RunZoo(string args)
    {
        var (code, output, _) = Cli.ZooCli.Run(args, offline: true, new Dictionary<string, string?> { [OneDnnConvGuard.Variable] = null }, timeoutMinutes: 3);
        return (code, output);
    }
}
