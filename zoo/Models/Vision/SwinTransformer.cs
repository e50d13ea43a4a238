using TorchSharp;
using ModelZoo.Models;
using static TorchSharp.torch;
using TV = ModelZoo.Models.TorchvisionWeights;

namespace ModelZoo.Models.Vision;

// Swin Transformer T/S/B, v1 and v2, with torchvision's parameter names (torchvision/models/swin_transformer.py).
// File order, as in every family: config, blocks, model, variants + weight tags, checkpoint remap. Any input size
// works: feature maps are padded to whole windows, as in torchvision.

/// <summary>Configuration of a Swin Transformer.</summary>
/// <param name="Version">1 or 2 (v2: cosine attention with a learned logit scale, continuous position bias MLP, post-norm).</param>
/// <param name="EmbedDim">Width of the first stage.</param>
/// <param name="Depths">Blocks per stage.</param>
/// <param name="NumHeads">Heads per stage.</param>
/// <param name="WindowSize">Window side (7 for v1, 8 for v2).</param>
/// <param name="StochasticDepth">Maximum stochastic depth rate (rises linearly over blocks).</param>
/// <param name="PatchSize">Patch side of the stem.</param>
/// <param name="MlpRatio">MLP hidden width / width.</param>
public sealed record SwinConfig(int Version, int EmbedDim, int[] Depths, int[] NumHeads, int WindowSize, double StochasticDepth, int PatchSize = 4, double MlpRatio = 4.0)
{
    /// <inheritdoc />
    public override string ToString() => $"Swin v{Version}, dim {EmbedDim}, depths [{string.Join(", ", Depths)}], heads [{string.Join(", ", NumHeads)}], window {WindowSize}";
}

/// <summary>
/// Shifted-window multi-head self-attention (children qkv, proj; parameter relative_position_bias_table; buffer
/// relative_position_index). Version 2 adds logit_scale, cpb_mlp and the relative_coords_table buffer.
/// </summary>
public sealed class ShiftedWindowAttention : ZooModule
{
    private readonly int _window, _shift, _heads, _version;
    private readonly double _attnDropout, _dropout;

    /// <summary>Creates the layer.</summary>
    public ShiftedWindowAttention(int dim, int window, int shift, int heads, int version, double attentionDropout, double dropout)
        : base(version == 1 ? nameof(ShiftedWindowAttention) : "ShiftedWindowAttentionV2")
    {
        (_window, _shift, _heads, _version, _attnDropout, _dropout) = (window, shift, heads, version, attentionDropout, dropout);
        Add("qkv", nn.Linear(dim, dim * 3));
        Add("proj", nn.Linear(dim, dim));
        int span = 2 * window - 1;
        if (version == 1)
        {
            var table = empty(span * span, heads);
            nn.init.trunc_normal_(table, std: 0.02, a: -0.04, b: 0.04);
            register_parameter("relative_position_bias_table", new TorchSharp.Modules.Parameter(table));
        }
        else
        {
            register_parameter("logit_scale", new TorchSharp.Modules.Parameter(log(10 * ones(heads, 1, 1))));
            Add("cpb_mlp", new ZooSequential(nn.Linear(2, 512), nn.ReLU(inplace: true), nn.Linear(512, heads, hasBias: false)));
            using (no_grad())
            {
                var qkvBias = ((TorchSharp.Modules.Linear)GetChild("qkv")).bias!;
                qkvBias[TensorIndex.Slice(dim, 2 * dim)].zero_();
            }
            // Log-spaced relative coordinates in [-8, 8] → sign·log2(1+|x|)/3, shape 1 × span × span × 2.
            var coords = arange(-(window - 1), window, dtype: ScalarType.Float32);
            var grid = stack(meshgrid([coords, coords], indexing: "ij")).permute(1, 2, 0).contiguous().unsqueeze(0);
            grid = grid / (window - 1) * 8;
            grid = grid.sign() * log2(grid.abs() + 1.0) / 3.0;
            register_buffer("relative_coords_table", grid);
        }
        var c = arange(window, dtype: ScalarType.Int64);
        var flat = stack(meshgrid([c, c], indexing: "ij")).flatten(1);
        var rel = (flat[.., .., TensorIndex.None] - flat[.., TensorIndex.None, ..]).permute(1, 2, 0).contiguous();
        var index = (rel[.., .., 0] + (window - 1)) * span + (rel[.., .., 1] + (window - 1));
        register_buffer("relative_position_index", index.flatten());
    }

    private Tensor RelativePositionBias()
    {
        int n = _window * _window;
        Tensor table = _version == 1
            ? (Tensor)this.Param("relative_position_bias_table")
            : ((nn.Module<Tensor, Tensor>)GetChild("cpb_mlp")).call(this.Buffer("relative_coords_table")).view(-1, _heads);
        var bias = table[this.Buffer("relative_position_index")].view(n, n, -1).permute(2, 0, 1).contiguous().unsqueeze(0);
        return _version == 1 ? bias : 16 * bias.sigmoid();
    }

