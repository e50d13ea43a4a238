using System.Text.Json;
using Microsoft.ML.Tokenizers;

namespace ModelZoo.Tokenizers;

/// <summary>
/// GPT-2/RoBERTa byte-level BPE from <c>vocab.json</c> + <c>merges.txt</c>: text is split by GPT-2's pattern, mapped
/// to bytes ('Ġ' for space) and merged by rank; &lt;s&gt; A &lt;/s&gt; (&lt;/s&gt; B &lt;/s&gt;), no token types.
/// Microsoft.ML.Tokenizers' <see cref="BpeTokenizer"/> (byte-level mode) does the work.
/// </summary>
public sealed partial class ByteLevelBpeTextTokenizer : TextTokenizer
{
    private readonly BpeTokenizer _tok;
    private readonly HashSet<int> _special;

    private ByteLevelBpeTextTokenizer(BpeTokenizer tok, int bos, int eos, int pad, int unk)
    {
        _tok = tok;
        BosTokenId = bos;
        EosTokenId = eos;
        PadTokenId = pad;
        UnknownTokenId = unk;
        _special = [bos, eos, pad, unk];
    }

    /// <summary>Creates the tokenizer from <c>vocab.json</c> and <c>merges.txt</c> contents (RoBERTa's special tokens &lt;s&gt;, &lt;/s&gt;, &lt;pad&gt;, &lt;unk&gt; must be in the vocabulary).</summary>
    /// <param name="vocabJson">The vocabulary: a JSON object token → id.</param>
    /// <param name="merges">The merges, one "a b" pair per line, highest priority first.</param>
    /// <param name="addPrefixSpace">add_prefix_space (false for RoBERTa).</param>
    /// <param name="maxLength">model_max_length.</param>
    public static ByteLevelBpeTextTokenizer FromFiles(Stream vocabJson, Stream merges, bool addPrefixSpace = false, int maxLength = 512) =>
        FromFiles(vocabJson, merges, addPrefixSpace, maxLength, "vocab.json", "merges.txt");

    private static ByteLevelBpeTextTokenizer FromFiles(Stream vocabJson, Stream merges, bool addPrefixSpace, int maxLength, string vocabName, string mergesName)
    {
        try
        {
            return Create(vocabJson, merges, maxLength, vocabName);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or ArgumentException or KeyNotFoundException
                                  || (e is FormatException && !e.Message.Contains(vocabName, StringComparison.Ordinal)))
        {
            throw new FormatException($"{vocabName} and {mergesName} are not a usable byte-level BPE vocabulary: {e.Message}", e);
        }
    }

    private static ByteLevelBpeTextTokenizer Create(Stream vocabJson, Stream merges, int maxLength, string vocabName)
    {
        using var vocabCopy = new MemoryStream();
        vocabJson.CopyTo(vocabCopy);
        var vocab = JsonSerializer.Deserialize<Dictionary<string, int>>(vocabCopy.ToArray())
            ?? throw new FormatException($"{vocabName} is not a JSON object of token → id.");
        int Id(string token) => vocab.TryGetValue(token, out int id) ? id
            : throw new FormatException($"{vocabName} has no '{token}' token; a RoBERTa-style vocabulary needs <s>, </s>, <pad> and <unk>.");
        using var reader = new StreamReader(merges);
        var mergeLines = new List<string>();
        for (string? line; (line = reader.ReadLine()) is not null;)
        {
            line = line.TrimEnd('\r');
            if (line.Length == 0 || line.StartsWith("#version", StringComparison.Ordinal)) continue;
            mergeLines.Add(line);
        }
        var tok = BpeTokenizer.Create(new BpeOptions(vocab)
        {
            Merges = mergeLines,
            ByteLevel = true,
            PreTokenizer = new RegexPreTokenizer(Gpt2Pattern(), null),
            UnknownToken = "<unk>",
        });
        return new ByteLevelBpeTextTokenizer(tok, Id("<s>"), Id("</s>"), Id("<pad>"), Id("<unk>")) { ModelMaxLength = maxLength };
    }

    /// <summary>Creates the tokenizer from <c>vocab.json</c> and <c>merges.txt</c> files.</summary>
    public static ByteLevelBpeTextTokenizer FromFiles(string vocabJsonPath, string mergesPath, bool addPrefixSpace = false, int maxLength = 512)
    {
        using var v = File.OpenRead(vocabJsonPath);
        using var m = File.OpenRead(mergesPath);
        return FromFiles(v, m, addPrefixSpace, maxLength, vocabJsonPath, mergesPath);
    }

    // GPT-2's pre-tokenization pattern (contractions, letters, digits, other symbols, each with an optional leading space; runs of spaces).
    [System.Text.RegularExpressions.GeneratedRegex(@"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+")]
    private static partial System.Text.RegularExpressions.Regex Gpt2Pattern();

    /// <summary>The underlying Microsoft.ML.Tokenizers tokenizer.</summary>
    public BpeTokenizer Inner => _tok;

    /// <inheritdoc />
    public override int PadTokenId { get; }

    /// <summary>Id of &lt;s&gt;.</summary>
    public int BosTokenId { get; }

    /// <summary>Id of &lt;/s&gt;.</summary>
    public int EosTokenId { get; }

    /// <summary>Id of &lt;unk&gt;.</summary>
    public int UnknownTokenId { get; }

    /// <inheritdoc />
    protected override bool PairTypeIds => false;

    /// <inheritdoc />
    public override IReadOnlyList<(int Id, int Start, int Length)> Tokenize(string text) =>
        _tok.EncodeToTokens(text, out _).Select(t => (t.Id, t.Offset.Start.Value, t.Offset.End.Value - t.Offset.Start.Value)).ToList();

    /// <inheritdoc />
    public override int? TokenToId(string token) => _tok.Vocabulary.TryGetValue(token, out int id) ? id : null;

    /// <inheritdoc />
    public override string Decode(IEnumerable<int> ids, bool skipSpecialTokens = true) =>
        _tok.Decode(skipSpecialTokens ? ids.Where(i => !_special.Contains(i)) : ids) ?? "";

    /// <inheritdoc />
    protected override EncodedText Wrap(IReadOnlyList<(int Id, int Start, int Length)> a, IReadOnlyList<(int Id, int Start, int Length)>? b) =>
        b is null
            ? Build(Special(BosTokenId), (a, 0), Special(EosTokenId))
            : Build(Special(BosTokenId), (a, 0), Special(EosTokenId, EosTokenId), (b, 1), Special(EosTokenId));
}
