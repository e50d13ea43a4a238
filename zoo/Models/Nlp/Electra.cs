using System.Text.Json.Nodes;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Models.Nlp;

// ELECTRA discriminators with Hugging Face's parameter names (transformers/models/electra/modeling_electra.py). The
// encoder is BERT's (shared blocks in Bert.cs); what differs: embeddings of their own width (embedding_size) projected
// to hidden_size by embeddings_project when the two differ, no pooler, and ElectraClassificationHead
// (classifier.dense → GELU → classifier.out_proj on the first token). File order: config, blocks, model, variants +
// weight tags, remap.

/// <summary>Configuration of an ELECTRA encoder: BERT's fields plus <paramref name="EmbeddingSize"/> (HF ElectraConfig).</summary>
/// <param name="Encoder">The BERT-shaped part (hidden size, layers, heads, FFN, vocabulary, positions, …).</param>
/// <param name="EmbeddingSize">embedding_size (128 for the small models, = hidden_size for base/large).</param>
public sealed record ElectraConfig(BertConfig Encoder, int EmbeddingSize)
{
    /// <summary>Reads a Hugging Face ELECTRA <c>config.json</c>.</summary>
    public static ElectraConfig FromJson(string json, string source = "config.json")
    {
        var o = JsonNode.Parse(json)?.AsObject() ?? throw new FormatException($"{source} is not a JSON object.");
        string type = o["model_type"]?.GetValue<string>() ?? "electra";
        if (type != "electra") throw new NotSupportedException($"{source} has model_type '{type}', not 'electra'.");
        o["model_type"] = "bert";
        var bert = BertConfig.FromJson(o.ToJsonString(), source) with { AddPooler = false, Pooling = TextPooling.Cls, ModelType = "electra" };
        return new ElectraConfig(bert, BertConfig.Int(o, "embedding_size", bert.HiddenSize));
    }

    /// <inheritdoc />
    public override string ToString() => $"electra: {Encoder.NumHiddenLayers} layers, hidden {Encoder.HiddenSize}, embeddings {EmbeddingSize}, {Encoder.NumAttentionHeads} heads, FFN {Encoder.IntermediateSize}";
}

/// <summary>HF ElectraClassificationHead: dropout, dense, GELU, dropout, out_proj, on the first token's hidden state.</summary>
public sealed class ElectraClassificationHead : ZooModule
{
    internal ElectraClassificationHead(int hidden, int numClasses, double dropout) : base(nameof(ElectraClassificationHead))
    {
        Add("dense", nn.Linear(hidden, hidden));
        Add("activation", nn.GELU());
        Add("dropout", nn.Dropout(dropout));
        Add("out_proj", nn.Linear(hidden, numClasses));
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor pooled) =>
        Run("out_proj", Run("dropout", Run("activation", Run("dense", Run("dropout", pooled)))));
}

/// <summary>An ELECTRA discriminator encoder: <c>embeddings</c>, optional <c>embeddings_project</c>, <c>encoder.layer.N</c>.</summary>
public sealed class ElectraModel : TextEncoder
{
    /// <summary>Builds the encoder with Hugging Face's initialisation.</summary>
    public ElectraModel(ElectraConfig config, ModelOptions options)
        : base(nameof(ElectraModel), 0, config.Encoder.HiddenSize, config.Encoder.VocabSize, config.Encoder.PadTokenId,
            config.Encoder.MaxPositionEmbeddings, config.Encoder.NumHiddenLayers, TextPooling.Cls)
    {
        Config = config;
        var c = config.Encoder;
        Add("embeddings", new BertEmbeddings(c with { HiddenSize = config.EmbeddingSize, ModelType = "bert" }, Inputs));
        if (config.EmbeddingSize != c.HiddenSize) Add("embeddings_project", nn.Linear(config.EmbeddingSize, c.HiddenSize));
        Add("encoder", new BertEncoder(c, Inputs));
        Add("dropout", nn.Dropout(options.DropRate ?? c.ClassifierDropout ?? c.HiddenDropoutProb));
        Add("classifier", CreateHead(0));
        TextBlocks.Init(this, c.InitializerRange);
        TextBlocks.ZeroRow(this, "embeddings.word_embeddings", c.PadTokenId);
        if (options.NumClasses > 0) ReplaceHead(options.NumClasses);
    }