    /// <summary>Attention within (shifted) windows of a B×H×W×C map.</summary>
    public override Tensor forward(Tensor input)
    {
        long b = input.shape[0], h = input.shape[1], w = input.shape[2], c = input.shape[3];
        long ws = _window;
        long padR = (ws - w % ws) % ws, padB = (ws - h % ws) % ws;
        var x = nn.functional.pad(input, [0, 0, 0, padR, 0, padB]);
        long ph = x.shape[1], pw = x.shape[2];
        long shiftH = ws >= ph ? 0 : _shift, shiftW = ws >= pw ? 0 : _shift;
        bool shifted = shiftH + shiftW > 0;
        if (shifted) x = x.roll([-shiftH, -shiftW], [1, 2]);
        long nW = ph / ws * (pw / ws);
        x = x.view(b, ph / ws, ws, pw / ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(b * nW, ws * ws, c);

        var qkvLayer = (TorchSharp.Modules.Linear)GetChild("qkv");
        Tensor? qkvBias = qkvLayer.bias;
        if (_version == 2 && qkvBias is not null)
        {
            // v2 uses no key bias: torchvision zeroes the middle third of a copy; a 1/0/1 mask does the same, gradients included.
            long len = qkvBias.numel() / 3;
            var keep = ones_like(qkvBias);
            keep[TensorIndex.Slice(len, 2 * len)].fill_(0);
            qkvBias = qkvBias * keep;
        }
        var qkv = nn.functional.linear(x, qkvLayer.weight, qkvBias).reshape(x.shape[0], x.shape[1], 3, _heads, c / _heads).permute(2, 0, 3, 1, 4);
        var (q, k, v) = (qkv[0], qkv[1], qkv[2]);
        Tensor attn;
        if (_version == 2)
        {
            attn = nn.functional.normalize(q, dim: -1).matmul(nn.functional.normalize(k, dim: -1).transpose(-2, -1));
            attn = attn * this.Param("logit_scale").clamp(max: Math.Log(100.0)).exp();
        }
        else
        {
            attn = (q * Math.Pow(c / _heads, -0.5)).matmul(k.transpose(-2, -1));
        }
        attn = attn + RelativePositionBias();
        if (shifted)
        {
            var mask = x.new_zeros(ph, pw);
            long count = 0;
            foreach (var (h0, h1) in Slices(ph, ws, shiftH))
                foreach (var (w0, w1) in Slices(pw, ws, shiftW))
                    mask[TensorIndex.Slice(h0, h1), TensorIndex.Slice(w0, w1)].fill_(count++);
            mask = mask.view(ph / ws, ws, pw / ws, ws).permute(0, 2, 1, 3).reshape(nW, ws * ws);
            mask = mask.unsqueeze(1) - mask.unsqueeze(2);
            mask = mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0);
            attn = attn.view(x.shape[0] / nW, nW, _heads, x.shape[1], x.shape[1]) + mask.unsqueeze(1).unsqueeze(0);
            attn = attn.view(-1, _heads, x.shape[1], x.shape[1]);
        }
        attn = attn.softmax(-1);
        if (_attnDropout > 0) attn = nn.functional.dropout(attn, _attnDropout, training);
        x = attn.matmul(v).transpose(1, 2).reshape(x.shape[0], x.shape[1], c);
        x = Run("proj", x);
        if (_dropout > 0) x = nn.functional.dropout(x, _dropout, training);
        x = x.view(b, ph / ws, pw / ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(b, ph, pw, c);
        if (shifted) x = x.roll([shiftH, shiftW], [1, 2]);
        return x[.., ..(int)h, ..(int)w, ..].contiguous();
    }

    // The three bands torchvision labels, as its Python slices (0, -window), (-window, -shift), (-shift, None) resolve
    // for this size (note -0 == 0: with no shift along an axis the last band covers the whole axis).
    private static (long, long)[] Slices(long size, long window, long shift)
    {
        long At(long i) => Math.Clamp(i < 0 ? size + i : i, 0, size);
        return [(0, At(-window)), (At(-window), At(-shift)), (At(-shift), size)];
    }
}

/// <summary>Swin block: norm1, attn, stochastic_depth, norm2, mlp. v1 is pre-norm, v2 post-norm (norm after attention and MLP).</summary>
public sealed class SwinTransformerBlock : ZooModule
{
    private readonly int _version;

