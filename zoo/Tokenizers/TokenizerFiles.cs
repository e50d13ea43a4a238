using System.Text;
using System.Text.Json.Nodes;

namespace ModelZoo.Tokenizers;

/// <summary>Builds a tokenizer from Hugging Face tokenizer files: <c>tokenizer.json</c>, <c>vocab.txt</c>, or <c>vocab.json</c> + <c>merges.txt</c>.</summary>
public static class TokenizerFiles
{
    /// <summary>
    /// Loads the tokenizer in <paramref name="directory"/>: <c>tokenizer.json</c> when it holds a WordPiece or
    /// byte-level BPE model, else <c>vocab.txt</c> (WordPiece), else <c>vocab.json</c> + <c>merges.txt</c> (byte-level BPE).
    /// <c>tokenizer_config.json</c>, when present, gives do_lower_case, strip_accents and model_max_length.
    /// </summary>
    /// <exception cref="FileNotFoundException">None of the files is there; the message lists what was looked for.</exception>
    public static TextTokenizer FromDirectory(string directory, bool? lowerCaseDefault = null)
    {
        var cfgPath = Path.Combine(directory, "tokenizer_config.json");
        var cfg = File.Exists(cfgPath) ? JsonNode.Parse(File.ReadAllText(cfgPath))?.AsObject() : null;
        bool? lower = cfg?["do_lower_case"] is JsonValue l ? l.GetValue<bool>() : lowerCaseDefault;
        bool? strip = cfg?["strip_accents"] is JsonValue s && s.TryGetValue<bool>(out bool sb) ? sb : null;
        int maxLength = cfg?["model_max_length"] is JsonValue m && m.TryGetValue<double>(out double md) && md < 1e6 ? (int)md : 512;

        var json = Path.Combine(directory, "tokenizer.json");
        if (File.Exists(json)) return FromTokenizerJson(File.ReadAllText(json), maxLength, json);
        var vocabTxt = Path.Combine(directory, "vocab.txt");
        if (File.Exists(vocabTxt)) return WordPieceTextTokenizer.FromVocab(vocabTxt, lower ?? true, strip, maxLength);
        var vocabJson = Path.Combine(directory, "vocab.json");
        var merges = Path.Combine(directory, "merges.txt");
        if (File.Exists(vocabJson) && File.Exists(merges)) return ByteLevelBpeTextTokenizer.FromFiles(vocabJson, merges, false, maxLength);
        throw new FileNotFoundException(
            $"No tokenizer files in {directory}: looked for tokenizer.json, vocab.txt, or vocab.json + merges.txt. " +
            "Download them from the model's Hugging Face repository into that folder.", directory);
    }

    /// <summary>
    /// Reads a Hugging Face <c>tokenizer.json</c> whose model is WordPiece (BERT normalizer options honoured) or
    /// byte-level BPE (RoBERTa/GPT-2). Other models (Unigram, SentencePiece BPE) are not supported.
    /// </summary>
    /// <exception cref="NotSupportedException">The file describes a tokenizer these classes do not implement.</exception>
    /// <exception cref="FormatException">The file is not valid JSON or lacks/mistypes a field the model needs; the message names <paramref name="source"/>.</exception>
    public static TextTokenizer FromTokenizerJson(string json, int maxLength = 512, string source = "tokenizer.json")
    {
        try { return FromTokenizerJsonCore(json, maxLength, source); }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException or ArgumentException or FormatException
                                  && !e.Message.Contains(source, StringComparison.Ordinal))
        {
            // System.Text.Json (syntax, or a value of another kind than the field needs) and Microsoft.ML.Tokenizers
            // (inconsistent vocabulary/merges) do not name the file.
            throw new FormatException($"{source} is not a usable tokenizer.json: {e.Message}", e);
        }
    }

    private static TextTokenizer FromTokenizerJsonCore(string json, int maxLength, string source)
    {
        var root = JsonNode.Parse(json)?.AsObject() ?? throw new FormatException($"{source} is not a JSON object.");
        var model = root["model"]?.AsObject() ?? throw new FormatException($"{source} has no 'model'.");
        string type = model["type"]?.GetValue<string>() ?? (model["merges"] is not null ? "BPE" : "WordPiece");
        var vocab = model["vocab"]?.AsObject() ?? throw new FormatException($"{source}: model.vocab is missing or not an object.");
        switch (type)
        {
            case "WordPiece":
            {
                var norm = root["normalizer"] as JsonObject;
                bool lower = norm?["lowercase"] is JsonValue l ? l.GetValue<bool>() : false;
                bool? strip = norm?["strip_accents"] is JsonValue s && s.TryGetValue<bool>(out bool sb) ? sb : null;
                var byId = vocab.Select(kv => (Token: kv.Key, Id: kv.Value!.GetValue<int>())).OrderBy(t => t.Id).ToList();
                for (int i = 0; i < byId.Count; i++)
                    if (byId[i].Id != i) throw new FormatException($"{source}: WordPiece ids are not contiguous (id {i} is missing).");
                var text = new StringBuilder();
                foreach (var (token, _) in byId) text.Append(token).Append('\n');
                using var stream = new MemoryStream(Encoding.UTF8.GetBytes(text.ToString()));
                return WordPieceTextTokenizer.FromVocab(stream, lower, strip, maxLength);
            }
            case "BPE":
            {
                string pre = root["pre_tokenizer"]?["type"]?.GetValue<string>() ?? "";
                if (pre != "ByteLevel")
                    throw new NotSupportedException($"{source}: BPE with pre_tokenizer '{pre}' is not supported; only byte-level BPE (RoBERTa/GPT-2) is.");
                bool prefixSpace = root["pre_tokenizer"]?["add_prefix_space"] is JsonValue p && p.GetValue<bool>();
                var merges = new StringBuilder("#version: 0.2\n");
                foreach (var m in model["merges"]?.AsArray() ?? [])
                    merges.Append(m is JsonArray pair ? $"{pair[0]!.GetValue<string>()} {pair[1]!.GetValue<string>()}" : m!.GetValue<string>()).Append('\n');
                using var v = new MemoryStream(Encoding.UTF8.GetBytes(vocab.ToJsonString()));
                using var ms = new MemoryStream(Encoding.UTF8.GetBytes(merges.ToString()));
                return ByteLevelBpeTextTokenizer.FromFiles(v, ms, prefixSpace, maxLength);
            }
            default:
                throw new NotSupportedException($"{source}: tokenizer model '{type}' is not supported (WordPiece and byte-level BPE are).");
        }
    }
}
