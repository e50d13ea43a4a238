using System.Text.Json.Nodes;
using ModelZoo.Models.Nlp;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Zoo.Nlp;

/// <summary>BERT, RoBERTa and DistilBERT: names, shapes and counts against Hugging Face's, heads, masks and each architectural difference.</summary>
public class NlpModelTests
{
    internal static readonly BertConfig TinyBert = new(VocabSize: 100, HiddenSize: 32, NumHiddenLayers: 2, NumAttentionHeads: 4, IntermediateSize: 64, MaxPositionEmbeddings: 40);
    private static readonly BertConfig TinyRoberta = RobertaFamily.BaseConfig with { VocabSize = 100, HiddenSize = 32, NumHiddenLayers = 2, NumAttentionHeads = 4, IntermediateSize = 64, MaxPositionEmbeddings = 42 };
    private static readonly DistilBertConfig TinyDistil = new(VocabSize: 100, Dim: 32, NLayers: 2, NHeads: 4, HiddenDim: 64, MaxPositionEmbeddings: 40);

    private static JsonObject Keys(string name)
    {
        var root = JsonNode.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "nlp", "hf_keys.json")))!.AsObject();
        return root[name]!.AsObject();
    }

    private static Dictionary<string, long[]> Shapes(JsonObject o) =>
        o.ToDictionary(kv => kv.Key, kv => kv.Value!.AsArray().Select(v => v!.GetValue<long>()).ToArray());

    private static void AssertSameKeysAndShapes(Dictionary<string, long[]> expected, nn.Module model)
    {
        var actual = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.shape);
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), actual.Keys.Order(StringComparer.Ordinal));
        foreach (var (k, s) in expected) Assert.True(s.SequenceEqual(actual[k]), $"{k}: expected [{string.Join(",", s)}], got [{string.Join(",", actual[k])}]");
    }

    /// <summary>Full-size models have exactly the parameter names and shapes of the official checkpoints (fixture written from HF's modeling code by scripts/fixtures/nlp_keys.py), and the remap turns each checkpoint's stored keys into them.</summary>
    [Theory]
    [InlineData("bert-base-uncased", "bert-base-uncased", 0)]
    [InlineData("all-minilm-l6-v2", "all-minilm-l6-v2", 0)]
    [InlineData("bert-base-uncased/seq-cls-3", "bert-base-uncased", 3)]
    [InlineData("roberta-base", "roberta-base", 0)]
    [InlineData("roberta-base/seq-cls-2", "roberta-base", 2)]
    [InlineData("distilbert-base-uncased", "distilbert-base-uncased", 0)]
    [InlineData("distilbert-base-uncased/seq-cls-2", "distilbert-base-uncased", 2)]
    [InlineData("electra-small-discriminator", "electra-small-discriminator", 0)]
    public void FullSizeModelsMatchOfficialCheckpointKeys(string fixture, string catalogName, int classes)
    {
        using var scope = NewDisposeScope();
        var f = Keys(fixture);
        using var model = ModelZoo.Zoo.Create(catalogName, classes == 0 ? null : new ModelOptions(NumClasses: classes));
        var expected = Shapes(f["model"]!.AsObject());
        AssertSameKeysAndShapes(expected, model);
        Assert.Equal(f["model_parameters"]!.GetValue<long>(), model.CountParameters());

        var checkpoint = Shapes(f["checkpoint"]!.AsObject()).ToDictionary(kv => kv.Key, kv => zeros(1));
        var remapped = ModelZoo.Zoo.Catalog.Get(catalogName).Family switch
        {
            "distilbert" => DistilBertFamily.RemapCheckpoint(checkpoint),
            "electra" => ElectraFamily.RemapCheckpoint(checkpoint),
            "roberta" => RobertaFamily.RemapCheckpoint(checkpoint),
            _ => BertFamily.RemapCheckpoint(checkpoint),
        };
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), remapped.Keys.Order(StringComparer.Ordinal));
    }

    /// <summary>Parameter count of a BERT-like encoder from its config (embeddings, per-layer attention/FFN/LayerNorms, pooler).</summary>
    private static long Formula(object config) => config switch
    {
        BertConfig c => (long)(c.VocabSize + c.MaxPositionEmbeddings + c.TypeVocabSize) * c.HiddenSize + 2L * c.HiddenSize
            + c.NumHiddenLayers * (4L * (c.HiddenSize * c.HiddenSize + c.HiddenSize) + 2L * c.HiddenSize * c.IntermediateSize + c.IntermediateSize + c.HiddenSize + 4L * c.HiddenSize)
            + (c.AddPooler ? (long)c.HiddenSize * c.HiddenSize + c.HiddenSize : 0),
        ElectraConfig e => Formula(e.Encoder) - (long)(e.Encoder.VocabSize + e.Encoder.MaxPositionEmbeddings + e.Encoder.TypeVocabSize + 2) * (e.Encoder.HiddenSize - e.EmbeddingSize)
            + (e.EmbeddingSize != e.Encoder.HiddenSize ? (long)e.EmbeddingSize * e.Encoder.HiddenSize + e.Encoder.HiddenSize : 0),
        DistilBertConfig d => (long)(d.VocabSize + d.MaxPositionEmbeddings) * d.Dim + 2L * d.Dim
            + d.NLayers * (4L * (d.Dim * d.Dim + d.Dim) + 2L * d.Dim * d.HiddenDim + d.HiddenDim + d.Dim + 4L * d.Dim),
        _ => throw new ArgumentException(config.GetType().Name),
    };

    /// <summary>
    /// Catalog parameter counts: every NLP entry's count equals the closed formula from its config, and the formula equals
    /// the count of the built model for every entry up to base size (large models, 335M+ parameters, are not built here
    /// to keep the test fast; their counts also equal Hugging Face's published 335,141,888 / 333,579,264 / 354,310,144 + pooler).
    /// </summary>
    [Fact]
    public void CatalogParameterCountsAreComputed()
    {
        var entries = ModelZoo.Zoo.Catalog.Filter(ModelTask.Nlp).ToList();
        Assert.Equal(12, entries.Count);
        foreach (var entry in entries)
        {
            Assert.True(entry.ParameterCount == Formula(entry.Config), $"{entry.Name}: catalog says {entry.ParameterCount:N0}, formula gives {Formula(entry.Config):N0}");
            if (entry.ParameterCount > 130_000_000) continue;
            using var scope = NewDisposeScope();
            using var model = entry.Factory(new ModelOptions());
            Assert.True(entry.ParameterCount == model.CountParameters(), $"{entry.Name}: catalog says {entry.ParameterCount:N0}, model has {model.CountParameters():N0}");
            Assert.Equal(0, model.NumClasses);
        }
    }

    /// <summary>A Hugging Face-style checkpoint (bert. prefix, gamma/beta, pre-training heads, position_ids buffer) loads strictly after the remap and gives the same outputs.</summary>
    [Fact]
    public void RemappedHubStyleCheckpointLoadsStrictly()
    {
        using var scope = NewDisposeScope();
        var source = new BertModel(TinyBert, new ModelOptions(NumClasses: 3));
        var target = new BertModel(TinyBert, new ModelOptions(NumClasses: 3));
        var hub = new Dictionary<string, Tensor>();
        foreach (var (k, v) in source.state_dict())
        {
            string key = k.StartsWith("classifier.") ? k : "bert." + k;
            if (key.Contains("LayerNorm.")) key = key.Replace("LayerNorm.weight", "LayerNorm.gamma").Replace("LayerNorm.bias", "LayerNorm.beta");
            hub[key] = v;
        }
        hub["cls.predictions.bias"] = zeros(100);
        hub["bert.embeddings.position_ids"] = arange(40).unsqueeze(0);
        var (missing, unexpected) = target.load_state_dict(BertFamily.RemapCheckpoint(hub), strict: true);
        Assert.Empty(missing);
        Assert.Empty(unexpected);
        source.eval();
        target.eval();
        var ids = tensor(new long[] { 5, 6, 7, 8, 0, 0 }, [1, 6]);
        Assert.True(source.forward(ids).allclose(target.forward(ids)));
    }

    internal static Tensor Ids(params long[][] rows) => tensor(rows.SelectMany(r => r).ToArray(), [rows.Length, rows[0].Length]);

    /// <summary>Padding changes nothing for the real tokens: a padded batch equals each sequence run alone (BERT, RoBERTa, DistilBERT).</summary>
    [Theory]
    [InlineData("bert")]
    [InlineData("roberta")]
    [InlineData("distilbert")]
    public void PaddedBatchEqualsSequencesAlone(string family)
    {
        using var scope = NewDisposeScope();
        TextEncoder model = family switch
        {
            "bert" => new BertModel(TinyBert, new ModelOptions(NumClasses: 0)),
            "roberta" => new RobertaModel(TinyRoberta, new ModelOptions(NumClasses: 0)),
            _ => new DistilBertModel(TinyDistil, new ModelOptions(NumClasses: 0)),
        };
        model.eval();
        long pad = model.PadTokenId;
        var batch = Ids([10, 11, 12, 13, 14], [20, 21, 22, pad, pad]);
        var full = model.LastHiddenState(batch);
        var alone0 = model.LastHiddenState(Ids([10, 11, 12, 13, 14]));
        var alone1 = model.LastHiddenState(Ids([20, 21, 22]));
        Assert.True(full[0].allclose(alone0[0], atol: 1e-5), "row 0");
        Assert.True(full[1, ..3].allclose(alone1[0], atol: 1e-5), "row 1 (padded)");
        // Without the mask the padded row differs: the mask is what keeps it equal.
        var unmasked = model.LastHiddenState(batch, ones_like(batch));
        Assert.False(unmasked[1, ..3].allclose(alone1[0], atol: 1e-5));
        // Mean pooling uses only the real tokens.
        model.Pooling = TextPooling.Mean;
        var emb = model.Embed(batch);
        var expected = nn.functional.normalize(alone1[0].mean([0]).unsqueeze(0), p: 2, dim: 1);
        Assert.True(emb[1].unsqueeze(0).allclose(expected, atol: 1e-5));
        Assert.True(emb.norm(1).allclose(ones(2), atol: 1e-5));
    }

    /// <summary>Splitting the forward pass at any layer (cache the lower layers, train the top) gives the same logits as one pass, for every family.</summary>
    [Theory]
    [InlineData("bert")]
    [InlineData("roberta")]
    [InlineData("distilbert")]
    [InlineData("electra")]
    public void ForwardSplitAtAnyLayerEqualsForward(string family)
    {
        using var scope = NewDisposeScope();
        TextEncoder model = family switch
        {
            "bert" => new BertModel(TinyBert, new ModelOptions(NumClasses: 3)),
            "roberta" => new RobertaModel(TinyRoberta, new ModelOptions(NumClasses: 3)),
            "electra" => new ElectraModel(new ElectraConfig(TinyBert, EmbeddingSize: 16), new ModelOptions(NumClasses: 3)),
            _ => new DistilBertModel(TinyDistil, new ModelOptions(NumClasses: 3)),
        };
        model.eval();
        long pad = model.PadTokenId;
        var ids = Ids([10, 11, 12, 13, 14], [20, 21, 22, pad, pad]);
        var mask = ids.ne(pad).to_type(ScalarType.Int64);
        var whole = model.Forward(ids, mask);
        for (int k = 0; k <= model.NumLayers; k++)
        {
            var split = model.ForwardFrom(k, model.HiddenStateAfter(k, ids, mask), mask);
            Assert.True(split.allclose(whole, atol: 1e-5), $"split at layer {k}");
        }
        Assert.True(model.HiddenStateAfter(model.NumLayers, ids, mask).allclose(model.LastHiddenState(ids, mask), atol: 1e-6));
        Assert.Throws<ArgumentOutOfRangeException>(() => model.HiddenStateAfter(model.NumLayers + 1, ids, mask));
        Assert.Throws<ArgumentException>(() => model.ForwardFrom(0, zeros(2, 5), mask));
    }

    /// <summary>Layer mean+max pooling: every hidden state's masked mean and max, concatenated; padding changes nothing; the head is sized to it; a checkpoint spec rebuilds it.</summary>
    [Fact]
    public void LayerMeanMaxPoolsEveryLayerAndIgnoresPadding()
    {
        using var scope = NewDisposeScope();
        var model = new BertModel(TinyBert, new ModelOptions(NumClasses: 0));
        model.eval();
        model.Pooling = TextPooling.LayerMeanMax;
        Assert.Equal(2 * 32 * 3, model.NumFeatures);
        model.ReplaceSequenceHead(2);
        long pad = model.PadTokenId;
        var batch = Ids([10, 11, 12, 13, 14], [20, 21, 22, pad, pad]);
        var pooled = model.PooledFeatures(batch);
        Assert.Equal(new long[] { 2, 192 }, pooled.shape);
        var alone = model.PooledFeatures(Ids([20, 21, 22]));
        Assert.True(pooled[1].allclose(alone[0], atol: 1e-5), "padding must not change the pooled features");
        var states = model.HiddenStates(Ids([20, 21, 22]));
        var all = cat(states.ToArray(), -1)[0];
        Assert.True(alone[0, ..96].allclose(all.mean([0]), atol: 1e-5), "means of every layer");
        Assert.True(alone[0, 96..].allclose(all.amax([0]), atol: 1e-5), "maxima of every layer");
        Assert.Equal(new long[] { 2, 2 }, model.Forward(batch).shape);
        Assert.Equal(new long[] { 2, 5, 32 }, model.LastHiddenState(batch).shape);
        Assert.Throws<InvalidOperationException>(() => model.ForwardFrom(1, model.HiddenStateAfter(1, batch), batch.ne(pad).to_type(ScalarType.Int64)));
    }

    /// <summary>RoBERTa's position ids count non-padding tokens from padding_idx + 1; padding keeps padding_idx.</summary>
    [Fact]
    public void RobertaPositionIdsStartAfterPadding()
    {
        using var scope = NewDisposeScope();
        var pos = BertEmbeddings.PositionsFromPadding(Ids([0, 31, 32, 2, 1, 1], [0, 40, 2, 1, 1, 1]), 1);
        Assert.Equal(new long[] { 2, 3, 4, 5, 1, 1, 2, 3, 4, 1, 1, 1 }, pos.data<long>().ToArray());
        // The model uses them: RoBERTa's output for a sequence equals BERT's with the same weights when BERT is given those positions
        // (checked by moving the position table: BERT at positions p equals RoBERTa at p).
        var roberta = new RobertaModel(TinyRoberta, new ModelOptions(NumClasses: 0));
        roberta.eval();
        var bertCfg = TinyRoberta with { ModelType = "bert" };
        var bert = new BertModel(bertCfg, new ModelOptions(NumClasses: 0));
        bert.load_state_dict(roberta.state_dict());
        bert.eval();
        var ids = Ids([0, 31, 32, 2]);
        var r = roberta.LastHiddenState(ids);
        var b = bert.LastHiddenState(ids);
        Assert.False(r.allclose(b, atol: 1e-4));
        // Shift the position table by padding_idx + 1 = 2 rows: BERT's position i reads what RoBERTa's i + 2 reads.
        using (no_grad())
        {
            var table = ((TorchSharp.Modules.Embedding)bert.Get("embeddings.position_embeddings")).weight!;
            var shifted = table[2..].clone();
            table[..^2].copy_(shifted);
        }
        Assert.True(roberta.LastHiddenState(ids).allclose(bert.LastHiddenState(ids), atol: 1e-5));
        Assert.Equal(TinyRoberta.MaxPositionEmbeddings - 2, roberta.MaxPositions);
    }

    /// <summary>Token types: BERT adds the type embedding (pair inputs change the output); RoBERTa has a single type; DistilBERT has none.</summary>
    [Fact]
    public void TokenTypesAreUsedWhereTheArchitectureHasThem()
    {
        using var scope = NewDisposeScope();
        var bert = new BertModel(TinyBert, new ModelOptions(NumClasses: 0));
        bert.eval();
        var ids = Ids([1, 5, 6, 2, 7, 8, 2]);
        var types = Ids([0, 0, 0, 0, 1, 1, 1]);
        Assert.False(bert.LastHiddenState(ids, null, types).allclose(bert.LastHiddenState(ids), atol: 1e-5));
        Assert.True(bert.LastHiddenState(ids, null, zeros_like(ids)).allclose(bert.LastHiddenState(ids)));
        var roberta = new RobertaModel(TinyRoberta, new ModelOptions(NumClasses: 0));
        Assert.Equal(new long[] { 1, 32 }, roberta.state_dict()["embeddings.token_type_embeddings.weight"].shape);
        var distil = new DistilBertModel(TinyDistil, new ModelOptions(NumClasses: 0));
        Assert.DoesNotContain(distil.state_dict().Keys, k => k.Contains("token_type"));
        Assert.DoesNotContain(distil.state_dict().Keys, k => k.Contains("pooler"));
    }

    /// <summary>hidden_act selects exact GELU (erf) or the tanh approximation, as configured.</summary>
    [Fact]
    public void GeluVariantFollowsConfig()
    {
        using var scope = NewDisposeScope();
        var exact = new BertModel(TinyBert, new ModelOptions(NumClasses: 0));
        var approx = new BertModel(TinyBert with { HiddenAct = "gelu_new" }, new ModelOptions(NumClasses: 0));
        var x = tensor(new float[] { 1f, -0.5f });
        var e = ((nn.Module<Tensor, Tensor>)exact.Get("encoder.layer.0.intermediate.intermediate_act_fn")).call(x);
        var a = ((nn.Module<Tensor, Tensor>)approx.Get("encoder.layer.0.intermediate.intermediate_act_fn")).call(x);
        Assert.Equal(0.8413447f, e[0].item<float>(), 5);   // x·Φ(x) at 1
        Assert.Equal(0.8411920f, a[0].item<float>(), 5);   // tanh approximation at 1
        Assert.Throws<NotSupportedException>(() => new BertModel(TinyBert with { HiddenAct = "mish2" }, new ModelOptions(NumClasses: 0)));
    }

    /// <summary>config.json files as the Hub has them are read into the right configs.</summary>
    [Fact]
    public void ConfigsReadFromHubConfigJson()
    {
        var bert = BertConfig.FromJson("""
            {"architectures":["BertForMaskedLM"],"attention_probs_dropout_prob":0.1,"gradient_checkpointing":false,"hidden_act":"gelu","hidden_dropout_prob":0.1,
             "hidden_size":768,"initializer_range":0.02,"intermediate_size":3072,"layer_norm_eps":1e-12,"max_position_embeddings":512,"model_type":"bert",
             "num_attention_heads":12,"num_hidden_layers":12,"pad_token_id":0,"position_embedding_type":"absolute","transformers_version":"4.6.0.dev0",
             "type_vocab_size":2,"use_cache":true,"vocab_size":30522}
            """);
        Assert.Equal(new BertConfig(), bert);
        var roberta = BertConfig.FromJson("""
            {"architectures":["RobertaForMaskedLM"],"attention_probs_dropout_prob":0.1,"bos_token_id":0,"eos_token_id":2,"hidden_act":"gelu","hidden_dropout_prob":0.1,
             "hidden_size":768,"initializer_range":0.02,"intermediate_size":3072,"layer_norm_eps":1e-05,"max_position_embeddings":514,"model_type":"roberta",
             "num_attention_heads":12,"num_hidden_layers":12,"pad_token_id":1,"type_vocab_size":1,"vocab_size":50265}
            """);
        Assert.Equal(RobertaFamily.BaseConfig, roberta);
        var distil = DistilBertConfig.FromJson("""
            {"activation":"gelu","architectures":["DistilBertForMaskedLM"],"attention_dropout":0.1,"dim":768,"dropout":0.1,"hidden_dim":3072,"initializer_range":0.02,
             "max_position_embeddings":512,"model_type":"distilbert","n_heads":12,"n_layers":6,"pad_token_id":0,"qa_dropout":0.1,"seq_classif_dropout":0.2,
             "sinusoidal_pos_embds":false,"tie_weights_":true,"vocab_size":30522}
            """);
        Assert.Equal(new DistilBertConfig(), distil);
        var electra = ElectraConfig.FromJson("""
            {"architectures":["ElectraForPreTraining"],"attention_probs_dropout_prob":0.1,"embedding_size":128,"hidden_act":"gelu","hidden_dropout_prob":0.1,
             "hidden_size":256,"initializer_range":0.02,"intermediate_size":1024,"layer_norm_eps":1e-12,"max_position_embeddings":512,"model_type":"electra",
             "num_attention_heads":4,"num_hidden_layers":12,"pad_token_id":0,"type_vocab_size":2,"vocab_size":30522}
            """);
        Assert.Equal(128, electra.EmbeddingSize);
        Assert.Equal(ModelZoo.Zoo.Catalog.Get("electra-small-discriminator").Config.ToString(), electra.ToString());
        Assert.Equal(((ElectraConfig)ModelZoo.Zoo.Catalog.Get("electra-small-discriminator").Config).Encoder, electra.Encoder);
        Assert.Throws<NotSupportedException>(() => BertConfig.FromJson("""{"model_type":"bert","position_embedding_type":"relative_key"}"""));
        Assert.Throws<NotSupportedException>(() => BertConfig.FromJson("""{"model_type":"distilbert"}"""));
    }

    /// <summary>Heads through ReplaceHead: sequence (BERT pooler → classifier, RoBERTa dense/out_proj, DistilBERT pre_classifier), token classification, and 0 = pooled embeddings.</summary>
    [Fact]
    public void HeadsReplaceAndProduceTheRightShapes()
    {
        using var scope = NewDisposeScope();
        var ids = Ids([3, 4, 5, 6, 0], [7, 8, 9, 0, 0]);
        var bert = new BertModel(TinyBert, new ModelOptions(NumClasses: 0));
        Assert.Equal(new long[] { 2, 32 }, bert.forward(ids).shape);
        bert.ReplaceHead(4);
        Assert.Equal(new long[] { 2, 4 }, bert.forward(ids).shape);
        Assert.Equal(new long[] { 4, 32 }, bert.state_dict()["classifier.weight"].shape);
        bert.ReplaceTokenHead(5);
        Assert.Equal(new long[] { 2, 5, 5 }, bert.forward(ids).shape);
        bert.ReplaceSequenceHead(2);
        Assert.Equal(new long[] { 2, 2 }, bert.forward(ids).shape);

        var roberta = new RobertaModel(TinyRoberta, new ModelOptions(NumClasses: 3));
        Assert.Contains("classifier.out_proj.weight", roberta.state_dict().Keys);
        Assert.Contains("classifier.dense.weight", roberta.state_dict().Keys);
        Assert.Equal(new long[] { 2, 3 }, roberta.forward(Ids([0, 4, 5, 2, 1], [0, 8, 2, 1, 1])).shape);

        var electra = new ElectraModel(new ElectraConfig(TinyBert with { ModelType = "electra", AddPooler = false, Pooling = TextPooling.Cls }, 16), new ModelOptions(NumClasses: 3));
        Assert.Equal(new long[] { 32, 16 }, electra.state_dict()["embeddings_project.weight"].shape);
        Assert.Equal(new long[] { 100, 16 }, electra.state_dict()["embeddings.word_embeddings.weight"].shape);
        Assert.Contains("classifier.out_proj.weight", electra.state_dict().Keys);
        Assert.Equal(new long[] { 2, 3 }, electra.forward(ids).shape);

        var distil = new DistilBertModel(TinyDistil, new ModelOptions(NumClasses: 2));
        Assert.Contains("classifier.pre_classifier.weight", distil.state_dict().Keys);
        Assert.Equal(new long[] { 2, 2 }, distil.forward(ids).shape);
        distil.ReplaceTokenHead(7);
        Assert.Equal(new long[] { 2, 5, 7 }, distil.forward(ids).shape);
        Assert.Equal(new long[] { 7, 32 }, distil.state_dict()["classifier.weight"].shape);
    }

    /// <summary>Parameter groups run embeddings, layer.0 … layer.N-1, head, and cover every parameter exactly once; freezing the backbone leaves only the head trainable.</summary>
    [Fact]
    public void ParameterGroupsPerLayerAndFreezing()
    {
        using var scope = NewDisposeScope();
        foreach (TextEncoder model in new TextEncoder[]
        {
            new BertModel(TinyBert, new ModelOptions(NumClasses: 3)),
            new DistilBertModel(TinyDistil, new ModelOptions(NumClasses: 3)),
        })
        {
            var groups = model.ParameterGroups();
            Assert.Equal(["embeddings", "layer.0", "layer.1", "head"], groups.Select(g => g.Name));
            Assert.Equal(Enumerable.Range(0, 4), groups.Select(g => g.Depth));
            var names = groups.SelectMany(g => g.Parameters.Select(p => p.Name)).ToList();
            Assert.Equal(model.named_parameters().Select(p => p.name).Order(), names.Order());
            Assert.All(groups[1].Parameters, p => Assert.StartsWith(model.LayersPath + ".0.", p.Name));
            model.FreezeBackbone();
            Assert.All(model.named_parameters(), p => Assert.Equal(p.name.StartsWith("classifier."), p.parameter.requires_grad));
        }
    }

    /// <summary>Surgery on text models: the dry run feeds valid token ids, a matching replacement works, a wrong-width one is undone; Summary runs on ids.</summary>
    [Fact]
    public void SurgeryAndSummaryWorkOnTextModels()
    {
        using var scope = NewDisposeScope();
        var bert = new BertModel(TinyBert, new ModelOptions(NumClasses: 2));
        bert.DryRun();
        bert.Replace("encoder.layer.1.intermediate.intermediate_act_fn", nn.ReLU());
        Assert.IsType<TorchSharp.Modules.ReLU>(bert.Get("encoder.layer.1.intermediate.intermediate_act_fn"));
        Assert.Throws<SurgeryException>(() => bert.Replace("encoder.layer.1.intermediate.dense", nn.Linear(32, 48)));
        Assert.Equal(64, ((TorchSharp.Modules.Linear)bert.Get("encoder.layer.1.intermediate.dense")).weight!.shape[0]);
        bert.Remove("encoder.layer.1");
        Assert.Equal(new long[] { 1, 2 }, bert.forward(Ids([3, 4, 5])).shape);
        string summary = bert.Summary();
        Assert.Contains("encoder.layer.0.attention.self.query", summary);
        Assert.Contains("[1, 16, 32]", summary);
        Assert.DoesNotContain("Forward failed", summary);
    }

    /// <summary>A pooler kept only for strict loading (mean/CLS pooling) is frozen; switching to pooler pooling makes it trainable.</summary>
    [Fact]
    public void UnusedPoolerIsFrozen()
    {
        using var scope = NewDisposeScope();
        var mini = new BertModel(TinyBert with { Pooling = TextPooling.Mean }, new ModelOptions(NumClasses: 0));
        Assert.All(mini.named_parameters(), p => Assert.Equal(!p.name.StartsWith("pooler."), p.parameter.requires_grad));
        mini.Pooling = TextPooling.Pooler;
        Assert.All(mini.parameters(), p => Assert.True(p.requires_grad));
    }

    /// <summary>Wrong inputs fail with a message that says what to do.</summary>
    [Fact]
    public void FloatInputIsRejectedWithAHint()
    {
        using var scope = NewDisposeScope();
        var bert = new BertModel(TinyBert, new ModelOptions(NumClasses: 0));
        var e = Assert.Throws<ArgumentException>(() => bert.forward(rand(1, 3, 8, 8)));
        Assert.Contains("Zoo.Tokenizer", e.Message);
    }
}