    /// <summary>Creates a block.</summary>
    public SwinTransformerBlock(int dim, int heads, int window, int shift, double mlpRatio, double dropout, double attentionDropout, double sdProb, int version)
        : base(version == 1 ? nameof(SwinTransformerBlock) : "SwinTransformerBlockV2")
    {
        _version = version;
        Add("norm1", nn.LayerNorm([dim], eps: 1e-5));
        Add("attn", new ShiftedWindowAttention(dim, window, shift, heads, version, attentionDropout, dropout));
        Add("stochastic_depth", new StochasticDepth(sdProb, "row"));
        Add("norm2", nn.LayerNorm([dim], eps: 1e-5));
        var mlp = Add("mlp", VisionBlocks.Mlp(dim, (int)(dim * mlpRatio), dim, nn.GELU, dropout));
        using var noGrad = no_grad();
        foreach (var (_, m) in mlp.named_modules())
            if (m is TorchSharp.Modules.Linear l) { nn.init.xavier_uniform_(l.weight); nn.init.normal_(l.bias!, 0, 1e-6); }
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        if (_version == 1)
        {
            x = x + Run("stochastic_depth", Run("attn", Run("norm1", x)));
            return x + Run("stochastic_depth", Run("mlp", Run("norm2", x)));
        }
        x = x + Run("stochastic_depth", Run("norm1", Run("attn", x)));
        return x + Run("stochastic_depth", Run("norm2", Run("mlp", x)));
    }
}

/// <summary>Patch merging: 2×2 neighbourhoods concatenated (4C), then norm and reduction to 2C (v1: norm first; v2: reduction first).</summary>
public sealed class PatchMerging : ZooModule
{
    private readonly int _version;

    /// <summary>Creates the layer for width <paramref name="dim"/>.</summary>
    public PatchMerging(int dim, int version) : base(version == 1 ? nameof(PatchMerging) : "PatchMergingV2")
    {
        _version = version;
        Add("reduction", nn.Linear(4 * dim, 2 * dim, hasBias: false));
        Add("norm", nn.LayerNorm([version == 1 ? 4 * dim : 2 * dim], eps: 1e-5));
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        long h = x.shape[^3], w = x.shape[^2];
        x = nn.functional.pad(x, [0, 0, 0, w % 2, 0, h % 2]);
        var x0 = x[TensorIndex.Ellipsis, TensorIndex.Slice(0, null, 2), TensorIndex.Slice(0, null, 2), TensorIndex.Colon];
        var x1 = x[TensorIndex.Ellipsis, TensorIndex.Slice(1, null, 2), TensorIndex.Slice(0, null, 2), TensorIndex.Colon];
        var x2 = x[TensorIndex.Ellipsis, TensorIndex.Slice(0, null, 2), TensorIndex.Slice(1, null, 2), TensorIndex.Colon];
        var x3 = x[TensorIndex.Ellipsis, TensorIndex.Slice(1, null, 2), TensorIndex.Slice(1, null, 2), TensorIndex.Colon];
        x = cat([x0, x1, x2, x3], -1);
        return _version == 1 ? Run("reduction", Run("norm", x)) : Run("norm", Run("reduction", x));
    }
}

/// <summary>Swin Transformer with torchvision's names: features (0 = patch embedding, odd = stages, even ≥ 2 = patch merging), norm, head.</summary>
public sealed class SwinTransformer : ZooModel
{
    private readonly int _numFeatures;

    /// <summary>Builds the network with torchvision's initialisation.</summary>
    public SwinTransformer(SwinConfig config, ModelOptions options) : base(nameof(SwinTransformer), options.NumClasses, options.InChans)
    {
        Config = config;
        var features = new ZooSequential();
        features.Append("0", new ZooSequential(nn.Conv2d(options.InChans, config.EmbedDim, config.PatchSize, stride: config.PatchSize),
            new Permute(0, 2, 3, 1), nn.LayerNorm([config.EmbedDim], eps: 1e-5)));
        int total = config.Depths.Sum(), id = 0, idx = 1;
        double sdMax = options.DropPathRate ?? config.StochasticDepth;
        double dropout = options.DropRate ?? 0;
        for (int s = 0; s < config.Depths.Length; s++)
        {
            int dim = config.EmbedDim << s;
            var stage = new ZooSequential();
            for (int i = 0; i < config.Depths[s]; i++)
                stage.Append($"{i}", new SwinTransformerBlock(dim, config.NumHeads[s], config.WindowSize, i % 2 == 0 ? 0 : config.WindowSize / 2,
                    config.MlpRatio, dropout, 0, sdMax * id++ / (total - 1.0), config.Version));
            features.Append($"{idx++}", stage);
            if (s < config.Depths.Length - 1) features.Append($"{idx++}", new PatchMerging(dim, config.Version));
        }
        _numFeatures = config.EmbedDim << (config.Depths.Length - 1);
        Add("features", features);
        Add("norm", nn.LayerNorm([_numFeatures], eps: 1e-5));
        Add("head", CreateHead(options.NumClasses));
        using (no_grad())
        {
            foreach (var (name, m) in named_modules())
                if (m is TorchSharp.Modules.Linear l && !name.Contains(".mlp.", StringComparison.Ordinal))
                {
                    nn.init.trunc_normal_(l.weight, std: 0.02, a: -0.04, b: 0.04);
                    if (l.bias is not null && !name.EndsWith("qkv", StringComparison.Ordinal)) nn.init.zeros_(l.bias);
                    else if (l.bias is not null) nn.init.zeros_(l.bias);
                }
        }
    }

