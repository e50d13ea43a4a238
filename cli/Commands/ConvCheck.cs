using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Cli.Commands;

/// <summary>
/// <c>zoo doctor --conv-check</c>: convolution forward and backward, through a zoo module, where oneDNN's kernels
/// fail without <see cref="OneDnnConvGuard"/>: strided 1×1 shapes that divide by zero (SIGFPE), and channel counts
/// that are not a multiple of the kernel's block run after memory was filled with NaN (uninitialised padding).
/// </summary>
internal static class ConvCheck
{
    /// <summary>(in, out, groups, stride) of each strided 1×1 convolution checked.</summary>
    public static readonly (int In, int Out, int Groups, int Stride)[] StridedPointwise =
    [
        (256, 1024, 1, 2), (512, 1024, 1, 2), (512, 2048, 1, 2), (1024, 512, 1, 2), (1024, 2048, 1, 2),
        (1024, 2048, 1, 3), (2048, 4096, 2, 2),
    ];

    /// <summary>(in, out) of each 3×3 convolution checked on NaN-filled memory.</summary>
    public static readonly (int In, int Out)[] PaddedChannels = [(24, 40), (40, 24), (12, 20), (72, 72)];

    public static string Run()
    {
        var sw = Stopwatch.StartNew();
        if (!OneDnnConvGuard.Enabled) return $"skipped: the guard is off ({OneDnnConvGuard.Variable}); these shapes would crash or give NaN";
        manual_seed(0);
        foreach (var (cin, cout, groups, stride) in StridedPointwise)
        {
            var bad = TrainOnce(nn.Conv2d(cin, cout, 1, stride: stride, groups: groups, bias: false), cin, 14, poison: false);
            if (bad is not null) return $"FAILED: 1×1 {cin}→{cout} groups {groups} stride {stride}: {bad}";
        }
        foreach (var (cin, cout) in PaddedChannels)
            for (int round = 0; round < 3; round++)
            {
                var bad = TrainOnce(nn.Conv2d(cin, cout, 3, padding: 1), cin, 16, poison: true);
                if (bad is not null) return $"FAILED: 3×3 {cin}→{cout} on NaN-filled memory: {bad}";
            }
        return $"passed: {StridedPointwise.Length + PaddedChannels.Length} shapes ({StridedPointwise.Length} strided 1×1, {PaddedChannels.Length} padded-channel), forward and backward in {sw.ElapsedMilliseconds} ms";
    }

    /// <summary>One forward and backward; null when output and gradients are finite, else what was not.</summary>
    private static string? TrainOnce(nn.Module<Tensor, Tensor> conv, int channels, int side, bool poison)
    {
        using var scope = NewDisposeScope();
        using var block = new ZooSequential(conv);
        var x = randn(2, channels, side, side, requires_grad: true);
        if (poison) FillFreedMemoryWithNaN();
        var y = block.call(x);
        if (!y.isfinite().all().item<bool>()) return "non-finite output";
        if (poison) FillFreedMemoryWithNaN();
        y.square().mean().backward();
        return x.grad is null || !x.grad.isfinite().all().item<bool>() ? "non-finite input gradient" : null;
    }

    /// <summary>Allocates and frees NaN-filled tensors of many sizes, so that the next allocations reuse NaN memory.</summary>
    internal static void FillFreedMemoryWithNaN()
    {
        for (int k = 0; k < 120; k++)
        {
            using var t = full([1L << (k % 18 + 4)], float.NaN);
        }
    }
}
