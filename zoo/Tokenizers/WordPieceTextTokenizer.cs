using Microsoft.ML.Tokenizers;

namespace ModelZoo.Tokenizers;

/// <summary>
/// BERT's WordPiece tokenizer from a <c>vocab.txt</c> (BERT, DistilBERT, MiniLM): basic tokenization (punctuation,
/// CJK), optional lower-casing and accent stripping, greedy longest-match subwords; [CLS] A [SEP] (B [SEP]).
/// Microsoft.ML.Tokenizers' <see cref="BertTokenizer"/> does the work.
/// </summary>
public sealed class WordPieceTextTokenizer : TextTokenizer
{
    private readonly BertTokenizer _tok;
    private readonly Dictionary<string, int> _vocab;

    private WordPieceTextTokenizer(BertTokenizer tok, Dictionary<string, int> vocab)
    {
        _tok = tok;
        _vocab = vocab;
    }

    /// <summary>Creates the tokenizer from a <c>vocab.txt</c> stream (one token per line, id = line number).</summary>
    /// <param name="vocab">The vocabulary.</param>
    /// <param name="lowerCase">do_lower_case (true for uncased models).</param>
    /// <param name="stripAccents">strip_accents; null follows <paramref name="lowerCase"/>, as Hugging Face does.</param>
    /// <param name="maxLength">model_max_length.</param>
    public static WordPieceTextTokenizer FromVocab(Stream vocab, bool lowerCase, bool? stripAccents = null, int maxLength = 512)
    {
        using var copy = new MemoryStream();
        vocab.CopyTo(copy);
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        copy.Position = 0;
        using (var reader = new StreamReader(copy, leaveOpen: true))
        {
            int i = 0;
            for (string? line; (line = reader.ReadLine()) is not null; i++) ids.TryAdd(line.TrimEnd('\r'), i);
        }
        copy.Position = 0;
        return new(BertTokenizer.Create(copy, new BertOptions
        {
            LowerCaseBeforeTokenization = lowerCase,
            RemoveNonSpacingMarks = stripAccents ?? lowerCase,
            ApplyBasicTokenization = true,
            IndividuallyTokenizeCjk = true,
            SplitOnSpecialTokens = true,
        }), ids) { ModelMaxLength = maxLength };
    }

    /// <summary>Creates the tokenizer from a <c>vocab.txt</c> file.</summary>
    public static WordPieceTextTokenizer FromVocab(string vocabPath, bool lowerCase, bool? stripAccents = null, int maxLength = 512)
    {
        using var s = File.OpenRead(vocabPath);
        try { return FromVocab(s, lowerCase, stripAccents, maxLength); }
        catch (ArgumentException e)
        {
            // Microsoft.ML.Tokenizers reports a missing special token or a duplicate line as ArgumentException.
            throw new FormatException($"{vocabPath} is not a usable WordPiece vocabulary: {e.Message}", e);
        }
    }

    /// <summary>The underlying Microsoft.ML.Tokenizers tokenizer.</summary>
    public BertTokenizer Inner => _tok;

    /// <inheritdoc />
    public override int PadTokenId => _tok.PaddingTokenId;

    /// <summary>Id of [CLS].</summary>
    public int ClsTokenId => _tok.ClassificationTokenId;

    /// <summary>Id of [SEP].</summary>
    public int SepTokenId => _tok.SeparatorTokenId;

    /// <summary>Id of [UNK].</summary>
    public int UnknownTokenId => _tok.UnknownTokenId;

    /// <inheritdoc />
    public override IReadOnlyList<(int Id, int Start, int Length)> Tokenize(string text)
    {
        var tokens = _tok.EncodeToTokens(text, out string? normalized);
        // Offsets refer to the normalized text; lower-casing keeps lengths for most scripts. When it does not, keep
        // the offsets of the normalized text (they still order and delimit the tokens).
        return tokens.Select(t => (t.Id, t.Offset.Start.Value, t.Offset.End.Value - t.Offset.Start.Value)).ToList();
    }

    /// <inheritdoc />
    public override int? TokenToId(string token) => _vocab.TryGetValue(token, out int id) ? id : null;

    /// <inheritdoc />
    public override string Decode(IEnumerable<int> ids, bool skipSpecialTokens = true) => _tok.Decode(ids, skipSpecialTokens);

    /// <inheritdoc />
    protected override EncodedText Wrap(IReadOnlyList<(int Id, int Start, int Length)> a, IReadOnlyList<(int Id, int Start, int Length)>? b) =>
        b is null
            ? Build(Special(ClsTokenId), (a, 0), Special(SepTokenId))
            : Build(Special(ClsTokenId), (a, 0), Special(SepTokenId), (b, 1), Special(SepTokenId));
}
