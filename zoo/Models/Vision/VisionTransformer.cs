using TorchSharp;
using ModelZoo.Models;
using static TorchSharp.torch;
using TV = ModelZoo.Models.TorchvisionWeights;

namespace ModelZoo.Models.Vision;

// Vision Transformer B/16, B/32, L/16, L/32, H/14 with torchvision's parameter names
// (torchvision/models/vision_transformer.py). File order, as in every family: config, blocks, model, variants +
// weight tags, checkpoint remap. Inputs of other sizes than ImageSize work: the position embedding is interpolated
// (bicubic, align_corners, as torchvision's interpolate_embeddings) to the patch grid of each input.

/// <summary>Configuration of a Vision Transformer.</summary>
/// <param name="PatchSize">Side of the square patches.</param>
/// <param name="NumLayers">Encoder blocks.</param>
/// <param name="NumHeads">Attention heads.</param>
/// <param name="HiddenDim">Token width.</param>
/// <param name="MlpDim">MLP hidden width.</param>
/// <param name="ImageSize">Image side the position embedding is sized for.</param>
/// <param name="Dropout">Dropout after the position embedding, attention output and MLP.</param>
/// <param name="AttentionDropout">Dropout on attention weights.</param>
public sealed record ViTConfig(int PatchSize, int NumLayers, int NumHeads, int HiddenDim, int MlpDim, int ImageSize = 224, double Dropout = 0, double AttentionDropout = 0)
{
    /// <inheritdoc />
    public override string ToString() => $"patch {PatchSize}, {NumLayers} layers, {NumHeads} heads, width {HiddenDim}, MLP {MlpDim}, image {ImageSize}";
}

/// <summary>Multi-head self-attention with PyTorch's <c>nn.MultiheadAttention</c> names: in_proj_weight, in_proj_bias, out_proj.</summary>
public sealed class MultiheadSelfAttention : ZooModule
{
    private readonly int _heads;
    private readonly double _attnDropout;

    /// <summary>Creates the layer.</summary>
    public MultiheadSelfAttention(int dim, int heads, double attentionDropout) : base("MultiheadAttention")
    {
        if (dim % heads != 0) throw new ArgumentException($"Width {dim} is not divisible by {heads} heads (VisionTransformer.cs).");
        _heads = heads;
        _attnDropout = attentionDropout;
        var w = empty(3 * dim, dim);
        nn.init.xavier_uniform_(w);
        register_parameter("in_proj_weight", new TorchSharp.Modules.Parameter(w));
        register_parameter("in_proj_bias", new TorchSharp.Modules.Parameter(zeros(3 * dim)));
        var outProj = Add("out_proj", nn.Linear(dim, dim));
        using var noGrad = no_grad();
        nn.init.zeros_(outProj.bias!);
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        long b = x.shape[0], t = x.shape[1], c = x.shape[2], hd = c / _heads;
        var qkv = nn.functional.linear(x, this.Param("in_proj_weight"), this.Param("in_proj_bias"))
            .reshape(b, t, 3, _heads, hd).permute(2, 0, 3, 1, 4);
        var q = qkv[0] / Math.Sqrt(hd);
        var attn = q.matmul(qkv[1].transpose(-2, -1)).softmax(-1);
        if (_attnDropout > 0) attn = nn.functional.dropout(attn, _attnDropout, training);
        var y = attn.matmul(qkv[2]).transpose(1, 2).reshape(b, t, c);
        return Run("out_proj", y);
    }
}

