using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelZoo.Models.Nlp;

/// <summary>How a text encoder turns its last hidden state into one vector per sequence.</summary>
public enum TextPooling
{
    /// <summary>BERT's pooler: tanh(dense(hidden of the first token)).</summary>
    Pooler,
    /// <summary>The hidden state of the first token ([CLS] / &lt;s&gt;).</summary>
    Cls,
    /// <summary>Mean of the hidden states of the tokens the attention mask keeps (sentence-transformers).</summary>
    Mean,
    /// <summary>
    /// Mean and max over the kept tokens of every hidden state (embeddings' output and each layer's), concatenated:
    /// 2 × H × (layers + 1) values. Lower layers keep the lexical detail that the last layer's mean smooths away, so
    /// a linear probe on a frozen encoder gets much closer to fine-tuning (the text quickstart's default).
    /// </summary>
    LayerMeanMax,
}

/// <summary>What the classifier of a text encoder predicts.</summary>
public enum TextHeadKind
{
    /// <summary>One prediction per sequence (pooled features → classifier).</summary>
    Sequence,
    /// <summary>One prediction per token (hidden states → classifier).</summary>
    Token,
}

/// <summary>
/// Per-call inputs beside the token ids (attention mask, token types, positions). The encoder binds them for the
/// duration of one forward pass so every block keeps the Tensor→Tensor contract that surgery relies on.
/// Not thread-safe: one forward pass at a time per model, as with any module holding state.
/// </summary>
internal sealed class TextInputs
{
    public Tensor? AttentionMask;   // B×T, 1 = keep, 0 = padding
    public Tensor? AdditiveMask;    // B×1×1×T, 0 or float.MinValue, in the compute dtype
    public Tensor? TokenTypeIds;    // B×T
    public Tensor? PositionIds;     // B×T or 1×T
    public Tensor? AllIds;          // B×T' every token of the input, for the token bag (T' ≥ T when the window cut it)
    public Tensor? AllMask;         // B×T'

    public IDisposable Bind(Tensor? mask, Tensor? tokenTypes, Tensor? positions, ScalarType dtype, Tensor? allIds = null, Tensor? allMask = null)
    {
        var old = (AttentionMask, AdditiveMask, TokenTypeIds, PositionIds, AllIds, AllMask);
        AllIds = allIds;
        AllMask = allMask;
        AttentionMask = mask;
        AdditiveMask = mask is null ? null : (1 - mask.to_type(dtype)).mul(float.MinValue).unsqueeze(1).unsqueeze(1);
        TokenTypeIds = tokenTypes;
        PositionIds = positions;
        return new Restore(() => (AttentionMask, AdditiveMask, TokenTypeIds, PositionIds, AllIds, AllMask) = old);
    }

    private sealed class Restore(Action undo) : IDisposable
    {
        public void Dispose() => undo();
    }
}

/// <summary>A module that adds a residual input, called by its parent with both tensors (BERT's *Output blocks).</summary>
public interface IResidualModule
{
    /// <summary>Runs the block on <paramref name="hidden"/> and adds <paramref name="residual"/> as the block defines.</summary>
    Tensor Forward(Tensor hidden, Tensor residual);
}

/// <summary>Helpers shared by the text encoder blocks.</summary>
internal static class TextBlocks
{
    /// <summary>Runs the child <paramref name="name"/> with a residual input when it is a residual block; a module put in its place by surgery gets the hidden state only.</summary>
    public static Tensor Residual(ZooModule parent, string name, Tensor hidden, Tensor residual) =>
        parent.GetChild(name) switch
        {
            IResidualModule r => r.Forward(hidden, residual),
            nn.Module<Tensor, Tensor> m => m.call(hidden),
            var other => throw new InvalidOperationException($"Child '{name}' ({other.GetType().Name}) does not map a tensor to a tensor."),
        };

    /// <summary>Multi-head scaled dot-product attention as Hugging Face computes it (additive mask, softmax, dropout on the probabilities).</summary>
    public static Tensor Attention(Tensor q, Tensor k, Tensor v, int heads, Tensor? additiveMask, Func<Tensor, Tensor> dropout)
    {
        long b = q.shape[0], t = q.shape[1], h = q.shape[2], d = h / heads;
        Tensor Split(Tensor x) => x.view(b, -1, heads, d).transpose(1, 2);
        var scores = Split(q).matmul(Split(k).transpose(-1, -2)).div_(Math.Sqrt(d));
        if (additiveMask is not null) scores = scores.add_(additiveMask);
        var probs = dropout(scores.softmax(-1));
        return probs.matmul(Split(v)).transpose(1, 2).reshape(b, t, h);
    }

