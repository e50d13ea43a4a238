using static TorchSharp.torch;

namespace ModelZoo.Tokenizers;

/// <summary>One encoded text (or text pair) with special tokens, before padding.</summary>
/// <param name="Ids">Token ids.</param>
/// <param name="TypeIds">Segment ids: 0 for the first text, 1 for the pair (BERT); all 0 for models without token types.</param>
/// <param name="Offsets">(start, length) of each token in its source text, in UTF-16 chars; (0, 0) for special tokens.</param>
/// <param name="SequenceIds">Which text each token came from: 0, 1, or -1 for special tokens.</param>
public sealed record EncodedText(int[] Ids, int[] TypeIds, (int Start, int Length)[] Offsets, int[] SequenceIds);

/// <summary>A padded batch of encoded texts: ids, attention mask, token types and offsets, each B×T.</summary>
public sealed class EncodedBatch
{
    internal EncodedBatch(IReadOnlyList<EncodedText> items, int length, int padId)
    {
        Items = items;
        Length = length;
        PadTokenId = padId;
        InputIds = items.Select(e => Pad(e.Ids, length, padId)).ToList();
        AttentionMask = items.Select(e => Pad(Enumerable.Repeat(1, e.Ids.Length).ToArray(), length, 0)).ToList();
        TokenTypeIds = items.Select(e => Pad(e.TypeIds, length, 0)).ToList();
    }

    private static int[] Pad(int[] values, int length, int pad)
    {
        var r = new int[length];
        Array.Fill(r, pad);
        Array.Copy(values, r, Math.Min(length, values.Length));
        return r;
    }

    /// <summary>The encoded texts before padding (ids, types, offsets, sequence ids).</summary>
    public IReadOnlyList<EncodedText> Items { get; }

    /// <summary>Number of texts.</summary>
    public int Count => Items.Count;

    /// <summary>Padded length T.</summary>
    public int Length { get; }

    /// <summary>The id used for padding.</summary>
    public int PadTokenId { get; }

    /// <summary>Token ids, padded with <see cref="PadTokenId"/>.</summary>
    public IReadOnlyList<int[]> InputIds { get; }

    /// <summary>1 for real tokens, 0 for padding.</summary>
    public IReadOnlyList<int[]> AttentionMask { get; }

    /// <summary>Segment ids, padded with 0.</summary>
    public IReadOnlyList<int[]> TokenTypeIds { get; }

    /// <summary>Token ids as an int64 B×T tensor.</summary>
    public Tensor InputIdsTensor(Device? device = null) => ToTensor(InputIds, device);

    /// <summary>Attention mask as an int64 B×T tensor.</summary>
    public Tensor AttentionMaskTensor(Device? device = null) => ToTensor(AttentionMask, device);

    /// <summary>Token types as an int64 B×T tensor.</summary>
    public Tensor TokenTypeIdsTensor(Device? device = null) => ToTensor(TokenTypeIds, device);

    private Tensor ToTensor(IReadOnlyList<int[]> rows, Device? device)
    {
        var flat = new long[Count * Length];
        for (int i = 0; i < Count; i++)
            for (int j = 0; j < Length; j++) flat[i * Length + j] = rows[i][j];
        return tensor(flat, [Count, Length], device: device);
    }
}

/// <summary>
/// A subword tokenizer for a text encoder: adds the model's special tokens, truncates (longest first for pairs),
/// pads, and builds attention masks and token types. Tokenization itself is Microsoft.ML.Tokenizers'.
/// </summary>
public abstract class TextTokenizer
{
    /// <summary>Id of the padding token.</summary>
    public abstract int PadTokenId { get; }

    /// <summary>Longest sequence the model takes (used when no maxLength is given and truncation is on).</summary>
    public int ModelMaxLength { get; init; } = 512;

    /// <summary>Whether pairs get token type 1 for the second text (BERT: yes; RoBERTa: no).</summary>
    protected virtual bool PairTypeIds => true;

    /// <summary>Number of special tokens added around one text or a pair.</summary>
    public int SpecialTokenCount(bool pair) => Wrap([], pair ? [] : null).Ids.Length;

    /// <summary>Tokens of <paramref name="text"/> without special tokens: id, start and length in <paramref name="text"/>.</summary>
    public abstract IReadOnlyList<(int Id, int Start, int Length)> Tokenize(string text);

    /// <summary>The id of <paramref name="token"/> in the vocabulary, or null.</summary>
    public abstract int? TokenToId(string token);

    /// <summary>Text of <paramref name="ids"/> (special tokens left out when <paramref name="skipSpecialTokens"/>).</summary>
    public abstract string Decode(IEnumerable<int> ids, bool skipSpecialTokens = true);

    /// <summary>Adds special tokens around one text (or a pair, when <paramref name="b"/> is not null).</summary>
    protected abstract EncodedText Wrap(IReadOnlyList<(int Id, int Start, int Length)> a, IReadOnlyList<(int Id, int Start, int Length)>? b);

    /// <summary>Builds an <see cref="EncodedText"/> from parts: special ids get sequence id -1, offset (0, 0).</summary>
    protected EncodedText Build(params (IReadOnlyList<(int Id, int Start, int Length)> Tokens, int Sequence)[] parts)
    {
        var ids = new List<int>();
        var types = new List<int>();
        var offsets = new List<(int, int)>();
        var seq = new List<int>();
        int type = 0;
        foreach (var (tokens, s) in parts)
        {
            if (s == 1 && PairTypeIds) type = 1;
            foreach (var t in tokens)
            {
                ids.Add(t.Id);
                types.Add(type);
                offsets.Add(s < 0 ? (0, 0) : (t.Start, t.Length));
                seq.Add(s);
            }
        }
        return new EncodedText(ids.ToArray(), types.ToArray(), offsets.ToArray(), seq.ToArray());
    }