/// <summary>Pre-norm transformer block: ln_1, self_attention, dropout, ln_2, mlp (0 Linear, 1 GELU, 2 Dropout, 3 Linear, 4 Dropout).</summary>
public sealed class EncoderBlock : ZooModule
{
    /// <summary>Creates a block.</summary>
    public EncoderBlock(int heads, int dim, int mlpDim, double dropout, double attentionDropout) : base(nameof(EncoderBlock))
    {
        Add("ln_1", nn.LayerNorm([dim], eps: 1e-6));
        Add("self_attention", new MultiheadSelfAttention(dim, heads, attentionDropout));
        Add("dropout", nn.Dropout(dropout));
        Add("ln_2", nn.LayerNorm([dim], eps: 1e-6));
        var mlp = Add("mlp", VisionBlocks.Mlp(dim, mlpDim, dim, nn.GELU, dropout));
        using var noGrad = no_grad();
        foreach (var (_, m) in mlp.named_modules())
            if (m is TorchSharp.Modules.Linear l) { nn.init.xavier_uniform_(l.weight); nn.init.normal_(l.bias!, 0, 1e-6); }
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        var x = Run("dropout", Run("self_attention", Run("ln_1", input))) + input;
        return x + Run("mlp", Run("ln_2", x));
    }
}

/// <summary>The encoder: pos_embedding (parameter), dropout, layers (encoder_layer_0…), ln.</summary>
public sealed class ViTEncoder : ZooModule
{
    /// <summary>Creates the encoder for <paramref name="seqLength"/> tokens (class token included).</summary>
    public ViTEncoder(int seqLength, ViTConfig c, double dropout) : base("Encoder")
    {
        var pos = empty(1, seqLength, c.HiddenDim);
        nn.init.normal_(pos, 0, 0.02);
        register_parameter("pos_embedding", new TorchSharp.Modules.Parameter(pos));
        Add("dropout", nn.Dropout(dropout));
        var layers = new ZooSequential();
        for (int i = 0; i < c.NumLayers; i++) layers.Append($"encoder_layer_{i}", new EncoderBlock(c.NumHeads, c.HiddenDim, c.MlpDim, dropout, c.AttentionDropout));
        Add("layers", layers);
        Add("ln", nn.LayerNorm([c.HiddenDim], eps: 1e-6));
    }

    /// <summary>Puts <paramref name="pos"/> in place of the position embedding (a checkpoint for another image size).</summary>
    internal void ReplacePositionEmbedding(TorchSharp.Modules.Parameter pos) => ConditionallyRegisterParameter("pos_embedding", pos);

    /// <summary>Patch grid (rows, columns) of the next input; set by the model before each call.</summary>
    internal (long Rows, long Cols) Grid { get; set; }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        Tensor pos = this.Param("pos_embedding");
        if (pos.shape[1] != x.shape[1]) pos = VisionTransformer.ResizePositionEmbedding(pos, Grid.Rows, Grid.Cols);
        return Run("ln", Run("layers", Run("dropout", x + pos)));
    }
}

/// <summary>Vision Transformer with torchvision's names: conv_proj, class_token, encoder, heads.head.</summary>
public sealed class VisionTransformer : ZooModel, ICheckpointAdapter
{
    /// <summary>Builds the network with torchvision's initialisation.</summary>
    public VisionTransformer(ViTConfig config, ModelOptions options) : base(nameof(VisionTransformer), options.NumClasses, options.InChans)
    {
        Config = config;
        var proj = Add("conv_proj", nn.Conv2d(options.InChans, config.HiddenDim, config.PatchSize, stride: config.PatchSize));
        using (no_grad())
        {
            long fanIn = options.InChans * config.PatchSize * config.PatchSize;
            double std = Math.Sqrt(1.0 / fanIn);
            nn.init.trunc_normal_(proj.weight, std: std, a: -2 * std, b: 2 * std);
            nn.init.zeros_(proj.bias!);
        }
        register_parameter("class_token", new TorchSharp.Modules.Parameter(zeros(1, 1, config.HiddenDim)));
        int grid = config.ImageSize / config.PatchSize;
        Add("encoder", new ViTEncoder(grid * grid + 1, config, options.DropRate ?? config.Dropout));
        Add("heads", new ZooSequential([("head", CreateHead(options.NumClasses))]));
    }

    /// <summary>The configuration this network was built from (ImageSize follows a loaded checkpoint's grid).</summary>
    public ViTConfig Config { get; private set; }

    /// <inheritdoc />
    public override int NumFeatures => Config.HiddenDim;

    /// <inheritdoc />
    public override string HeadPath => "heads.head";

