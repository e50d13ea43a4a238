using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Models.Nlp;

// RoBERTa with Hugging Face's parameter names (transformers/models/roberta/modeling_roberta.py). The encoder is
// BERT's (shared blocks in Bert.cs); what differs: position ids count non-padding tokens from pad_token_id + 1, one
// token type, LayerNorm eps 1e-5, no pooler in the masked-LM checkpoints, and RobertaClassificationHead
// (classifier.dense → tanh → classifier.out_proj on the <s> token). File order: config (BertConfig with
// model_type roberta), blocks, model, variants + weight tags, remap.

/// <summary>HF RobertaClassificationHead: dropout, dense, tanh, dropout, out_proj, applied to the first token's hidden state.</summary>
public sealed class RobertaClassificationHead : ZooModule
{
    internal RobertaClassificationHead(int hidden, int numClasses, double dropout) : base(nameof(RobertaClassificationHead))
    {
        Add("dense", nn.Linear(hidden, hidden));
        Add("dropout", nn.Dropout(dropout));
        Add("out_proj", nn.Linear(hidden, numClasses));
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor pooled) =>
        Run("out_proj", Run("dropout", Run("dense", Run("dropout", pooled)).tanh()));
}

/// <summary>A RoBERTa encoder: BERT's modules with RoBERTa's positions and classification head.</summary>
public sealed class RobertaModel : BertModel
{
    private readonly double _headDropout;

    /// <summary>Builds the encoder; <paramref name="config"/> must have <c>ModelType = "roberta"</c>.</summary>
    public RobertaModel(BertConfig config, ModelOptions options) : base(nameof(RobertaModel), Check(config), options with { NumClasses = 0 })
    {
        _headDropout = config.ClassifierDropout ?? config.HiddenDropoutProb;
        if (options.NumClasses > 0) ReplaceHead(options.NumClasses);
    }

    private static BertConfig Check(BertConfig c) => c.PositionsFromPadding ? c
        : throw new ArgumentException($"RobertaModel needs a RoBERTa config (model_type 'roberta'), got '{c.ModelType}'.", nameof(c));

    /// <inheritdoc />
    private protected override nn.Module<Tensor, Tensor> CreateSequenceHead(int numClasses) => new RobertaClassificationHead(NumFeatures, numClasses, _headDropout);

    /// <inheritdoc />
    private protected override Tensor ClassifySequence(Tensor pooled) => Run("classifier", pooled);
}

/// <summary>Registers RoBERTa variants with their Hugging Face repositories.</summary>
public static class RobertaFamily
{
    /// <summary>roberta-base's configuration (FacebookAI/roberta-base config.json).</summary>
    public static BertConfig BaseConfig { get; } = new(VocabSize: 50265, MaxPositionEmbeddings: 514, TypeVocabSize: 1, LayerNormEps: 1e-5,
        PadTokenId: 1, ModelType: "roberta", AddPooler: false, Pooling: TextPooling.Cls);

    /// <summary>Adds roberta-base and roberta-large to <paramref name="catalog"/>.</summary>
    public static void Register(ModelCatalog catalog)
    {
        Add(catalog, "roberta-base", BaseConfig, 124_055_040, "FacebookAI/roberta-base", "RoBERTa base (Liu et al. 2019), byte-level BPE.");
        Add(catalog, "roberta-large", BaseConfig with { HiddenSize = 1024, NumHiddenLayers = 24, NumAttentionHeads = 16, IntermediateSize = 4096 },
            354_310_144, "FacebookAI/roberta-large", "RoBERTa large, byte-level BPE.");
    }

    private static void Add(ModelCatalog catalog, string name, BertConfig config, long parameters, string repo, string description)
    {
        var hub = new WeightTag("hf", [WeightSource.FromHub(repo, "model.safetensors")], WeightFormat.SafeTensors, "MIT", null, 0,
            FileName: "model.safetensors", Description: $"Hugging Face {repo} (also: pytorch_model.bin; config.json, vocab.json, merges.txt, tokenizer.json).");
        catalog.Register(new ModelEntry(name, "roberta", ModelTask.Nlp, config, o => new RobertaModel(config, BertFamily.TextOptions(o)), parameters,
            [config.MaxPositionEmbeddings - config.PadTokenId - 1], [hub], Description: description));
    }

    /// <summary>Renames a Hugging Face RoBERTa checkpoint (same rules as BERT: <c>roberta.</c> prefix, <c>lm_head.*</c> and buffers dropped).</summary>
    public static Dictionary<string, Tensor> RemapCheckpoint(IReadOnlyDictionary<string, Tensor> stateDict) => BertFamily.RemapCheckpoint(stateDict);
}
