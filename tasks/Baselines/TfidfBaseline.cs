using System.Diagnostics;
using System.Globalization;
using System.Text;
using static TorchSharp.torch;

namespace ModelZoo.Tasks.Baselines;

/// <summary>
/// The text quickstart's baseline: TF-IDF over words and word pairs with a <see cref="LogisticBaseline"/> on top.
/// Words are runs of letters, digits and marks, lower-cased; in scripts written without spaces (Chinese, Japanese,
/// Thai, …) every character is a word, so pairs of characters play the part of words. Terms are hashed to 64 bits
/// (no strings are kept per text), those in fewer than two training texts are dropped, the vocabulary is capped at the
/// <see cref="MaxVocabulary"/> most frequent, and each text's row is sublinear TF (1 + ln tf) × smoothed IDF
/// (ln((1 + n)/(1 + df)) + 1), scaled to unit length, held as a sparse matrix.
/// </summary>
public static class TfidfBaseline
{
    /// <summary>Most terms kept (by document frequency on the training texts).</summary>
    public const int MaxVocabulary = 200_000;

    /// <summary>The method in words, for logs and reports.</summary>
    public static string Method => "TF-IDF of words and word pairs (sublinear tf, unit-length rows) + logistic regression (C = 1, L-BFGS)";

    /// <summary>Fits on the training texts and labels and scores on the held-out ones.</summary>
    public static BaselineResult Run(IReadOnlyList<string> trainTexts, IReadOnlyList<int> trainLabels, IReadOnlyList<string> heldOutTexts, IReadOnlyList<int> heldOutLabels, int numClasses)
    {
        var clock = Stopwatch.StartNew();
        var trainTerms = Count(trainTexts);
        var testTerms = Count(heldOutTexts);
        int minDf = trainTexts.Count >= 100 ? 2 : 1;
        var df = new Dictionary<ulong, int>();
        foreach (var doc in trainTerms)
            foreach (var t in doc.Keys) df[t] = df.GetValueOrDefault(t) + 1;
        var vocab = df.Where(kv => kv.Value >= minDf).OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key).Take(MaxVocabulary)
            .Select((kv, i) => (kv.Key, Column: i, Idf: Math.Log((1.0 + trainTexts.Count) / (1.0 + kv.Value)) + 1)).ToDictionary(v => v.Key, v => (v.Column, v.Idf));
        using var scope = NewDisposeScope();
        var trainX = Matrix(trainTerms, vocab);
        var testX = Matrix(testTerms, vocab);
        return LogisticBaseline.FitAndScore(Method, trainX, trainLabels.Select(l => (long)l).ToArray(), testX, heldOutLabels.Select(l => (long)l).ToArray(),
            numClasses, clock, $"{vocab.Count:N0} terms in {minDf}+ training texts");
    }

    /// <summary>The words of <paramref name="text"/> as <see cref="TfidfBaseline"/> reads them (lower-cased; one word per character in scripts without spaces).</summary>
    public static List<string> Words(string text)
    {
        var words = new List<string>();
        var cur = new StringBuilder();
        void Flush()
        {
            if (cur.Length > 0) words.Add(cur.ToString());
            cur.Clear();
        }
        foreach (var r in text.EnumerateRunes())
        {
            if (IsUnspaced(r.Value))
            {
                Flush();
                words.Add(r.ToString());
                continue;
            }
            var cat = Rune.GetUnicodeCategory(r);
            bool word = Rune.IsLetterOrDigit(r) || cat is UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark
                || (cur.Length > 0 && (r.Value == '\'' || r.Value == '\u2019' || r.Value == '_'));
            if (word) cur.Append(Rune.ToLowerInvariant(r).ToString());
            else Flush();
        }
        Flush();
        return words;
    }

    /// <summary>Scripts written without spaces between words: CJK ideographs, kana, Thai, Lao, Khmer, Myanmar (Korean is written with spaces).</summary>
    private static bool IsUnspaced(int c) =>
        c is >= 0x4E00 and <= 0x9FFF or >= 0x3400 and <= 0x4DBF or >= 0x20000 and <= 0x2FA1F or >= 0xF900 and <= 0xFAFF
            or >= 0x3040 and <= 0x30FF or >= 0x31F0 and <= 0x31FF
            or >= 0x0E00 and <= 0x0EFF or >= 0x1780 and <= 0x17FF or >= 0x1000 and <= 0x109F;

    /// <summary>Term counts of each text: hashed words and hashed pairs of neighbouring words.</summary>
    private static Dictionary<ulong, int>[] Count(IReadOnlyList<string> texts)
    {
        var result = new Dictionary<ulong, int>[texts.Count];
        Parallel.For(0, texts.Count, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, i =>
        {
            var counts = new Dictionary<ulong, int>();
            ulong prev = 0;
            bool first = true;
            foreach (var w in Words(texts[i]))
            {
                ulong h = Hash(w);
                counts[h] = counts.GetValueOrDefault(h) + 1;
                if (!first)
                {
                    ulong pair = Mix(prev * 0x9E3779B97F4A7C15UL ^ h ^ 0xB16B00B5UL);
                    counts[pair] = counts.GetValueOrDefault(pair) + 1;
                }
                prev = h;
                first = false;
            }
            result[i] = counts;
        });
        return result;
    }

    /// <summary>FNV-1a over the UTF-16 code units, then mixed (64 bits: collisions are negligible at these vocabulary sizes).</summary>
    private static ulong Hash(string s)
    {
        ulong h = 0xCBF29CE484222325UL;
        foreach (char c in s)
        {
            h ^= c;
            h *= 0x100000001B3UL;
        }
        return Mix(h);
    }

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>The sparse TF-IDF matrix (N×|vocabulary|, COO, float32) of the counted texts.</summary>
    private static Tensor Matrix(Dictionary<ulong, int>[] docs, Dictionary<ulong, (int Column, double Idf)> vocab)
    {
        var rows = new List<long>();
        var cols = new List<long>();
        var vals = new List<float>();
        var entries = new List<(int Column, double Value)>();
        for (int i = 0; i < docs.Length; i++)
        {
            entries.Clear();
            foreach (var (term, tf) in docs[i])
                if (vocab.TryGetValue(term, out var v)) entries.Add((v.Column, (1 + Math.Log(tf)) * v.Idf));
            double norm = Math.Sqrt(entries.Sum(e => e.Value * e.Value));
            if (norm == 0) continue;
            foreach (var (c, value) in entries.OrderBy(e => e.Column))
            {
                rows.Add(i);
                cols.Add(c);
                vals.Add((float)(value / norm));
            }
        }
        var indices = stack([tensor(rows.ToArray()), tensor(cols.ToArray())]);
        return sparse_coo_tensor(indices, tensor(vals.ToArray()), [docs.Length, Math.Max(1, vocab.Count)]);
    }
}