    /// <summary>The configuration this network was built from.</summary>
    public SwinConfig Config { get; }

    /// <inheritdoc />
    public override int NumFeatures => _numFeatures;

    /// <inheritdoc />
    public override string HeadPath => "head";

    /// <inheritdoc />
    public override string? StemConvPath => "features.0.0";

    /// <summary>The last stage's map, B × H × W × C (channels last, as torchvision).</summary>
    public override Tensor ForwardFeatures(Tensor x) => Run("features", x);

    /// <summary>Final LayerNorm, global average pool, head.</summary>
    public override Tensor ForwardHead(Tensor features, bool preLogits = false)
    {
        var pooled = Run("norm", features).permute(0, 3, 1, 2);
        pooled = ClassifierHead.GlobalAvgPool(pooled);
        return preLogits ? pooled : Run("head", pooled);
    }

    /// <inheritdoc />
    protected override nn.Module<Tensor, Tensor> CreateHead(int numClasses) =>
        ClassifierHead.Linear(_numFeatures, numClasses, fc => VisionBlocks.InitTruncNormal(fc));

    /// <summary>Groups: stem (patch embedding), each stage with the patch merging before it, head (final norm and head).</summary>
    public override IReadOnlyList<ParameterGroup> ParameterGroups() =>
        Layers.GroupsByPrefix(this, [("stem", ["features.0"]), .. Enumerable.Range(0, Config.Depths.Length).Select(s => ($"stage{s + 1}", s == 0 ? ["features.1"] : new[] { $"features.{2 * s}", $"features.{2 * s + 1}" })), ("head", ["norm", "head"])]);
}

/// <summary>Registers Swin T/S/B v1 and v2 with torchvision's weight tags.</summary>
public static class SwinTransformerFamily
{
    /// <summary>Adds the Swin variants to <paramref name="catalog"/>.</summary>
    public static void Register(ModelCatalog catalog)
    {
        Add(catalog, "swin_t", new(1, 96, [2, 2, 6, 2], [3, 6, 12, 24], 7, 0.2), 28_288_354, 224,
            TV.Tag("imagenet1k_v1", "swin_t-704ceda3.pth", 81.474, 95.776, 232, 224, Interpolation.Bicubic));
        Add(catalog, "swin_s", new(1, 96, [2, 2, 18, 2], [3, 6, 12, 24], 7, 0.3), 49_606_258, 224,
            TV.Tag("imagenet1k_v1", "swin_s-5e29d889.pth", 83.196, 96.36, 246, 224, Interpolation.Bicubic));
        Add(catalog, "swin_b", new(1, 128, [2, 2, 18, 2], [4, 8, 16, 32], 7, 0.5), 87_768_224, 224,
            TV.Tag("imagenet1k_v1", "swin_b-68c6b09e.pth", 83.582, 96.64, 238, 224, Interpolation.Bicubic));
        Add(catalog, "swin_v2_t", new(2, 96, [2, 2, 6, 2], [3, 6, 12, 24], 8, 0.2), 28_351_570, 256,
            TV.Tag("imagenet1k_v1", "swin_v2_t-b137f0e2.pth", 82.072, 96.132, 260, 256, Interpolation.Bicubic));
        Add(catalog, "swin_v2_s", new(2, 96, [2, 2, 18, 2], [3, 6, 12, 24], 8, 0.3), 49_737_442, 256,
            TV.Tag("imagenet1k_v1", "swin_v2_s-637d8ceb.pth", 83.712, 96.816, 260, 256, Interpolation.Bicubic));
        Add(catalog, "swin_v2_b", new(2, 128, [2, 2, 18, 2], [4, 8, 16, 32], 8, 0.5), 87_930_848, 256,
            TV.Tag("imagenet1k_v1", "swin_v2_b-781e5279.pth", 84.112, 96.864, 272, 256, Interpolation.Bicubic));
    }

    private static void Add(ModelCatalog catalog, string name, SwinConfig config, long parameters, int inputSize, params WeightTag[] tags) =>
        TV.Register(catalog, name, config.Version == 1 ? "swin" : "swin_v2", config, o => new SwinTransformer(config, o), parameters, tags, inputSize);

    // Checkpoint remap: none needed; torchvision's checkpoints use these names.
}
