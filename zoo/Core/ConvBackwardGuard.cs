using TorchSharp;
using static TorchSharp.torch;
using Conv2d = TorchSharp.Modules.Conv2d;

namespace ModelZoo;

/// <summary>
/// Keeps training clear of a crash in the oneDNN that libtorch 2.10 ships: the backward pass (gradient of the input)
/// of a 1×1 convolution with stride &gt; 1 kills the process with SIGFPE on x86-64 CPUs without AMX — an integer
/// division by zero in oneDNN's blocking heuristic for its strided brgemm backward kernel
/// (<c>brg_blocking_t::est_eff_1x1</c>), reached for the channel pairs it special-cases: 256→1024, 512→1024,
/// 512→2048, 1024→512 and 1024→2048 per group. Those are the shortcut convolutions of every ResNet-50-style network.
/// </summary>
/// <remarks>
/// <para>Where a zoo module runs such a convolution while gradients flow to its input, the guard computes it as the
/// same 1×1 convolution with stride 1 over the input subsampled by the stride (<c>x[:, :, ::s, ::s]</c>) — the same
/// products and sums, the same parameters and output — so oneDNN's strided backward kernel is never asked for.
/// Inference, frozen layers (no gradient to the input) and every other convolution run unchanged.</para>
/// <para>All zoo modules apply it (<see cref="ZooModule"/> routes each child call through <see cref="Forward"/>),
/// including convolutions put in by surgery. A plain TorchSharp module of your own can call <see cref="Forward"/>
/// in place of <c>conv.call(x)</c>. Set <c>ZOO_CONV_GUARD=off</c> to turn the guard off (e.g. to measure it).
/// Evidence and the speed cost are in docs/reliability.md and docs/benchmarks.md.</para>
/// </remarks>
public static class ConvBackwardGuard
{
    /// <summary>The environment variable that turns the guard off (<c>off</c>, <c>0</c> or <c>false</c>).</summary>
    public const string Variable = "ZOO_CONV_GUARD";

    /// <summary>Whether the guard is on in this process (on unless <see cref="Variable"/> turns it off).</summary>
    public static bool Enabled { get; } =
        Environment.GetEnvironmentVariable(Variable)?.Trim().ToLowerInvariant() is not ("off" or "0" or "false");

    private static long _rerouted;

    /// <summary>How many convolution calls the guard has rerouted in this process.</summary>
    public static long ReroutedCalls => Interlocked.Read(ref _rerouted);

    /// <summary>One line for <c>zoo doctor</c>.</summary>
    public static string Description => Enabled
        ? "on: 1×1 convolutions with stride > 1 run as stride-1 convolutions on a subsampled input while training (oneDNN SIGFPE workaround)"
        : $"OFF ({Variable} is set): training ResNet-50-style networks can crash with SIGFPE on CPUs without AMX";

    /// <summary>
    /// True when <paramref name="conv"/> is a convolution whose input gradient would go through oneDNN's strided
    /// 1×1 backward kernel: a 1×1 kernel, a stride above 1, zero padding mode.
    /// </summary>
    public static bool IsStridedPointwise(Conv2d conv) =>
        conv.kernel_size.All(k => k == 1) && conv.stride.Any(s => s > 1) && !conv.transposed
        && conv.padding_mode == PaddingModes.Zeros;

    /// <summary>
    /// Runs <paramref name="module"/> on <paramref name="x"/>; a strided 1×1 convolution whose input needs a gradient
    /// is computed through the guarded path, everything else by <c>module.call(x)</c>.
    /// </summary>
    public static Tensor Forward(nn.Module<Tensor, Tensor> module, Tensor x)
    {
        if (!Enabled || module is not Conv2d conv || !x.requires_grad || !is_grad_enabled() || !IsStridedPointwise(conv))
            return module.call(x);
        Interlocked.Increment(ref _rerouted);
        return SubsampledPointwise(conv, x);
    }

    /// <summary>The guarded computation: pad (if the layer pads), take every stride-th pixel, 1×1 convolution with stride 1.</summary>
    internal static Tensor SubsampledPointwise(Conv2d conv, Tensor x)
    {
        long[] pad = conv.padding_type is null && conv.padding is { Length: > 0 } p ? p : [0, 0];
        long padH = pad[0], padW = pad.Length > 1 ? pad[1] : pad[0];
        var input = padH > 0 || padW > 0 ? nn.functional.pad(x, [padW, padW, padH, padH]) : x;
        long strideH = conv.stride[0], strideW = conv.stride.Length > 1 ? conv.stride[1] : conv.stride[0];
        var sampled = input[TensorIndex.Colon, TensorIndex.Colon,
            TensorIndex.Slice(null, null, strideH), TensorIndex.Slice(null, null, strideW)];
        return nn.functional.conv2d(sampled, conv.weight!, conv.bias, strides: [1, 1], padding: [0, 0], dilation: [1, 1], groups: conv.groups);
    }
}
