using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Zoo;

/// <summary>
/// The guard that keeps training clear of oneDNN's SIGFPE in strided 1×1 convolution backward: the rerouted
/// computation equals the convolution (output and every gradient), it applies only where the crash can happen, and —
/// in child processes, so that a crash fails one test and not the suite — the shapes that crashed now train.
/// </summary>
public class ConvBackwardGuardTests
{
    public static TheoryData<int, int, int, int, int, int> SmallShapes() => new()
    {
        // in, out, groups, strideH, strideW, padding
        { 8, 16, 1, 2, 2, 0 },
        { 6, 4, 2, 2, 2, 0 },
        { 5, 7, 1, 3, 2, 0 },
        { 4, 6, 1, 2, 1, 1 },
    };

    [Theory]
    [MemberData(nameof(SmallShapes))]
    public void GuardedPathEqualsTheConvolution(int cin, int cout, int groups, int strideH, int strideW, int padding)
    {
        using var scope = NewDisposeScope();
        manual_seed(1);
        // float64: the reference and the rerouted path both run libtorch's plain kernels, so the bound is float64's.
        var conv = nn.Conv2d(cin, cout, (1L, 1L), stride: (strideH, strideW), padding: (padding, padding), groups: groups, bias: true, dtype: float64);
        var xRef = randn(new long[] { 2, cin, 9, 11 }, dtype: float64).requires_grad_();
        var xGuard = xRef.detach().clone().requires_grad_();

        var yRef = conv.call(xRef);
        var upstream = randn_like(yRef);
        (yRef * upstream).sum().backward();
        var (wRef, bRef) = (conv.weight!.grad!.clone(), conv.bias!.grad!.clone());
        conv.zero_grad();

        var yGuard = ConvBackwardGuard.SubsampledPointwise(conv, xGuard);
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
    public void ReroutesOnlyStridedPointwiseConvolutionsThatNeedAnInputGradient()
    {
        using var scope = NewDisposeScope();
        var strided = nn.Conv2d(4, 8, 1, stride: 2);
        Assert.True(ConvBackwardGuard.IsStridedPointwise(strided));
        Assert.False(ConvBackwardGuard.IsStridedPointwise(nn.Conv2d(4, 8, 1)));
        Assert.False(ConvBackwardGuard.IsStridedPointwise(nn.Conv2d(4, 8, 3, stride: 2)));

        var x = randn(1, 4, 8, 8);
        long before = ConvBackwardGuard.ReroutedCalls;
        ConvBackwardGuard.Forward(strided, x);                       // no gradient to the input: not rerouted
        using (no_grad()) ConvBackwardGuard.Forward(strided, x.requires_grad_());
        Assert.Equal(before, ConvBackwardGuard.ReroutedCalls);
        var y = ConvBackwardGuard.Forward(strided, randn(1, 4, 8, 8, requires_grad: true));
        Assert.Equal(new long[] { 1, 8, 4, 4 }, y.shape);
        Assert.True(ConvBackwardGuard.ReroutedCalls > before || !ConvBackwardGuard.Enabled);
    }

    [Fact]
    public void ZooModulesRouteTheirChildrenThroughTheGuard()
    {
        using var scope = NewDisposeScope();
        using var block = new ZooSequential(nn.Conv2d(4, 8, 1, stride: 2, bias: false));
        long before = ConvBackwardGuard.ReroutedCalls;
        block.call(randn(1, 4, 8, 8, requires_grad: true)).sum().backward();
        Assert.True(ConvBackwardGuard.ReroutedCalls > before || !ConvBackwardGuard.Enabled);
    }

    [Fact]
    public void ShapesThatCrashedOneDnnTrainInAChildProcess()
    {
        var (code, output) = RunZoo("doctor --conv-check");
        Assert.True(code == 0, $"zoo doctor --conv-check exited with {code} (136 = SIGFPE):\n{output}");
        Assert.Contains("passed: 7 strided 1×1 shapes", output);
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
        var exe = Path.Combine(AppContext.BaseDirectory, "zoo.dll");
        var psi = new ProcessStartInfo("dotnet", $"\"{exe}\" {args}") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.Environment["ZOO_OFFLINE"] = "1";
        psi.Environment["COLUMNS"] = "400";
        psi.Environment.Remove(ConvBackwardGuard.Variable);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        Assert.True(p.WaitForExit(180_000), "zoo did not finish in 3 minutes");
        return (p.ExitCode, stdout.Result + stderr.Result);
    }
}
