using ModelZoo.Models.Nlp;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Zoo.Nlp;

/// <summary>The bag-of-tokens branch and the encoder window: TF-IDF values, what counts, and that the transformer's window equals a tokenizer's truncation.</summary>
public class TokenBagTests
{
    private static Tensor Ids(params long[][] rows) => NlpModelTests.Ids(rows);

    /// <summary>A tiny BERT (NlpModelTests.TinyBert) in eval mode with layer mean+max pooling, as the text quickstart uses it.</summary>
    private static BertModel TinyLayerProbe()
    {
        var model = new BertModel(NlpModelTests.TinyBert, new ModelOptions(NumClasses: 0));
        model.eval();
        model.Pooling = TextPooling.LayerMeanMax;
        return model;
    }

    /// <summary>idf = ln((1+n)/(1+df)) for tokens in 2+ texts, 0 below that and for tokens in every text; rows are log(1+count)·idf scaled to unit length; padding does not count.</summary>
    [Fact]
    public void FitsSmoothedIdfAndNormalizesRows()
    {
        using var scope = NewDisposeScope();
        using var bag = new TokenBag(10);
        // 4 texts: token 1 in all, token 2 in 2, token 3 in 3, token 4 in 1
        bag.Fit([[1, 2, 3], [1, 2, 3, 3], [1, 3], [1, 4]]);
        var idf = bag.Idf.data<float>().ToArray();
        Assert.Equal(0f, idf[1], 6);                                   // in every text
        Assert.Equal((float)Math.Log(5.0 / 3), idf[2], 5);
        Assert.Equal((float)Math.Log(5.0 / 4), idf[3], 5);
        Assert.Equal(0f, idf[4]);                                      // in one text only
        Assert.Equal(0f, idf[0]);                                      // never seen
        Assert.Equal(new long[] { 2, 3 }, bag.ActiveIds());

        var f = bag.Forward(Ids([2, 3, 3, 0], [2, 9, 0, 0]), Ids([1, 1, 1, 0], [1, 1, 0, 0]));
        float a = (float)(Math.Log(2) * Math.Log(5.0 / 3)), b = (float)(Math.Log(3) * Math.Log(5.0 / 4));
        float norm = MathF.Sqrt(a * a + b * b);
        Assert.Equal(a / norm, f[0, 2].item<float>(), 5);
        Assert.Equal(b / norm, f[0, 3].item<float>(), 5);
        Assert.Equal(0f, f[0, 0].item<float>());                        // the padded position's id 0 is masked out
        Assert.Equal(1f, f[1, 2].item<float>(), 5);                     // token 9 has idf 0, so the row is token 2 alone
        Assert.Throws<ArgumentOutOfRangeException>(() => bag.Fit([[1, 10]]));
    }

    /// <summary>With a window, the transformer sees the first tokens ending in the input's last token (as a tokenizer truncating there): features equal the cut input's; rows that fit are unchanged.</summary>
    [Fact]
    public void EncoderWindowEqualsTruncatedInput()
    {
        using var scope = NewDisposeScope();
        var model = TinyLayerProbe();
        long pad = model.PadTokenId;
        var full = Ids([5, 10, 11, 12, 13, 14, 15, 6], [5, 20, 21, 6, pad, pad, pad, pad]);
        var cut = Ids([5, 10, 11, 12, 6], [5, 20, 21, 6, pad]);
        var expected = model.PooledFeatures(cut);
        model.EncoderWindow = 5;
        Assert.True(model.PooledFeatures(full).allclose(expected, atol: 1e-5));
        Assert.Throws<ArgumentOutOfRangeException>(() => model.EncoderWindow = 41);
    }

    /// <summary>The bag's features follow the pooled ones, read tokens beyond the window, size the head, and a checkpoint spec with BagTokens rebuilds the same model.</summary>
    [Fact]
    public void TokenBagReadsBeyondTheWindowAndRoundTrips()
    {
        using var scope = NewDisposeScope();
        var model = TinyLayerProbe();
        model.UseTokenBag();
        model.UseTokenBag();   // once only
        model.EncoderWindow = 5;
        Assert.Equal(2 * 32 * 3 + 100, model.NumFeatures);
        model.TokenBag!.Fit([[10, 11, 40], [10, 40], [11, 41], [41, 12]]);
        model.ReplaceSequenceHead(2);
        long pad = model.PadTokenId;
        var a = Ids([5, 10, 11, 12, 6, pad, pad], [5, 20, 21, 6, pad, pad, pad]);
        var b = Ids([5, 10, 11, 12, 40, 41, 6], [5, 20, 21, 6, pad, pad, pad]);
        var fa = model.PooledFeatures(a);
        var fb = model.PooledFeatures(b);
        Assert.True(fa[0, ..192].allclose(fb[0, ..192], atol: 1e-5), "the transformer sees the same window");
        Assert.False(fa[0, 192..].allclose(fb[0, 192..]), "the bag sees tokens 40 and 41 beyond it");
        Assert.Equal(new long[] { 2, 2 }, model.Forward(b).shape);
        Assert.Throws<InvalidOperationException>(() => model.ForwardFrom(0, model.HiddenStateAfter(0, a), a.ne(pad).to_type(ScalarType.Int64)));

        var state = model.state_dict();
        Assert.Contains("token_bag.idf", state.Keys);
        var rebuilt = new BertModel(NlpModelTests.TinyBert, new ModelOptions(NumClasses: 0));
        rebuilt.Pooling = TextPooling.LayerMeanMax;
        rebuilt.UseTokenBag();
        rebuilt.EncoderWindow = 5;
        rebuilt.ReplaceSequenceHead(2);
        rebuilt.load_state_dict(state);
        rebuilt.eval();
        Assert.True(rebuilt.Forward(b).allclose(model.Forward(b), atol: 1e-5));
    }
}
