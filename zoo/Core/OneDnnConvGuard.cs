using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;
using BatchNorm = TorchSharp.Modules.BatchNorm;
using Conv2d = TorchSharp.Modules.Conv2d;

namespace ModelZoo;

/// <summary>
/// Keeps zoo models clear of two defects of the oneDNN convolution kernels that libtorch 2.10 runs on x86-64 CPUs.
/// Both were found on 2-core AMD EPYC VMs (with and without AVX-512); the evidence is in docs/reliability.md.
/// </summary>
/// <remarks>
/// <para><b>1. SIGFPE in strided 1×1 backward.</b> The gradient of the input of a 1×1 convolution with stride &gt; 1
/// kills the process: an integer division by zero in the blocking heuristic of oneDNN's strided brgemm backward
/// kernel (<c>brg_blocking_t::est_eff_1x1</c>) for the channel pairs it special-cases (256→1024, 512→1024,
/// 512→2048, 1024→512, 1024→2048 per group) — the shortcut convolutions of every ResNet-50-style network. When a
/// gradient flows to the input, the guard computes such a layer as the same 1×1 convolution with stride 1 over the
/// input subsampled by the stride (<c>x[:, :, ::s, ::s]</c>): the same products and sums.</para>
/// <para><b>2. NaN from uninitialised channel padding.</b> oneDNN's direct (non-1×1) float32 kernels work on channels
/// in blocks of 16 (AVX-512) or 8 (AVX2). When a layer's input or output channel count is not a multiple of the block,
/// the padded tail of the blocked copy is left uninitialised and multiplied by zero weights: if the reused memory
/// holds a NaN or infinity bit pattern (freed image bytes of 0xFF do), the output (input channels) or the input
/// gradient (output channels) turns NaN. The guard runs such layers with input and weight padded by zero channels
/// to a multiple of 16 and drops the extra output channels: the same sums plus exact zeros.</para>
/// <para>All zoo modules apply it (<see cref="ZooModule"/> routes each child call through <see cref="Forward"/>),
/// including layers put in by surgery. A plain TorchSharp module of your own can call <see cref="Forward"/> instead
/// of <c>conv.call(x)</c>. Other devices, other dtypes (float64 never reaches oneDNN) and other architectures run
/// unchanged. <c>ZOO_CONV_GUARD=off</c> turns the guard off (to measure it, or to reproduce the defects).</para>
/// </remarks>
public static class OneDnnConvGuard
{
    /// <summary>The environment variable that turns the guard off (<c>off</c>, <c>0</c> or <c>false</c>).</summary>
    public const string Variable = "ZOO_CONV_GUARD";

    /// <summary>Channel counts are padded to a multiple of this (oneDNN's AVX-512 block, a multiple of AVX2's).</summary>
    public const int ChannelBlock = 16;

    /// <summary>Whether the guard is on in this process: on x86-64 unless <see cref="Variable"/> turns it off.</summary>
    public static bool Enabled { get; } = RuntimeInformation.ProcessArchitecture == Architecture.X64
        && Environment.GetEnvironmentVariable(Variable)?.Trim().ToLowerInvariant() is not ("off" or "0" or "false");

    private static long _rerouted;

    [ThreadStatic]
    private static long _reroutedOnThread;

    /// <summary>How many convolution calls the guard has rerouted in this process.</summary>
    public static long ReroutedCalls => Interlocked.Read(ref _rerouted);

    /// <summary>How many convolution calls the guard has rerouted on the calling thread (what one test caused,
    /// whatever runs beside it).</summary>
    internal static long ReroutedOnThisThread => _reroutedOnThread;

    /// <summary>One line for <c>zoo doctor</c>.</summary>
    public static string Description =>
        Enabled ? "on: strided 1×1 convolutions run at stride 1 on a subsampled input while training; convolutions whose channels are not a multiple of 16 run zero-padded (oneDNN SIGFPE and NaN workarounds)"
        : RuntimeInformation.ProcessArchitecture != Architecture.X64 ? "not needed on this architecture"
        : $"OFF ({Variable} is set): ResNet-50-style training can crash with SIGFPE and odd channel counts can give NaN";

