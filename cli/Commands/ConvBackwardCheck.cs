using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Cli.Commands;

/// <summary>
/// <c>zoo doctor --conv-check</c>: convolution forward and backward, through a zoo module, for every shape that makes
/// oneDNN's strided 1×1 backward kernel divide by zero (see <see cref="ConvBackwardGuard"/>): the five channel pairs
/// it special-cases, plain and grouped, at strides 2 and 3. Without the guard the process dies with SIGFPE here.
/// </summary>
internal static class ConvBackwardCheck
{
    /// <summary>(in, out, groups, stride) of each checked convolution.</summary>
    public static readonly (int In, int Out, int Groups, int Stride)[] Shapes =
    [
        (256, 1024, 1, 2), (512, 1024, 1, 2), (512, 2048, 1, 2), (1024, 512, 1, 2), (1024, 2048, 1, 2),
        (1024, 2048, 1, 3), (2048, 4096, 2, 2),
    ];

    public static string Run()
    {
        var sw = Stopwatch.StartNew();
        if (!ConvBackwardGuard.Enabled) return $"skipped: the guard is off ({ConvBackwardGuard.Variable}), and these shapes would crash this process";
        manual_seed(0);
        foreach (var (cin, cout, groups, stride) in Shapes)
        {
            using var scope = NewDisposeScope();
            using var block = new ZooSequential(nn.Conv2d(cin, cout, 1, stride: stride, groups: groups, bias: false));
            var x = randn(2, cin, 14, 14, requires_grad: true);
            block.call(x).square().mean().backward();
            if (x.grad is null || x.grad.isnan().any().item<bool>())
                return $"FAILED: {cin}→{cout} groups {groups} stride {stride} gave no finite input gradient";
        }
        return $"passed: {Shapes.Length} strided 1×1 shapes, forward and backward ({sw.ElapsedMilliseconds} ms)";
    }
}