    /// <inheritdoc />
    public override string? StemConvPath => "conv_proj";

    /// <inheritdoc />
    public override long[] DryRunInputShape => [1, InChans, Config.PatchSize * 4, Config.PatchSize * 4];

    /// <summary>Tokens after the encoder: B × (1 + patches) × width, class token first.</summary>
    public override Tensor ForwardFeatures(Tensor x)
    {
        long n = x.shape[0], p = Config.PatchSize;
        if (x.shape[2] % p != 0 || x.shape[3] % p != 0)
            throw new ArgumentException($"Input {x.shape[2]}×{x.shape[3]} is not a multiple of the patch size {p} (VisionTransformer.cs); resize or crop the images.");
        long rows = x.shape[2] / p, cols = x.shape[3] / p;
        var tokens = Run("conv_proj", x).reshape(n, Config.HiddenDim, rows * cols).permute(0, 2, 1);
        tokens = cat([this.Param("class_token").expand(n, -1, -1), tokens], 1);
        ((ViTEncoder)GetChild("encoder")).Grid = (rows, cols);
        return Run("encoder", tokens);
    }

    /// <summary>Takes the class token and applies the head.</summary>
    public override Tensor ForwardHead(Tensor features, bool preLogits = false)
    {
        var cls = features[.., 0];
        return preLogits ? cls : Run("heads", cls);
    }

    /// <inheritdoc />
    protected override nn.Module<Tensor, Tensor> CreateHead(int numClasses) =>
        ClassifierHead.Linear(Config.HiddenDim, numClasses, fc =>
        {
            nn.init.zeros_(fc.weight);
            nn.init.zeros_(fc.bias!);
        });

    /// <summary>Groups: stem (conv_proj, class_token, pos_embedding), one group per encoder layer (for layer-wise decay), head (final ln and heads).</summary>
    public override IReadOnlyList<ParameterGroup> ParameterGroups() =>
        Layers.GroupsByPrefix(this, [("stem", ["conv_proj", "class_token", "encoder.pos_embedding"]),
            .. Enumerable.Range(0, Config.NumLayers).Select(i => ($"layer{i}", new[] { $"encoder.layers.encoder_layer_{i}" })),
            ("head", ["encoder.ln", "heads"])]);

    /// <summary>
    /// Position embedding (1 × (1 + g²) × C, square grid g) resized to a rows × cols grid: the class-token entry is kept,
    /// the grid is interpolated bicubically with align_corners, as torchvision's <c>interpolate_embeddings</c>.
    /// </summary>
    public static Tensor ResizePositionEmbedding(Tensor pos, long rows, long cols)
    {
        long seq = pos.shape[1] - 1, dim = pos.shape[2];
        long side = (long)Math.Round(Math.Sqrt(seq));
        if (side * side != seq) throw new ArgumentException($"Position embedding with {seq} patch tokens is not a square grid (VisionTransformer.cs).");
        if (rows == side && cols == side) return pos;
        var token = pos[.., ..1, ..];
        var img = pos[.., 1.., ..].permute(0, 2, 1).reshape(1, dim, side, side);
        img = nn.functional.interpolate(img, [rows, cols], mode: InterpolationMode.Bicubic, align_corners: true);
        return cat([token, img.reshape(1, dim, rows * cols).permute(0, 2, 1)], 1);
    }

    /// <summary>
    /// Renames old MLP keys (<c>mlp.linear_1</c> → <c>mlp.0</c>, <c>mlp.linear_2</c> → <c>mlp.3</c>) and, when the
    /// checkpoint's position embedding is for another image size (SWAG 384/512/518 weights), resizes this model's
    /// position embedding to the checkpoint's grid so it loads unchanged; other input sizes are then interpolated per call.
    /// </summary>
    public Dictionary<string, Tensor> AdaptCheckpoint(Dictionary<string, Tensor> stateDict)
    {
        var result = VisionTransformerFamily.Remap(stateDict);
        if (result.TryGetValue("encoder.pos_embedding", out var pos))
        {
            var encoder = (ViTEncoder)GetChild("encoder");
            var mine = encoder.Param("pos_embedding");
            if (pos.shape[1] != mine.shape[1])
            {
                long side = (long)Math.Round(Math.Sqrt(pos.shape[1] - 1));
                var replacement = new TorchSharp.Modules.Parameter(zeros(pos.shape, mine.dtype, mine.device), mine.requires_grad);
                encoder.ReplacePositionEmbedding(replacement);
                Config = Config with { ImageSize = (int)side * Config.PatchSize };
            }
        }
        return result;
    }
}