    /// <summary>The configuration this encoder was built from.</summary>
    public ElectraConfig Config { get; }

    /// <inheritdoc />
    public override string LayersPath => "encoder.layer";

    /// <inheritdoc />
    private protected override string[] HeadPrefixes => ["classifier"];

    /// <inheritdoc />
    private protected override Tensor EncodeTokens(Tensor x) => Run("encoder", EmbedTokens(x));

    /// <inheritdoc />
    private protected override Tensor EmbedTokens(Tensor inputIds) => RunIfPresent("embeddings_project", Run("embeddings", inputIds));

    /// <inheritdoc />
    private protected override nn.Module<Tensor, Tensor> CreateSequenceHead(int numClasses) =>
        new ElectraClassificationHead(NumFeatures, numClasses, Config.Encoder.ClassifierDropout ?? Config.Encoder.HiddenDropoutProb);

    /// <inheritdoc />
    private protected override Tensor ClassifySequence(Tensor pooled) => Run("classifier", pooled);

    /// <summary>Hugging Face ELECTRA checkpoints → this model's names (see <see cref="ElectraFamily.RemapCheckpoint"/>).</summary>
    protected internal override IReadOnlyDictionary<string, Tensor> RemapCheckpoint(IReadOnlyDictionary<string, Tensor> checkpoint) =>
        ElectraFamily.RemapCheckpoint(checkpoint);
}

/// <summary>Registers ELECTRA discriminators with their Hugging Face repositories.</summary>
public static class ElectraFamily
{
    /// <summary>Adds electra-small-discriminator and electra-base-discriminator to <paramref name="catalog"/>.</summary>
    public static void Register(ModelCatalog catalog)
    {
        var baseEncoder = new BertConfig(ModelType: "electra", AddPooler: false, Pooling: TextPooling.Cls);
        Add(catalog, "electra-small-discriminator", new ElectraConfig(baseEncoder with { HiddenSize = 256, NumAttentionHeads = 4, IntermediateSize = 1024 }, 128),
            13_483_008, "google/electra-small-discriminator", "ELECTRA small discriminator (Clark et al. 2020): 128-d embeddings projected to 256.");
        Add(catalog, "electra-base-discriminator", new ElectraConfig(baseEncoder, 768),
            108_891_648, "google/electra-base-discriminator", "ELECTRA base discriminator.");
    }

    private static void Add(ModelCatalog catalog, string name, ElectraConfig config, long parameters, string repo, string description)
    {
        var hub = new WeightTag("hf", [WeightSource.FromHub(repo, "pytorch_model.bin")], WeightFormat.Pth, "Apache-2.0", null, 0,
            FileName: "pytorch_model.bin", Description: $"Hugging Face {repo} (also: config.json, vocab.txt, tokenizer.json; lowercase=true).");
        catalog.Register(new ModelEntry(name, "electra", ModelTask.Nlp, config, o => new ElectraModel(config, BertFamily.TextOptions(o)), parameters,
            [config.Encoder.MaxPositionEmbeddings], [hub], Description: description));
    }

    /// <summary>
    /// Renames a Hugging Face ELECTRA checkpoint: strips <c>electra.</c>, drops the discriminator head
    /// (<c>discriminator_predictions.*</c>), generator heads and the <c>position_ids</c> buffer.
    /// </summary>
    public static Dictionary<string, Tensor> RemapCheckpoint(IReadOnlyDictionary<string, Tensor> stateDict)
    {
        ArgumentNullException.ThrowIfNull(stateDict);
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (key, value) in stateDict)
        {
            string k = key.StartsWith("electra.", StringComparison.Ordinal) ? key["electra.".Length..] : key;
            if (k.StartsWith("discriminator_predictions.", StringComparison.Ordinal) || k.StartsWith("generator_", StringComparison.Ordinal)
                || k.EndsWith("position_ids", StringComparison.Ordinal)) continue;
            result[k] = value;
        }
        return result;
    }
}
