using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelZoo.Models;

// Layers shared by the vision families (torchvision.ops.misc and torchvision.ops.stochastic_depth equivalents), with
// torchvision's child and parameter names so that official state dicts load strictly.

/// <summary>
/// Stochastic depth (drop path): in training, zeroes whole residual branches with probability <c>p</c> and rescales
/// the survivors by 1/(1-p); the identity in eval mode. <c>row</c> mode draws one decision per sample, <c>batch</c>
/// one for the whole batch (torchvision's <c>StochasticDepth</c>).
/// </summary>
public sealed class StochasticDepth : ZooModule
{
    /// <summary>Creates the layer.</summary>
    /// <param name="p">Probability of dropping the branch.</param>
    /// <param name="mode"><c>row</c> or <c>batch</c>.</param>
    public StochasticDepth(double p, string mode = "row") : base(nameof(StochasticDepth))
    {
        if (p < 0 || p > 1) throw new ArgumentOutOfRangeException(nameof(p), p, "Drop probability must be in [0, 1].");
        if (mode is not ("row" or "batch")) throw new ArgumentException($"Stochastic depth mode must be 'row' or 'batch', got '{mode}'.", nameof(mode));
        P = p;
        Mode = mode;
    }

    /// <summary>Drop probability.</summary>
    public double P { get; }

    /// <summary><c>row</c> or <c>batch</c>.</summary>
    public string Mode { get; }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        if (!training || P == 0.0) return x;
        double survival = 1.0 - P;
        var shape = new long[x.dim()];
        Array.Fill(shape, 1L);
        if (Mode == "row") shape[0] = x.shape[0];
        var noise = empty(shape, x.dtype, x.device).bernoulli_(survival);
        if (survival > 0) noise.div_(survival);
        return x * noise;
    }
}

/// <summary>Squeeze-and-excitation (torchvision's <c>SqueezeExcitation</c>): children avgpool, fc1, activation, fc2, scale_activation.</summary>
public sealed class SqueezeExcitation : ZooModule
{
    /// <summary>Creates the block; <paramref name="activation"/> defaults to ReLU and <paramref name="scaleActivation"/> to Sigmoid.</summary>
    public SqueezeExcitation(int inputChannels, int squeezeChannels, nn.Module<Tensor, Tensor>? activation = null, nn.Module<Tensor, Tensor>? scaleActivation = null)
        : base(nameof(SqueezeExcitation))
    {
        Add("avgpool", nn.AdaptiveAvgPool2d(1));
        Add("fc1", nn.Conv2d(inputChannels, squeezeChannels, 1));
        Add("fc2", nn.Conv2d(squeezeChannels, inputChannels, 1));
        Add("activation", activation ?? nn.ReLU());
        Add("scale_activation", scaleActivation ?? nn.Sigmoid());
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        var s = Run("avgpool", x);
        s = Run("scale_activation", Run("fc2", Run("activation", Run("fc1", s))));
        return s * x;
    }
}

/// <summary>LayerNorm over the channels of an N×C×H×W tensor (ConvNeXt's <c>LayerNorm2d</c>): parameters weight and bias.</summary>
public sealed class LayerNorm2d : ZooModule
{
    private readonly double _eps;
    private readonly long _channels;

    /// <summary>Creates the layer for <paramref name="channels"/> channels.</summary>
    public LayerNorm2d(long channels, double eps = 1e-6) : base(nameof(LayerNorm2d))
    {
        _eps = eps;
        _channels = channels;
        register_parameter("weight", new Parameter(ones(channels)));
        register_parameter("bias", new Parameter(zeros(channels)));
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        var y = x.permute(0, 2, 3, 1);
        y = nn.functional.layer_norm(y, [_channels], this.Param("weight"), this.Param("bias"), _eps);
        return y.permute(0, 3, 1, 2);
    }
}

/// <summary>Permutes dimensions (torchvision's <c>Permute</c>).</summary>
public sealed class Permute(params long[] dims) : ZooModule(nameof(Permute))
{
    /// <inheritdoc />
    public override Tensor forward(Tensor x) => x.permute(dims);
}

/// <summary>Builders and helpers shared by the vision families.</summary>
public static class VisionBlocks
{
    /// <summary>
    /// torchvision's <c>Conv2dNormActivation</c>: a sequence "0" = convolution (padding (k-1)/2·dilation unless given,
    /// bias only without a norm unless given), then the norm and the activation, numbered on.
    /// </summary>
    public static ZooSequential ConvNormAct(int inChannels, int outChannels, int kernel = 3, int stride = 1, int groups = 1, int dilation = 1,
        Func<int, nn.Module<Tensor, Tensor>>? norm = null, Func<nn.Module<Tensor, Tensor>>? activation = null, int? padding = null, bool? bias = null,
        bool noNorm = false, bool noActivation = false)
    {
        var seq = new ZooSequential();
        int pad = padding ?? (kernel - 1) / 2 * dilation;
        seq.Append("0", nn.Conv2d(inChannels, outChannels, kernel, stride: stride, padding: pad, dilation: dilation, groups: groups, bias: bias ?? noNorm));
        int i = 1;
        if (!noNorm) seq.Append((i++).ToString(System.Globalization.CultureInfo.InvariantCulture), norm is null ? nn.BatchNorm2d(outChannels) : norm(outChannels));
        if (!noActivation) seq.Append(i.ToString(System.Globalization.CultureInfo.InvariantCulture), activation is null ? nn.ReLU(inplace: true) : activation());
        return seq;
    }