    /// <summary>True when the input gradient of <paramref name="conv"/> would go through oneDNN's strided 1×1 backward kernel.</summary>
    public static bool IsStridedPointwise(Conv2d conv) =>
        conv.kernel_size.All(k => k == 1) && conv.stride.Any(s => s > 1);

    /// <summary>True when oneDNN would run <paramref name="conv"/> with a padded channel block (a direct, non-1×1,
    /// ungrouped kernel with more than 8 input or output channels that are not a multiple of <see cref="ChannelBlock"/>).</summary>
    public static bool HasPaddedChannelBlock(Conv2d conv) =>
        conv.groups == 1 && conv.kernel_size.Any(k => k > 1)
        && (PaddedChannels(conv.in_channels) > 0 || PaddedChannels(conv.out_channels) > 0);

    private static long PaddedChannels(long channels) =>
        channels > 8 && channels % ChannelBlock != 0 ? ChannelBlock - channels % ChannelBlock : 0;

    /// <summary>
    /// Runs <paramref name="module"/> on <paramref name="x"/>: through the guarded computation where oneDNN would hit
    /// one of the defects, else by <c>module.call(x)</c>.
    /// </summary>
    public static Tensor Forward(nn.Module<Tensor, Tensor> module, Tensor x)
    {
        if (BatchNormTraining.Applies(module)) return BatchNormTraining.Forward((BatchNorm)module, x);
        if (!Enabled || module is not Conv2d conv || conv.transposed || conv.padding_mode != PaddingModes.Zeros
            || conv.padding_type is not null || x.dtype != ScalarType.Float32 || x.device_type != DeviceType.CPU)
            return module.call(x);
        bool inputGradient = x.requires_grad && is_grad_enabled();
        bool subsample = IsStridedPointwise(conv) && inputGradient;
        bool padded = HasPaddedChannelBlock(conv);
        // Padded output channels only matter for the input gradient; without one, only padded input channels do.
        bool padChannels = padded && (inputGradient || PaddedChannels(conv.in_channels) > 0);
        if (!subsample && !padChannels) return module.call(x);
        Interlocked.Increment(ref _rerouted);
        _reroutedOnThread++;
        return Guarded(conv, x, subsample, padChannels, padOutput: inputGradient);
    }

    /// <summary>The guarded computation; see the remarks of <see cref="OneDnnConvGuard"/>. With
    /// <paramref name="padChannels"/>, input channels are padded, and output channels too when <paramref name="padOutput"/>.</summary>
    internal static Tensor Guarded(Conv2d conv, Tensor x, bool subsample, bool padChannels, bool padOutput = true)
    {
        using var scope = NewDisposeScope();
        var weight = (Tensor)conv.weight!;
        var bias = conv.bias is null ? null : (Tensor)conv.bias;
        long[] stride = [conv.stride[0], conv.stride.Length > 1 ? conv.stride[1] : conv.stride[0]];
        long[] padding = conv.padding is { Length: > 0 } p ? [p[0], p.Length > 1 ? p[1] : p[0]] : [0, 0];
        if (subsample)
        {
            if (padding[0] > 0 || padding[1] > 0) x = nn.functional.pad(x, [padding[1], padding[1], padding[0], padding[0]]);
            x = x[TensorIndex.Colon, TensorIndex.Colon, TensorIndex.Slice(null, null, stride[0]), TensorIndex.Slice(null, null, stride[1])];
            stride = [1, 1];
            padding = [0, 0];
        }
        long extraOut = 0;
        if (padChannels)
        {
            long extraIn = PaddedChannels(conv.in_channels);
            extraOut = padOutput ? PaddedChannels(conv.out_channels) : 0;
            if (extraIn > 0) x = nn.functional.pad(x, [0, 0, 0, 0, 0, extraIn]);
            weight = nn.functional.pad(weight, [0, 0, 0, 0, 0, extraIn, 0, extraOut]);
            if (bias is not null && extraOut > 0) bias = nn.functional.pad(bias, [0, extraOut]);
        }
        var y = nn.functional.conv2d(x, weight, bias, strides: stride, padding: padding, dilation: conv.dilation, groups: conv.groups);
        if (extraOut > 0) y = y[TensorIndex.Colon, TensorIndex.Slice(0, conv.out_channels)];
        return y.MoveToOuterDisposeScope();
    }
}