    /// <summary>Zeroes row <paramref name="row"/> of the embedding at <paramref name="path"/> (HF zeroes padding rows at init).</summary>
    public static void ZeroRow(ZooModel model, string path, int row)
    {
        using var noGrad = no_grad();
        if (model.Get(path) is Embedding e && row >= 0 && row < e.weight!.shape[0]) e.weight![row].zero_();
    }

    /// <summary>The activation Hugging Face names <paramref name="name"/> in <c>hidden_act</c>.</summary>
    public static nn.Module<Tensor, Tensor> Activation(string name) => name switch
    {
        "gelu" => nn.GELU(),
        "gelu_new" or "gelu_pytorch_tanh" or "gelu_fast" => nn.GELU(GELU.Approximate.tanh),
        "relu" => nn.ReLU(),
        "silu" or "swish" => nn.SiLU(),
        "tanh" => nn.Tanh(),
        _ => throw new NotSupportedException($"Activation '{name}' (config.json hidden_act/activation) is not supported; use gelu, gelu_new, gelu_pytorch_tanh, relu or silu."),
    };

    /// <summary>Hugging Face's initialisation for BERT-like models: normal(0, std) for linear and embedding weights, zero biases and padding rows, LayerNorm 1/0.</summary>
    public static void Init(nn.Module model, double std)
    {
        using var noGrad = no_grad();
        foreach (var (_, m) in model.named_modules())
        {
            switch (m)
            {
                case Linear l:
                    nn.init.normal_(l.weight, 0, std);
                    if (l.bias is not null) nn.init.zeros_(l.bias);
                    break;
                case Embedding e:
                    nn.init.normal_(e.weight!, 0, std);
                    break;
                case LayerNorm n:
                    if (n.weight is not null) nn.init.ones_(n.weight);
                    if (n.bias is not null) nn.init.zeros_(n.bias);
                    break;
            }
        }
    }
}

/// <summary>
/// Base of the zoo's transformer text encoders (BERT, RoBERTa, DistilBERT, MiniLM). Input: token ids B×T (int64).
/// <c>forward(ids)</c> derives the attention mask from the padding id; <see cref="Forward"/> takes an explicit mask and
/// token types. With no classifier (<c>NumClasses = 0</c>) the output is the pooled features B×H.
/// </summary>
public abstract class TextEncoder : ZooModel
{
    private readonly int _hidden;

    /// <summary>Creates an encoder of width <paramref name="hidden"/>.</summary>
    private protected TextEncoder(string name, int numClasses, int hidden, int vocabSize, int padTokenId, int maxPositions, int numLayers, TextPooling pooling)
        : base(name, numClasses, 1)
    {
        _hidden = hidden;
        VocabSize = vocabSize;
        PadTokenId = padTokenId;
        MaxPositions = maxPositions;
        NumLayers = numLayers;
        Pooling = pooling;
    }

    internal TextInputs Inputs { get; } = new();

    /// <summary>Vocabulary size of the word embeddings.</summary>
    public int VocabSize { get; }

    /// <summary>Id of the padding token; <c>forward(ids)</c> masks positions holding it.</summary>
    public int PadTokenId { get; }

    /// <summary>Longest sequence the position embeddings allow.</summary>
    public int MaxPositions { get; }

    /// <summary>Number of transformer layers.</summary>
    public int NumLayers { get; }

    /// <summary>
    /// How sequences are pooled for the sequence head and for <see cref="ZooModel.ForwardHead"/> with <c>preLogits</c>.
    /// A pooler kept only so Hub files load strictly (sentence-transformers models pool by mean or CLS) does not run,
    /// so its parameters are frozen while the pooling is not <see cref="TextPooling.Pooler"/>. The pooling sets the
    /// width of the sequence head's input (<see cref="NumFeatures"/>): set it before <see cref="ReplaceSequenceHead"/>.
    /// </summary>
    public TextPooling Pooling
    {
        get => _pooling;
        set
        {
            _pooling = value;
            if (HasChild("pooler"))
                foreach (var p in GetChild("pooler").parameters()) p.requires_grad = value == TextPooling.Pooler;
        }
    }

    private TextPooling _pooling;

