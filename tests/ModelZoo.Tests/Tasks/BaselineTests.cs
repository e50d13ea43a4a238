using ModelZoo.Data;
using ModelZoo.Tasks.Baselines;
using ModelZoo.Tasks.Reports;
using ModelZoo.Tests.Data;
using SkiaSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Tasks;

public sealed class BaselineTests
{
    [Fact]
    public void Logistic_regression_separates_three_blobs()
    {
        var rng = new Random(3);
        var centres = new[] { (0.0, 3.0), (3.0, -2.0), (-3.0, -2.0) };
        float[] Sample(int n, out long[] y)
        {
            var x = new float[n * 2];
            y = new long[n];
            for (int i = 0; i < n; i++)
            {
                int c = i % 3;
                y[i] = c;
                x[2 * i] = (float)(centres[c].Item1 + Gauss(rng));
                x[2 * i + 1] = (float)(centres[c].Item2 + Gauss(rng));
            }
            return x;
        }
        var trainX = Sample(300, out var trainY);
        var testX = Sample(150, out var testY);
        using var scope = NewDisposeScope();
        var (w, b) = LogisticBaseline.Fit(tensor(trainX, [300, 2]), trainY, 3);
        var predicted = LogisticBaseline.Predict(tensor(testX, [150, 2]), w, b);
        var (acc, f1) = LogisticBaseline.Score(predicted, testY, 3);
        Assert.True(acc >= 0.95, $"accuracy {acc:P1} on well-separated blobs");
        Assert.True(f1 >= 0.95, $"macro-F1 {f1:F3}");
    }

    private static double Gauss(Random r) => Math.Sqrt(-2 * Math.Log(1 - r.NextDouble())) * Math.Cos(2 * Math.PI * r.NextDouble());

    [Fact]
    public void Score_counts_accuracy_and_macro_f1()
    {
        var (acc, f1) = LogisticBaseline.Score([0, 0, 1, 1], [0, 1, 1, 1], 3);
        Assert.Equal(0.75, acc, 6);
        // class 0: P 1/2, R 1 → F1 2/3; class 1: P 1, R 2/3 → F1 0.8; class 2 never seen nor predicted: left out.
        Assert.Equal((2.0 / 3 + 0.8) / 2, f1, 6);
    }

    [Fact]
    public void Words_are_lower_cased_and_unspaced_scripts_split_per_character()
    {
        Assert.Equal(["hello", "world's", "n", "42", "straße", "你", "好", "ok"], TfidfBaseline.Words("Hello, WORLD's n°42? Straße—你好 ok"));
    }

    [Fact]
    public void Tfidf_baseline_learns_topics_on_a_sparse_matrix()
    {
        var rng = new Random(5);
        string[][] topics =
        [
            ["goal", "match", "team", "league", "coach", "striker", "penalty", "season"],
            ["compiler", "kernel", "thread", "memory", "bug", "patch", "linker", "stack"],
            ["猫", "犬", "鳥", "魚", "馬", "牛", "羊", "虎"], // written without spaces: one word per character
        ];
        string[] common = ["the", "a", "of", "and", "today", "very", "new", "old"];
        string Text(int t) =>
            string.Join(t == 2 ? "" : " ", Enumerable.Range(0, 12).Select(_ => rng.Next(3) == 0 ? topics[t][rng.Next(8)] : t == 2 ? "的" : common[rng.Next(8)]));
        var train = Enumerable.Range(0, 120).Select(i => (Text: Text(i % 3), Label: i % 3)).ToList();
        var test = Enumerable.Range(0, 60).Select(i => (Text: Text(i % 3), Label: i % 3)).ToList();
        var r = TfidfBaseline.Run(train.Select(t => t.Text).ToList(), train.Select(t => t.Label).ToList(), test.Select(t => t.Text).ToList(), test.Select(t => t.Label).ToList(), 3);
        Assert.True(r.Accuracy >= 0.9, $"accuracy {r.Accuracy:P1}");
        Assert.Equal(120, r.TrainCount);
        Assert.Equal(60, r.HeldOutCount);
        Assert.Contains("terms", r.Note);
        Assert.True(r.Elapsed < TimeSpan.FromSeconds(30), $"{r.Elapsed}");
    }

