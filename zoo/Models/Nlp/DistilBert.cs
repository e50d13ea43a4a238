using System.Text.Json.Nodes;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Models.Nlp;

// DistilBERT with Hugging Face's parameter names (transformers/models/distilbert/modeling_distilbert.py). Differences
// from BERT: no token types, no pooler, names (transformer.layer.N.attention.q_lin/k_lin/v_lin/out_lin, sa_layer_norm,
// ffn.lin1/lin2, output_layer_norm), and a sequence head pre_classifier → ReLU → dropout → classifier on the first
// token. File order: config, blocks, model, variants + weight tags, remap.

/// <summary>Configuration of DistilBERT, read from a Hugging Face <c>config.json</c> (DistilBertConfig fields).</summary>
/// <param name="VocabSize">vocab_size.</param>
/// <param name="Dim">dim (hidden width).</param>
/// <param name="NLayers">n_layers.</param>
/// <param name="NHeads">n_heads.</param>
/// <param name="HiddenDim">hidden_dim (feed-forward width).</param>
/// <param name="Activation">activation (gelu or relu).</param>
/// <param name="MaxPositionEmbeddings">max_position_embeddings.</param>
/// <param name="Dropout">dropout.</param>
/// <param name="AttentionDropout">attention_dropout.</param>
/// <param name="SeqClassifDropout">seq_classif_dropout (before the sequence classifier).</param>
/// <param name="PadTokenId">pad_token_id.</param>
/// <param name="InitializerRange">initializer_range.</param>
public sealed record DistilBertConfig(
    int VocabSize = 30522,
    int Dim = 768,
    int NLayers = 6,
    int NHeads = 12,
    int HiddenDim = 3072,
    string Activation = "gelu",
    int MaxPositionEmbeddings = 512,
    double Dropout = 0.1,
    double AttentionDropout = 0.1,
    double SeqClassifDropout = 0.2,
    int PadTokenId = 0,
    double InitializerRange = 0.02)
{
    /// <summary>DistilBERT's LayerNorm epsilon (fixed in the reference code).</summary>
    public const double LayerNormEps = 1e-12;

    /// <summary>Reads a Hugging Face DistilBERT <c>config.json</c>.</summary>
    /// <exception cref="NotSupportedException">sinusoidal_pos_embds is true (not implemented).</exception>
    public static DistilBertConfig FromJson(string json, string source = "config.json")
    {
        var o = JsonNode.Parse(json)?.AsObject() ?? throw new FormatException($"{source} is not a JSON object.");
        string type = o["model_type"]?.GetValue<string>() ?? "distilbert";
        if (type != "distilbert") throw new NotSupportedException($"{source} has model_type '{type}', not 'distilbert'.");
        if (o["sinusoidal_pos_embds"] is JsonValue s && s.GetValue<bool>())
            throw new NotSupportedException($"{source} sets sinusoidal_pos_embds; only learned position embeddings are implemented.");
        var d = new DistilBertConfig();
        return new DistilBertConfig(
            BertConfig.Int(o, "vocab_size", d.VocabSize), BertConfig.Int(o, "dim", d.Dim), BertConfig.Int(o, "n_layers", d.NLayers),
            BertConfig.Int(o, "n_heads", d.NHeads), BertConfig.Int(o, "hidden_dim", d.HiddenDim), o["activation"]?.GetValue<string>() ?? d.Activation,
            BertConfig.Int(o, "max_position_embeddings", d.MaxPositionEmbeddings), BertConfig.Dbl(o, "dropout", d.Dropout),
            BertConfig.Dbl(o, "attention_dropout", d.AttentionDropout), BertConfig.Dbl(o, "seq_classif_dropout", d.SeqClassifDropout),
            BertConfig.Int(o, "pad_token_id", d.PadTokenId), BertConfig.Dbl(o, "initializer_range", d.InitializerRange));
    }

    /// <inheritdoc />
    public override string ToString() => $"distilbert: {NLayers} layers, dim {Dim}, {NHeads} heads, FFN {HiddenDim} ({Activation}), vocab {VocabSize}, positions {MaxPositionEmbeddings}";
}