    /// <summary>Whether the classifier predicts per sequence or per token.</summary>
    public TextHeadKind HeadKind { get; private set; } = TextHeadKind.Sequence;

    /// <inheritdoc />
    public override int NumFeatures => (Pooling == TextPooling.LayerMeanMax ? 2 * _hidden * (NumLayers + 1) : _hidden) + (TokenBag?.VocabSize ?? 0);

    /// <summary>
    /// Longest run of tokens the transformer reads (0 = up to <see cref="MaxPositions"/>). Longer inputs are cut to it,
    /// keeping the start and ending the window with the input's last token (its [SEP] or &lt;/s&gt;), as a tokenizer
    /// truncating to this length would; the <see cref="TokenBag"/>, when present, still reads every token. So a
    /// classifier can take whole texts while its transformer pays only for their starts.
    /// </summary>
    public int EncoderWindow
    {
        get => _window;
        set => _window = value >= 0 && value <= MaxPositions ? value
            : throw new ArgumentOutOfRangeException(nameof(value), $"The encoder window must be 0 (no window) to {MaxPositions} tokens, got {value}.");
    }

    private int _window;

    /// <summary>The bag-of-tokens features appended to the pooled features of the sequence head (child <c>token_bag</c>), or null.</summary>
    public TokenBag? TokenBag => HasChild("token_bag") ? GetChild("token_bag") as TokenBag : null;

    /// <summary>
    /// Adds the <see cref="Nlp.TokenBag"/> branch (once): its
    /// <see cref="VocabSize"/> TF-IDF features follow the pooled features in what the sequence head sees, so call it
    /// before <see cref="ReplaceSequenceHead"/>. The bag reads every token of the input, beyond <see cref="EncoderWindow"/>.
    /// </summary>
    public TextEncoder UseTokenBag()
    {
        if (TokenBag is null) Add("token_bag", new TokenBag(VocabSize));
        return this;
    }

    /// <summary>Width of each token's hidden state.</summary>
    public int HiddenSize => _hidden;

    /// <inheritdoc />
    public override string HeadPath => "classifier";

    /// <summary>Dotted path of the list of transformer layers (e.g. <c>encoder.layer</c>).</summary>
    public abstract string LayersPath { get; }

    /// <summary>Children outside the layers that belong to the head group (pooler, pre-classifier).</summary>
    private protected virtual string[] HeadPrefixes => ["pooler", "classifier"];

    /// <summary>Batch of 1, 16 tokens.</summary>
    public override long[] DryRunInputShape => [1, 16];

    /// <inheritdoc />
    protected override Tensor DryRunInput(Device device) => InputOfShape(DryRunInputShape, device);

    internal override Tensor InputOfShape(long[] shape, Device device)
    {
        long n = shape.Aggregate(1L, (a, b) => a * b);
        var ids = arange(n, dtype: int64, device: device).mul_(7).add_(3).remainder_(VocabSize).reshape(shape);
        return ids.masked_fill(ids.eq(PadTokenId), (PadTokenId + 1) % VocabSize);
    }

    /// <summary>Runs the model on token ids with the mask derived from <see cref="PadTokenId"/>.</summary>
    public override Tensor forward(Tensor inputIds) => Forward(inputIds);

    /// <summary>
    /// The features the head sees: the last hidden state B×T×H, or, with <see cref="TextPooling.LayerMeanMax"/> pooling
    /// and a sequence head, every hidden state concatenated along the last dimension (B×T×H(L+1)).
    /// </summary>
    public sealed override Tensor ForwardFeatures(Tensor x)
    {
        if (Pooling != TextPooling.LayerMeanMax || HeadKind != TextHeadKind.Sequence) return EncodeTokens(x);
        var stack = LayerStack();
        var states = new List<Tensor> { EmbedTokens(x) };
        for (int i = 0; i < stack.Count; i++) states.Add(stack.ForwardRange(states[^1], i, i + 1));
        return cat(states, -1);
    }

    /// <summary>The family's encoder: token ids to the last hidden state B×T×H (inputs bound).</summary>
    private protected abstract Tensor EncodeTokens(Tensor inputIds);

    /// <summary>Pooled features B×<see cref="NumFeatures"/> (no classifier, no normalisation): what a probe is trained on.</summary>
    public Tensor PooledFeatures(Tensor inputIds, Tensor? attentionMask = null, Tensor? tokenTypeIds = null)
    {
        using var bound = Bind(ref inputIds, attentionMask, tokenTypeIds);
        return Pool(ForwardFeatures(inputIds));
    }

