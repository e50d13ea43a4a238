using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Models.Nlp;

/// <summary>
/// Bag-of-tokens features of a batch of token ids: per text and vocabulary entry, log(1 + count) × idf, the row then
/// scaled to unit length (sublinear TF-IDF over the tokenizer's word pieces). The inverse document frequencies are a
/// buffer (<c>idf</c>, saved with the model) fitted on training texts by <see cref="Fit"/>; an entry with idf 0 (a
/// token seen in fewer than two training texts, or in all of them, such as [CLS]) does not count. A transformer reads a
/// window of a text; this reads all of it, cheaply, which is what lexical tasks such as spam filtering reward.
/// </summary>
public sealed class TokenBag : ZooModule
{
    /// <summary>A bag over a vocabulary of <paramref name="vocabSize"/> ids, every idf 1 until <see cref="Fit"/>.</summary>
    public TokenBag(int vocabSize) : base(nameof(TokenBag))
    {
        if (vocabSize <= 0) throw new ArgumentOutOfRangeException(nameof(vocabSize), "The vocabulary must not be empty.");
        VocabSize = vocabSize;
        register_buffer("idf", ones(vocabSize));
    }

    /// <summary>Width of the features: one per vocabulary id.</summary>
    public int VocabSize { get; }

    /// <summary>The inverse document frequencies (a view of the buffer).</summary>
    public Tensor Idf => this.Buffer("idf");

    /// <summary>Features B×V of token ids B×T, padding excluded by <paramref name="attentionMask"/> (B×T, 1 keep).</summary>
    public Tensor Forward(Tensor inputIds, Tensor attentionMask)
    {
        var idf = Idf;
        var counts = zeros(inputIds.shape[0], VocabSize, dtype: idf.dtype, device: inputIds.device)
            .scatter_add_(1, inputIds, attentionMask.to(idf.dtype));
        var weighted = counts.log1p_().mul_(idf);
        return nn.functional.normalize(weighted, p: 2, dim: 1);
    }

    /// <summary>Bag features need the mask: use <see cref="Forward(Tensor, Tensor)"/>; this one masks nothing.</summary>
    public override Tensor forward(Tensor inputIds) => Forward(inputIds, ones_like(inputIds));

    /// <summary>
    /// Sets the idf from training texts (their token ids, specials included or not): ln((1 + n) / (1 + df)), the
    /// smoothed idf; tokens in fewer than <paramref name="minCount"/> texts get 0 (a token seen once cannot generalize
    /// and would only be memorized), so do tokens in every text (the formula gives 0).
    /// </summary>
    public void Fit(IEnumerable<int[]> texts, int minCount = 2)
    {
        var df = new int[VocabSize];
        int n = 0;
        var seen = new HashSet<int>();
        foreach (var ids in texts)
        {
            n++;
            seen.Clear();
            foreach (var id in ids)
            {
                if ((uint)id >= (uint)VocabSize) throw new ArgumentOutOfRangeException(nameof(texts), $"Token id {id} is outside the vocabulary of {VocabSize}.");
                if (seen.Add(id)) df[id]++;
            }
        }
        var idf = df.Select(d => d < minCount ? 0f : (float)Math.Log((1.0 + n) / (1.0 + d))).ToArray();
        using var noGrad = no_grad();
        Idf.copy_(tensor(idf));
    }

    /// <summary>Vocabulary ids that count (idf &gt; 0).</summary>
    public long[] ActiveIds() => Idf.cpu().gt(0).nonzero().flatten().data<long>().ToArray();
}