/// <summary>Registers ViT B/16, B/32, L/16, L/32, H/14 with torchvision's weight tags.</summary>
public static class VisionTransformerFamily
{
    /// <summary>Adds the ViT variants to <paramref name="catalog"/>.</summary>
    public static void Register(ModelCatalog catalog)
    {
        Add(catalog, "vit_b_16", new(16, 12, 12, 768, 3072), 86_567_656, null,
            TV.Tag("imagenet1k_v1", "vit_b_16-c867db91.pth", 81.072, 95.318, 256, 224),
            TV.Tag("imagenet1k_swag_e2e_v1", "vit_b_16_swag-9ac1b537.pth", 85.304, 97.65, 384, 384, Interpolation.Bicubic),
            TV.Tag("imagenet1k_swag_linear_v1", "vit_b_16_lc_swag-4e70ced5.pth", 81.886, 96.18, 224, 224, Interpolation.Bicubic));
        Add(catalog, "vit_b_32", new(32, 12, 12, 768, 3072), 88_224_232, null,
            TV.Tag("imagenet1k_v1", "vit_b_32-d86f8d99.pth", 75.912, 92.466, 256, 224));
        Add(catalog, "vit_l_16", new(16, 24, 16, 1024, 4096), 304_326_632, null,
            TV.Tag("imagenet1k_v1", "vit_l_16-852ce7e3.pth", 79.662, 94.638, 242, 224),
            TV.Tag("imagenet1k_swag_e2e_v1", "vit_l_16_swag-4f3808c9.pth", 88.064, 98.512, 512, 512, Interpolation.Bicubic),
            TV.Tag("imagenet1k_swag_linear_v1", "vit_l_16_lc_swag-4d563306.pth", 85.146, 97.422, 224, 224, Interpolation.Bicubic));
        Add(catalog, "vit_l_32", new(32, 24, 16, 1024, 4096), 306_535_400, null,
            TV.Tag("imagenet1k_v1", "vit_l_32-c7638314.pth", 76.972, 93.07, 256, 224));
        Add(catalog, "vit_h_14", new(14, 32, 16, 1280, 5120), 632_045_800, "imagenet1k_swag_e2e_v1",
            TV.Tag("imagenet1k_swag_e2e_v1", "vit_h_14_swag-80465313.pth", 88.552, 98.694, 518, 518, Interpolation.Bicubic),
            TV.Tag("imagenet1k_swag_linear_v1", "vit_h_14_lc_swag-c1eb923e.pth", 85.708, 97.73, 224, 224, Interpolation.Bicubic));
    }

    private static void Add(ModelCatalog catalog, string name, ViTConfig config, long parameters, string? defaultTag, params WeightTag[] tags) =>
        TV.Register(catalog, name, "vit", config, o => new VisionTransformer(config, o), parameters, tags, defaultTag: defaultTag,
            description: $"{name} ({config}) as in torchvision; other input sizes interpolate the position embedding.");

    /// <summary>Checkpoint remap: ViT checkpoints saved before torchvision 0.13 name the MLP layers <c>linear_1</c>/<c>linear_2</c>; now <c>0</c>/<c>3</c>.</summary>
    public static Dictionary<string, Tensor> Remap(Dictionary<string, Tensor> stateDict) =>
        CheckpointKeys.Renamed(stateDict, key => key.Replace(".mlp.linear_1.", ".mlp.0.", StringComparison.Ordinal).Replace(".mlp.linear_2.", ".mlp.3.", StringComparison.Ordinal));
}