/// <summary>Word and position embeddings, LayerNorm, dropout (HF DistilBERT Embeddings; no token types).</summary>
public sealed class DistilBertEmbeddings : ZooModule
{
    internal DistilBertEmbeddings(DistilBertConfig c) : base(nameof(DistilBertEmbeddings))
    {
        Add("word_embeddings", nn.Embedding(c.VocabSize, c.Dim, padding_idx: c.PadTokenId));
        Add("position_embeddings", nn.Embedding(c.MaxPositionEmbeddings, c.Dim));
        Add("LayerNorm", nn.LayerNorm(c.Dim, eps: DistilBertConfig.LayerNormEps));
        Add("dropout", nn.Dropout(c.Dropout));
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor ids)
    {
        var positions = arange(ids.shape[1], dtype: int64, device: ids.device).unsqueeze(0);
        return Run("dropout", Run("LayerNorm", Run("word_embeddings", ids).add(Run("position_embeddings", positions))));
    }
}

/// <summary>Multi-head self-attention with q_lin, k_lin, v_lin, out_lin (HF MultiHeadSelfAttention).</summary>
public sealed class DistilBertAttention : ZooModule
{
    private readonly TextInputs _inputs;
    private readonly int _heads;

    internal DistilBertAttention(DistilBertConfig c, TextInputs inputs) : base(nameof(DistilBertAttention))
    {
        if (c.Dim % c.NHeads != 0) throw new ArgumentException($"dim {c.Dim} is not a multiple of n_heads {c.NHeads} (config.json).");
        _inputs = inputs;
        _heads = c.NHeads;
        Add("dropout", nn.Dropout(c.AttentionDropout));
        Add("q_lin", nn.Linear(c.Dim, c.Dim));
        Add("k_lin", nn.Linear(c.Dim, c.Dim));
        Add("v_lin", nn.Linear(c.Dim, c.Dim));
        Add("out_lin", nn.Linear(c.Dim, c.Dim));
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x) =>
        Run("out_lin", TextBlocks.Attention(Run("q_lin", x), Run("k_lin", x), Run("v_lin", x), _heads, _inputs.AdditiveMask, p => Run("dropout", p)));
}

/// <summary>The feed-forward block: lin1, activation, lin2, dropout (HF FFN).</summary>
public sealed class DistilBertFfn : ZooModule
{
    internal DistilBertFfn(DistilBertConfig c) : base(nameof(DistilBertFfn))
    {
        Add("dropout", nn.Dropout(c.Dropout));
        Add("lin1", nn.Linear(c.Dim, c.HiddenDim));
        Add("lin2", nn.Linear(c.HiddenDim, c.Dim));
        Add("activation", TextBlocks.Activation(c.Activation));
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x) => Run("dropout", Run("lin2", Run("activation", Run("lin1", x))));
}

/// <summary>One layer: attention, sa_layer_norm (post-norm residual), ffn, output_layer_norm (HF TransformerBlock).</summary>
public sealed class DistilBertBlock : ZooModule
{
    internal DistilBertBlock(DistilBertConfig c, TextInputs inputs) : base(nameof(DistilBertBlock))
    {
        Add("attention", new DistilBertAttention(c, inputs));
        Add("sa_layer_norm", nn.LayerNorm(c.Dim, eps: DistilBertConfig.LayerNormEps));
        Add("ffn", new DistilBertFfn(c));
        Add("output_layer_norm", nn.LayerNorm(c.Dim, eps: DistilBertConfig.LayerNormEps));
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        var sa = Run("sa_layer_norm", Run("attention", x).add(x));
        return Run("output_layer_norm", Run("ffn", sa).add(sa));
    }
}

/// <summary>The stack of layers (HF Transformer: <c>layer.0</c> … <c>layer.N-1</c>).</summary>
public sealed class DistilBertTransformer : ZooModule
{
    internal DistilBertTransformer(DistilBertConfig c, TextInputs inputs) : base(nameof(DistilBertTransformer))
    {
        Add("layer", new ZooSequential(Enumerable.Range(0, c.NLayers).Select(_ => (nn.Module<Tensor, Tensor>)new DistilBertBlock(c, inputs)).ToArray()));
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x) => Run("layer", x);
}

/// <summary>HF DistilBertForSequenceClassification's head on the first token: pre_classifier, ReLU, dropout, classifier.</summary>
public sealed class DistilBertClassificationHead : ZooModule
{
    internal DistilBertClassificationHead(int dim, int numClasses, double dropout) : base(nameof(DistilBertClassificationHead))
    {
        Add("pre_classifier", nn.Linear(dim, dim));
        Add("dropout", nn.Dropout(dropout));
        Add("classifier", nn.Linear(dim, numClasses));
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor pooled) => Run("classifier", Run("dropout", nn.functional.relu(Run("pre_classifier", pooled))));
}