    [Fact]
    public void Pixel_features_average_to_a_16_px_grid_and_upsample_tiny_images()
    {
        using var d = new TempDir();
        // 64×32: left half black, right half white.
        var halves = d.File("halves.png");
        File.WriteAllBytes(halves, Png(64, 32, (x, _) => x < 32 ? SKColors.Black : SKColors.White));
        var f = PixelBaseline.Features(ImageSource.FromFile(halves));
        Assert.Equal(256, f.Length);
        for (int gy = 0; gy < 16; gy++)
            for (int gx = 0; gx < 16; gx++) Assert.Equal(gx < 8 ? 0f : 1f, f[gy * 16 + gx], 3);
        // 4×4 pure green (luma 0.587): every cell the nearest pixel's grey.
        var tiny = d.File("tiny.png");
        File.WriteAllBytes(tiny, Png(4, 4, (_, _) => new SKColor(0, 255, 0)));
        Assert.All(PixelBaseline.Features(ImageSource.FromFile(tiny)), v => Assert.Equal(0.587f, v, 2));
    }

    [Fact]
    public void Pixel_baseline_learns_grey_levels_of_coloured_shapes()
    {
        using var shapes = new ShapesData(perClass: 20);
        var data = ImageFolder.Open(shapes.Folder);
        var all = Enumerable.Range(0, data.Count).ToArray();
        var (train, test) = ModelZoo.Tasks.Recipes.DataSources.StratifiedSplit(all, data.LabelOf, 0.25, 1);
        var r = PixelBaseline.Run(data, train, data, test, seed: 1);
        Assert.Equal(45, r.TrainCount);
        Assert.Equal(15, r.HeldOutCount);
        Assert.True(r.Accuracy >= 0.8, $"accuracy {r.Accuracy:P1}: red, green and blue shapes differ in grey level");
        Assert.Null(r.Note);
    }

    private static BaselineResult Result(double acc) => new("logistic regression on pixels", acc, acc, 100, 50, TimeSpan.FromSeconds(1.5));

    [Fact]
    public void Verdict_says_plainly_when_the_quickstart_did_not_beat_the_baseline()
    {
        var lost = new BaselineComparison("resnet18-cntk, linear probe", 0.72, "the validation split", Result(0.96));
        Assert.False(lost.Beat);
        Assert.Contains("did NOT beat the baseline", lost.Verdict);
        Assert.Contains("72.00 % vs the baseline's 96.00 %", lost.Verdict);
        Assert.Contains("-24.00 points", lost.Verdict);
        Assert.Contains("**The quickstart did NOT beat", lost.Markdown());
        Assert.False((bool)lost.Json()["beat"]!);

        var tie = new BaselineComparison("m", 0.8, "the validation split", Result(0.8));
        Assert.False(tie.Beat);
        Assert.Contains("did NOT beat", tie.Verdict);

        var won = new BaselineComparison("m", 0.9, "the test folder", Result(0.8));
        Assert.True(won.Beat);
        Assert.Contains("beat the baseline", won.Verdict);
        Assert.DoesNotContain("NOT", won.Verdict);
        Assert.Contains("+10.00 points (5 more items right)", won.Verdict);
    }

    [Fact]
    public void Report_gets_a_baseline_section_after_the_facts()
    {
        using var d = new TempDir();
        var ev = new EvaluationSummary("test", ["a", "b"], new long[,] { { 5, 0 }, { 1, 4 } }, 0.3, []);
        RunReport.Write(d.Path, "Quickstart: toy", [("model", "m"), ("data", "toy")], null, [ev]);
        var c = new BaselineComparison("m, linear probe", 0.9, "the test folder", Result(0.95) with { Note = "fitted on a sample" });
        c.WriteInto(d.Path);
        var md = File.ReadAllText(Path.Combine(d.Path, "report.md"));
        int baseline = md.IndexOf("## Baseline", StringComparison.Ordinal);
        Assert.True(baseline > md.IndexOf("**data**", StringComparison.Ordinal), md);
        Assert.True(baseline < md.IndexOf("## Test", StringComparison.Ordinal), md);
        Assert.Contains("did NOT beat the baseline", md);
        Assert.Contains("| baseline: logistic regression on pixels | 95.00 % |", md);
        Assert.Contains("Baseline note: fitted on a sample.", md);
        var html = File.ReadAllText(Path.Combine(d.Path, "report.html"));
        int section = html.IndexOf("<h2>Baseline</h2>", StringComparison.Ordinal);
        Assert.True(section > html.IndexOf("</ul>", StringComparison.Ordinal) && section < html.IndexOf("<h2>Test", StringComparison.Ordinal), html);
    }

    private static byte[] Png(int w, int h, Func<int, int, SKColor> color)
    {
        using var bmp = new SKBitmap(w, h);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) bmp.SetPixel(x, y, color(x, y));
        using var data = bmp.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }
}