    /// <summary>torchvision's two-layer <c>MLP</c>: "0" Linear, "1" activation, "2" Dropout, "3" Linear, "4" Dropout.</summary>
    public static ZooSequential Mlp(int inDim, int hiddenDim, int outDim, Func<nn.Module<Tensor, Tensor>> activation, double dropout, bool bias = true) =>
        new(nn.Linear(inDim, hiddenDim, hasBias: bias), activation(), nn.Dropout(dropout), nn.Linear(hiddenDim, outDim, hasBias: bias), nn.Dropout(dropout));

    /// <summary>torchvision's <c>_make_divisible</c>: rounds <paramref name="v"/> to a multiple of <paramref name="divisor"/>, never more than 10% down.</summary>
    public static int MakeDivisible(double v, int divisor, int? minValue = null)
    {
        int min = minValue ?? divisor;
        int newV = Math.Max(min, (int)(v + divisor / 2.0) / divisor * divisor);
        if (newV < 0.9 * v) newV += divisor;
        return newV;
    }

    /// <summary>Runs the children of the sequence at <paramref name="sequence"/> up to (not including) <paramref name="stopAt"/>; all when null.</summary>
    public static Tensor RunUntil(nn.Module sequence, string? stopAt, Tensor x)
    {
        if (sequence is not ZooModule seq) return ((nn.Module<Tensor, Tensor>)sequence).call(x);
        foreach (var name in seq.ChildNames)
        {
            if (name == stopAt) break;
            x = OneDnnConvGuard.Forward((nn.Module<Tensor, Tensor>)seq.GetChild(name), x);
        }
        return x;
    }

    /// <summary>A registered parameter of <paramref name="module"/>, looked up by name each time (so moves between devices are seen).</summary>
    public static Parameter Param(this nn.Module module, string name) =>
        module.get_parameter(name) ?? throw new KeyNotFoundException($"'{module.GetType().Name}' has no parameter '{name}'.");

    /// <summary>A registered buffer of <paramref name="module"/>, looked up by name each time.</summary>
    public static Tensor Buffer(this nn.Module module, string name) =>
        module.get_buffer(name) ?? throw new KeyNotFoundException($"'{module.GetType().Name}' has no buffer '{name}'.");

    /// <summary>Truncated-normal (±2σ) initialisation of weights and zero biases for every Linear and Conv2d (transformer-style init).</summary>
    public static void InitTruncNormal(nn.Module model, double std = 0.02)
    {
        using var noGrad = no_grad();
        foreach (var (_, m) in model.named_modules())
        {
            switch (m)
            {
                case Linear l:
                    nn.init.trunc_normal_(l.weight, std: std, a: -2 * std, b: 2 * std);
                    if (l.bias is not null) nn.init.zeros_(l.bias);
                    break;
                case Conv2d c:
                    nn.init.trunc_normal_(c.weight, std: std, a: -2 * std, b: 2 * std);
                    if (c.bias is not null) nn.init.zeros_(c.bias);
                    break;
            }
        }
    }

    /// <summary>Linear layers: normal(0, <paramref name="std"/>) weights and zero bias (MobileNet/RegNet heads).</summary>
    public static void InitLinearNormal(nn.Module model, double std)
    {
        using var noGrad = no_grad();
        foreach (var (_, m) in model.named_modules())
            if (m is Linear l)
            {
                nn.init.normal_(l.weight, 0, std);
                if (l.bias is not null) nn.init.zeros_(l.bias);
            }
    }

    /// <summary>
    /// Parameter groups of torchvision's features/classifier layout: stem (<c>features.0</c>), one group for each of
    /// <c>features.1</c>…<c>features.<paramref name="stages"/></c>, head (<c>classifier</c>).
    /// </summary>
    public static IReadOnlyList<ParameterGroup> FeatureStageGroups(nn.Module model, int stages) =>
        Layers.GroupsByPrefix(model, [("stem", ["features.0"]), .. Enumerable.Range(1, stages).Select(i => ($"features.{i}", new[] { $"features.{i}" })), ("head", ["classifier"])]);
}

/// <summary>
/// Implemented by models whose official checkpoints need key renames or tensor adaptation before a strict load (e.g.
/// DenseNet's old <c>norm.1</c> names, ViT's <c>mlp.linear_1</c> names and position embeddings at another image size).
/// Weight loaders call <see cref="AdaptCheckpoint"/> on the raw state dict before loading it.
/// </summary>
public interface ICheckpointAdapter
{
    /// <summary>Returns the state dict with keys renamed / tensors adapted to this model's layout.</summary>
    Dictionary<string, Tensor> AdaptCheckpoint(Dictionary<string, Tensor> stateDict);
}