    /// <summary>Runs the model (features and head) with an explicit attention mask (1 keep, 0 pad; default: ids ≠ pad) and token types (default: zeros).</summary>
    public Tensor Forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? tokenTypeIds = null)
    {
        using var bound = Bind(ref inputIds, attentionMask, tokenTypeIds);
        return ForwardHead(ForwardFeatures(inputIds));
    }

    /// <summary>The last hidden state B×T×H for <paramref name="inputIds"/> (mask default: ids ≠ pad).</summary>
    public Tensor LastHiddenState(Tensor inputIds, Tensor? attentionMask = null, Tensor? tokenTypeIds = null)
    {
        using var bound = Bind(ref inputIds, attentionMask, tokenTypeIds);
        return EncodeTokens(inputIds);
    }

    /// <summary>
    /// The hidden state B×T×H after the embeddings and the first <paramref name="layers"/> transformer layers
    /// (0 = what the first layer sees). With <see cref="ForwardFrom"/> it splits <see cref="Forward"/> in two, so the
    /// lower layers can run once over a dataset and only the top layers and the head be trained on the cached states.
    /// </summary>
    public Tensor HiddenStateAfter(int layers, Tensor inputIds, Tensor? attentionMask = null, Tensor? tokenTypeIds = null)
    {
        var stack = LayerStack();
        if (layers < 0 || layers > stack.Count) throw new ArgumentOutOfRangeException(nameof(layers), $"{GetName()} has {stack.Count} transformer layers; asked for the state after {layers}.");
        using var bound = Bind(ref inputIds, attentionMask, tokenTypeIds);
        return stack.ForwardRange(EmbedTokens(inputIds), 0, layers);
    }

    /// <summary>
    /// Runs the transformer layers from <paramref name="fromLayer"/> (0-based) to the last, then the head, on a hidden
    /// state from <see cref="HiddenStateAfter"/>: <c>ForwardFrom(k, HiddenStateAfter(k, ids, mask), mask)</c> equals
    /// <c>Forward(ids, mask)</c>. <paramref name="attentionMask"/> is B×T (1 keep, 0 pad).
    /// </summary>
    public Tensor ForwardFrom(int fromLayer, Tensor hidden, Tensor attentionMask)
    {
        var stack = LayerStack();
        if (fromLayer < 0 || fromLayer > stack.Count) throw new ArgumentOutOfRangeException(nameof(fromLayer), $"{GetName()} has {stack.Count} transformer layers; asked to start at layer {fromLayer}.");
        if (TokenBag is not null)
            throw new InvalidOperationException("ForwardFrom runs on hidden states, but the token bag needs the token ids; fine-tune the top layers without a token bag.");
        if (hidden.dim() != 3 || attentionMask.dim() != 2 || hidden.shape[0] != attentionMask.shape[0] || hidden.shape[1] != attentionMask.shape[1])
            throw new ArgumentException($"Expected a B×T×H hidden state and a B×T mask, got [{string.Join(", ", hidden.shape)}] and [{string.Join(", ", attentionMask.shape)}].");
        if (Pooling == TextPooling.LayerMeanMax)
            throw new InvalidOperationException("ForwardFrom needs a pooling of the last hidden state; LayerMeanMax pools every layer, so set Pooling to Mean (then ReplaceSequenceHead) to fine-tune the top layers.");
        using var bound = Inputs.Bind(attentionMask, null, null, hidden.dtype);
        return ForwardHead(stack.ForwardRange(hidden, fromLayer, stack.Count));
    }

    /// <summary>
    /// Every hidden state of one pass (Hugging Face's <c>output_hidden_states</c>): element 0 is what the first layer
    /// sees, element <c>i</c> the output of layer <c>i</c>; the last equals <see cref="LastHiddenState"/>.
    /// </summary>
    public IReadOnlyList<Tensor> HiddenStates(Tensor inputIds, Tensor? attentionMask = null, Tensor? tokenTypeIds = null)
    {
        var stack = LayerStack();
        using var bound = Bind(ref inputIds, attentionMask, tokenTypeIds);
        var states = new List<Tensor> { EmbedTokens(inputIds) };
        for (int i = 0; i < stack.Count; i++) states.Add(stack.ForwardRange(states[^1], i, i + 1));
        return states;
    }

    /// <summary>What the first transformer layer sees: the embeddings' output (families with a projection override it).</summary>
    private protected virtual Tensor EmbedTokens(Tensor inputIds) => Run("embeddings", inputIds);

    private ZooSequential LayerStack() => Get(LayersPath) as ZooSequential
        ?? throw new InvalidOperationException($"'{LayersPath}' of {GetName()} is not a sequence of layers (was it replaced by surgery?).");

    /// <summary>Sentence embeddings: the last hidden state pooled as <see cref="Pooling"/> says (mean over the mask for sentence-transformers models) and L2-normalised.</summary>
    public Tensor Embed(Tensor inputIds, Tensor? attentionMask = null, Tensor? tokenTypeIds = null)
    {
        using var bound = Bind(ref inputIds, attentionMask, tokenTypeIds);
        var pooled = PoolHidden(ForwardFeatures(inputIds));
        return nn.functional.normalize(pooled, p: 2, dim: 1);
    }

    /// <summary>Binds the per-call inputs; cuts <paramref name="ids"/> (and the mask and types) to <see cref="EncoderWindow"/> when longer, keeping the whole input for the token bag.</summary>
    private IDisposable Bind(ref Tensor ids, Tensor? mask, Tensor? types)
    {
        if (ids.dtype != int64 && ids.dtype != int32)
            throw new ArgumentException($"A text encoder takes token ids (int64), got a {ids.dtype} tensor of shape [{string.Join(", ", ids.shape)}]. Encode text with Zoo.Tokenizer(name).", nameof(ids));
        if (ids.dim() != 2) throw new ArgumentException($"Token ids must be B×T, got shape [{string.Join(", ", ids.shape)}].", nameof(ids));
        mask ??= ids.ne(PadTokenId).to_type(int64);
        var dtype = parameters().FirstOrDefault()?.dtype ?? float32;
        Tensor allIds = ids, allMask = mask;
        if (_window > 0 && ids.shape[1] > _window)
        {
            // Rows longer than the window end it with their own last token ([SEP]), as truncation by the tokenizer would.
            var lengths = mask.to_type(int64).sum(1);
            var last = ids.gather(1, lengths.sub(1).clamp_min(0).unsqueeze(1)).squeeze(1);
            var cut = ids.narrow(1, 0, _window).clone();
            var end = cut.select(1, _window - 1);
            end.copy_(torch.where(lengths.gt(_window), last, end));
            ids = cut;
            mask = mask.narrow(1, 0, _window);
            types = types?.narrow(1, 0, _window);
        }
        return Inputs.Bind(mask, types, PositionIds(ids), dtype, allIds, allMask);
    }

    /// <summary>Position ids for <paramref name="ids"/>: 0..T-1 (BERT) unless a family says otherwise.</summary>
    private protected virtual Tensor? PositionIds(Tensor ids) => null;

    /// <summary>
    /// Pools the last hidden state as <see cref="Pooling"/> says and, with a <see cref="TokenBag"/>, appends the bag
    /// features of the input bound by the current call (the features a sequence head sees).
    /// </summary>
    public Tensor Pool(Tensor hidden)
    {
        var pooled = PoolHidden(hidden);
        if (TokenBag is not { } bag) return pooled;
        if (Inputs.AllIds is null || Inputs.AllMask is null)
            throw new InvalidOperationException($"{GetName()} has a token bag, which needs the token ids: pool through Forward or PooledFeatures, not on hidden states alone.");
        return cat([pooled, bag.Forward(Inputs.AllIds, Inputs.AllMask).to(pooled.dtype)], 1);
    }

    private Tensor PoolHidden(Tensor hidden) => Pooling switch
    {
        TextPooling.Pooler => Run("pooler", hidden),
        TextPooling.Cls => hidden.select(1, 0),
        TextPooling.LayerMeanMax => cat([MeanPool(hidden, Inputs.AttentionMask), MaxPool(hidden, Inputs.AttentionMask)], 1),
        _ => MeanPool(hidden, Inputs.AttentionMask),
    };

    /// <summary>Maximum of <paramref name="hidden"/> (B×T×H) over the positions <paramref name="mask"/> (B×T) keeps; all positions when null.</summary>
    public static Tensor MaxPool(Tensor hidden, Tensor? mask)
    {
        if (mask is null) return hidden.amax([1]);
        return hidden.masked_fill(mask.eq(0).unsqueeze(-1), float.MinValue).amax([1]);
    }

    /// <summary>Mean of <paramref name="hidden"/> (B×T×H) over the positions <paramref name="mask"/> (B×T) keeps; all positions when null.</summary>
    public static Tensor MeanPool(Tensor hidden, Tensor? mask)
    {
        if (mask is null) return hidden.mean([1]);
        var m = mask.to_type(hidden.dtype).unsqueeze(-1);
        return hidden.mul(m).sum(1).div(m.sum(1).clamp_min(1e-9));
    }

    /// <inheritdoc />
    public override Tensor ForwardHead(Tensor features, bool preLogits = false)
    {
        if (HeadKind == TextHeadKind.Token)
            return preLogits ? features : Run("classifier", Run("dropout", features));
        var pooled = Pool(features);
        return preLogits ? pooled : ClassifySequence(pooled);
    }

    /// <summary>Applies the sequence classifier to pooled features (dropout then <c>classifier</c>, as BERT).</summary>
    private protected virtual Tensor ClassifySequence(Tensor pooled) => Run("classifier", Run("dropout", pooled));

    /// <summary>A fresh sequence classifier (a linear layer, as BERT); families override it.</summary>
    private protected virtual nn.Module<Tensor, Tensor> CreateSequenceHead(int numClasses) => nn.Linear(NumFeatures, numClasses);

    /// <inheritdoc />
    protected override nn.Module<Tensor, Tensor> CreateHead(int numClasses)
    {
        if (numClasses == 0) return nn.Identity();
        var head = HeadKind == TextHeadKind.Token ? nn.Linear(_hidden, numClasses) : CreateSequenceHead(numClasses);
        TextBlocks.Init(head, 0.02);
        return head;
    }

    /// <summary>Puts a fresh per-sequence classifier in place (<see cref="ZooModel.ReplaceHead"/> keeps the current kind).</summary>
    public TextEncoder ReplaceSequenceHead(int numClasses)
    {
        HeadKind = TextHeadKind.Sequence;
        ReplaceHead(numClasses);
        return this;
    }

    /// <summary>Puts a fresh per-token classifier in place (dropout + linear on every hidden state, as Hugging Face's *ForTokenClassification).</summary>
    public TextEncoder ReplaceTokenHead(int numLabels)
    {
        HeadKind = TextHeadKind.Token;
        ReplaceHead(numLabels);
        return this;
    }

    /// <summary>Groups: embeddings, one per transformer layer, then the head (pooler and classifier), for layer-wise learning-rate decay.</summary>
    public override IReadOnlyList<ParameterGroup> ParameterGroups() =>
        Layers.GroupsByPrefix(this, [("embeddings", ["embeddings"]),
            .. Enumerable.Range(0, NumLayers).Select(i => ($"layer.{i}", new[] { $"{LayersPath}.{i}" })),
            ("head", HeadPrefixes)]);
}