    /// <summary>Special tokens as a part for <see cref="Build"/>.</summary>
    protected static (IReadOnlyList<(int, int, int)>, int) Special(params int[] ids) => (ids.Select(i => (i, 0, 0)).ToList(), -1);

    /// <summary>Encodes one text, or a pair, with special tokens; truncates to <paramref name="maxLength"/> (default <see cref="ModelMaxLength"/>) when <paramref name="truncation"/>.</summary>
    public EncodedText EncodeOne(string text, string? pair = null, int? maxLength = null, bool truncation = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        var a = Tokenize(text).ToList();
        var b = pair is null ? null : Tokenize(pair).ToList();
        int limit = maxLength ?? ModelMaxLength;
        if (truncation)
        {
            int budget = limit - SpecialTokenCount(b is not null);
            if (budget < 0) throw new ArgumentOutOfRangeException(nameof(maxLength), $"maxLength {limit} leaves no room for the {SpecialTokenCount(b is not null)} special tokens.");
            // Hugging Face's "longest_first": drop a token from the end of the longer text until both fit.
            while (a.Count + (b?.Count ?? 0) > budget)
            {
                if (b is not null && b.Count > a.Count) b.RemoveAt(b.Count - 1);
                else a.RemoveAt(a.Count - 1);
            }
        }
        return Wrap(a, b);
    }

    /// <summary>
    /// Encodes one long text keeping its start and its end: when it does not fit in <paramref name="maxLength"/> tokens
    /// (with special tokens), the first tokens and the last <paramref name="tailTokens"/> are kept and the middle is
    /// dropped ("head+tail" truncation, Sun et al. 2019, <i>How to Fine-Tune BERT for Text Classification?</i>). With
    /// <paramref name="tailTokens"/> 0 it equals <see cref="EncodeOne"/>. Only the two ends of a long text are tokenized
    /// (at most <paramref name="charsPerToken"/> characters per kept token), so very long texts cost no more than short ones.
    /// </summary>
    public EncodedText EncodeHeadTail(string text, int maxLength, int tailTokens, int charsPerToken = 16)
    {
        ArgumentNullException.ThrowIfNull(text);
        int budget = maxLength - SpecialTokenCount(false);
        if (budget <= 0) throw new ArgumentOutOfRangeException(nameof(maxLength), $"maxLength {maxLength} leaves no room for the {SpecialTokenCount(false)} special tokens.");
        if (tailTokens < 0 || tailTokens > budget) throw new ArgumentOutOfRangeException(nameof(tailTokens), $"tailTokens must be between 0 and {budget} for maxLength {maxLength}.");
        int headTokens = budget - tailTokens;
        int window = (budget + 1) * charsPerToken;
        if (tailTokens == 0 || text.Length <= 2 * window)
        {
            var all = Tokenize(text.Length > window && tailTokens == 0 ? text[..window] : text).ToList();
            if (all.Count <= budget) return Wrap(all, null);
            return Wrap([.. all.Take(headTokens), .. all.Skip(all.Count - tailTokens)], null);
        }
        var head = Tokenize(text[..window]).Take(headTokens);
        int tailStart = text.Length - window;
        // The tail piece may start inside a word; its first tokens are dropped anyway (only the last ones are kept).
        var tail = Tokenize(text[tailStart..]).Select(t => (t.Id, t.Start + tailStart, t.Length)).ToList();
        return Wrap([.. head, .. tail.Skip(Math.Max(0, tail.Count - tailTokens))], null);
    }

    /// <summary>Encodes a batch: special tokens, truncation, padding to the longest text (or to <paramref name="maxLength"/> with <paramref name="padToMaxLength"/>), attention masks and token types.</summary>
    /// <param name="texts">The texts.</param>
    /// <param name="pairs">Second texts of pairs (same count as <paramref name="texts"/>), or null.</param>
    /// <param name="maxLength">Length limit (default <see cref="ModelMaxLength"/>).</param>
    /// <param name="padding">Pad to a common length (required for a rectangular batch; false throws if lengths differ).</param>
    /// <param name="truncation">Cut texts longer than <paramref name="maxLength"/>.</param>
    /// <param name="padToMaxLength">Pad to <paramref name="maxLength"/> rather than to the longest text.</param>
    public EncodedBatch Encode(IReadOnlyList<string> texts, IReadOnlyList<string>? pairs = null, int? maxLength = null, bool padding = true, bool truncation = true, bool padToMaxLength = false)
    {
        ArgumentNullException.ThrowIfNull(texts);
        if (pairs is not null && pairs.Count != texts.Count)
            throw new ArgumentException($"{texts.Count} texts but {pairs.Count} pair texts; give one pair text per text.", nameof(pairs));
        var items = texts.Select((t, i) => EncodeOne(t, pairs?[i], maxLength, truncation)).ToList();
        int longest = items.Count == 0 ? 0 : items.Max(e => e.Ids.Length);
        int length = padToMaxLength ? Math.Max(longest, maxLength ?? ModelMaxLength) : longest;
        if (!padding && items.Any(e => e.Ids.Length != longest))
            throw new ArgumentException("Texts encode to different lengths; pass padding: true to pad them to a common length.", nameof(padding));
        return new EncodedBatch(items, length, PadTokenId);
    }

    /// <summary>Encodes one text as a batch of one.</summary>
    public EncodedBatch Encode(string text, int? maxLength = null, bool truncation = true) => Encode([text], null, maxLength, true, truncation);
}