/// <summary>
/// DistilBERT with Hugging Face's names (<c>embeddings</c>, <c>transformer.layer.N</c>). The sequence head lives at
/// <c>classifier</c> (<c>classifier.pre_classifier</c>, <c>classifier.classifier</c>); <see cref="DistilBertFamily.RemapCheckpoint"/>
/// maps HF's top-level <c>pre_classifier</c>/<c>classifier</c> there.
/// </summary>
public sealed class DistilBertModel : TextEncoder
{
    /// <summary>Builds the encoder with Hugging Face's initialisation.</summary>
    public DistilBertModel(DistilBertConfig config, ModelOptions options)
        : base(nameof(DistilBertModel), 0, config.Dim, config.VocabSize, config.PadTokenId, config.MaxPositionEmbeddings, config.NLayers, TextPooling.Cls)
    {
        Config = config;
        Add("embeddings", new DistilBertEmbeddings(config));
        Add("transformer", new DistilBertTransformer(config, Inputs));
        Add("dropout", nn.Dropout(options.DropRate ?? config.Dropout));
        Add("classifier", CreateHead(0));
        TextBlocks.Init(this, config.InitializerRange);
        TextBlocks.ZeroRow(this, "embeddings.word_embeddings", config.PadTokenId);
        if (options.NumClasses > 0) ReplaceHead(options.NumClasses);
    }

    /// <summary>The configuration this encoder was built from.</summary>
    public DistilBertConfig Config { get; }

    /// <inheritdoc />
    public override string LayersPath => "transformer.layer";

    /// <inheritdoc />
    private protected override Tensor EncodeTokens(Tensor x) => Run("transformer", Run("embeddings", x));

    /// <inheritdoc />
    private protected override nn.Module<Tensor, Tensor> CreateSequenceHead(int numClasses) =>
        new DistilBertClassificationHead(NumFeatures, numClasses, Config.SeqClassifDropout);

    /// <inheritdoc />
    private protected override Tensor ClassifySequence(Tensor pooled) => Run("classifier", pooled);

    /// <summary>Hugging Face DistilBERT checkpoints → this model's names (see <see cref="DistilBertFamily.RemapCheckpoint"/>).</summary>
    protected internal override IReadOnlyDictionary<string, Tensor> RemapCheckpoint(IReadOnlyDictionary<string, Tensor> checkpoint) =>
        DistilBertFamily.RemapCheckpoint(checkpoint);
}

/// <summary>Registers DistilBERT with its Hugging Face repository.</summary>
public static class DistilBertFamily
{
    /// <summary>Adds distilbert-base-uncased to <paramref name="catalog"/>.</summary>
    public static void Register(ModelCatalog catalog)
    {
        var config = new DistilBertConfig();
        var hub = new WeightTag("hf", [WeightSource.FromHub("distilbert/distilbert-base-uncased", "model.safetensors")], WeightFormat.SafeTensors, "Apache-2.0", null, 0,
            FileName: "model.safetensors", Description: "Hugging Face distilbert/distilbert-base-uncased (also: pytorch_model.bin; config.json, vocab.txt, tokenizer.json; lowercase=true).");
        catalog.Register(new ModelEntry("distilbert-base-uncased", "distilbert", ModelTask.Nlp, config, o => new DistilBertModel(config, BertFamily.TextOptions(o)),
            66_362_880, [config.MaxPositionEmbeddings], [hub], Description: "DistilBERT base, uncased (Sanh et al. 2019): 6 layers distilled from BERT base."));
    }

    /// <summary>
    /// Renames a Hugging Face DistilBERT checkpoint: drops the <c>distilbert.</c> prefix and the masked-LM head
    /// (<c>vocab_transform</c>, <c>vocab_layer_norm</c>, <c>vocab_projector</c>); a sequence-classification checkpoint's
    /// <c>pre_classifier.*</c>/<c>classifier.*</c> move under <c>classifier.</c>.
    /// </summary>
    public static Dictionary<string, Tensor> RemapCheckpoint(IReadOnlyDictionary<string, Tensor> stateDict)
    {
        ArgumentNullException.ThrowIfNull(stateDict);
        bool sequenceHead = stateDict.Keys.Any(k => k.StartsWith("pre_classifier.", StringComparison.Ordinal));
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (key, value) in stateDict)
        {
            string k = key.StartsWith("distilbert.", StringComparison.Ordinal) ? key["distilbert.".Length..] : key;
            if (k.StartsWith("vocab_", StringComparison.Ordinal) || k.EndsWith("position_ids", StringComparison.Ordinal)) continue;
            if (sequenceHead && (k.StartsWith("pre_classifier.", StringComparison.Ordinal) || k.StartsWith("classifier.", StringComparison.Ordinal)))
                k = "classifier." + k;
            result[k] = value;
        }
        return result;
    }
}