/// <summary>Sentence embeddings for any zoo model that is a text encoder.</summary>
public static class TextEncoderExtensions
{
    /// <summary>Mean-pooled (or CLS, as the checkpoint defines), L2-normalised sentence embeddings of an encoded batch, computed in eval mode without gradients.</summary>
    /// <exception cref="InvalidOperationException">The model is not a text encoder.</exception>
    public static Tensor Embed(this ZooModel model, ModelZoo.Tokenizers.EncodedBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var encoder = model as TextEncoder ?? throw new InvalidOperationException($"'{model.Entry?.Name ?? model.GetType().Name}' is not a text encoder; Embed needs a BERT-family model such as all-minilm-l6-v2.");
        var device = model.parameters().FirstOrDefault()?.device ?? CPU;
        bool wasTraining = model.training;
        model.eval();
        try
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var ids = batch.InputIdsTensor(device);
            var mask = batch.AttentionMaskTensor(device);
            var types = batch.TokenTypeIdsTensor(device);
            return encoder.Embed(ids, mask, types).MoveToOuterDisposeScope();
        }
        finally
        {
            if (wasTraining) model.train();
        }
    }
}

/// <summary>The text encoder families, registered together by one line in <see cref="CatalogRegistrations"/>.</summary>
public static class NlpFamilies
{
    /// <summary>Adds BERT/MiniLM, RoBERTa, DistilBERT and ELECTRA to <paramref name="catalog"/>.</summary>
    public static void Register(ModelCatalog catalog)
    {
        BertFamily.Register(catalog);
        RobertaFamily.Register(catalog);
        DistilBertFamily.Register(catalog);
        ElectraFamily.Register(catalog);
    }
}
