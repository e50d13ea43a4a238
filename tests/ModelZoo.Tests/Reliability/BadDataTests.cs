using ModelZoo.Data;
using ModelZoo.FineTune;
using ModelZoo.Tasks.Recipes;
using ModelZoo.Tests.FineTune;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Reliability;

/// <summary>
/// Bad data met during a run, each handled as docs/reliability.md says: corrupt images are skipped, counted and
/// reported; empty texts are skipped and listed; a label outside the class set stops with the file and row or item;
/// non-finite losses are covered by the learner's guard (FineTune/LearnerTests: NonFiniteLossesAreSkippedAndCounted,
/// TooManyNonFiniteStepsInARowStopWithAClearMessage).
/// </summary>
public sealed class BadDataTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("zoo-baddata-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    /// <summary>Writes <paramref name="lines"/> to a file named <paramref name="name"/> in this test's folder; returns its path.</summary>
    private string WriteLines(string name, string[] lines)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllLines(path, lines);
        return path;
    }

    [Fact]
    public void EmptyTextsInACsvAreSkippedAndListedWithTheirRows()
    {
        var csv = WriteLines("t.csv", ["text,label", "good one,a", "\"\",b", "   ,a", "another,b"]);
        var ds = TextDataset.FromCsv(csv);
        Assert.Equal(2, ds.Count);
        Assert.Equal(["a", "b"], ds.ClassNames);
        Assert.Equal(2, ds.EmptyTextsSkipped.Count);
        Assert.Contains("row 2 (line 3)", ds.EmptyTextsSkipped[0]);
        Assert.Contains("row 3 (line 4)", ds.EmptyTextsSkipped[1]);
        // Kept rows keep their own row numbers.
        Assert.Contains("row 4", ds.Describe(1));
        Assert.Equal("another", ds[1].Text);
    }

    [Fact]
    public void EmptyTextsInJsonlAreSkippedAndListedWithTheirLines()
    {
        var path = WriteLines("t.jsonl", ["{\"text\":\"hi\",\"label\":\"x\"}", "", "{\"text\":\"\",\"label\":\"y\"}", "{\"text\":null,\"label\":\"y\"}", "{\"text\":\"yo\",\"label\":\"y\"}"]);
        var ds = TextDataset.FromJsonl(path);
        Assert.Equal(2, ds.Count);
        Assert.Equal(2, ds.EmptyTextsSkipped.Count);
        Assert.EndsWith("line 3", ds.EmptyTextsSkipped[0]);
        Assert.EndsWith("line 4", ds.EmptyTextsSkipped[1]);
        Assert.EndsWith("line 5", ds.Describe(1));
    }

    [Fact]
    public void OnlyEmptyTextsStopWithAMessageAboutTheColumn()
    {
        var csv = WriteLines("t.csv", ["text,label", "\"\",a", "\"\",b"]);
        var e = Assert.Throws<InvalidDataException>(() => TextDataset.FromCsv(csv));
        Assert.Contains(csv, e.Message);
        Assert.Contains("all 2 texts are empty", e.Message);
    }

    [Fact]
    public void AnEmptyLabelStopsNamingTheRow()
    {
        var csv = WriteLines("t.csv", ["text,label", "one,a", "two,", "three,b"]);
        var e = Assert.Throws<InvalidDataException>(() => TextDataset.FromCsv(csv));
        Assert.Contains($"{csv} row 2 (line 3) has an empty label", e.Message);
    }

    [Fact]
    public void AnIntegerLabelOutsideTheNamedClassesStopsNamingTheRow()
    {
        // Before: the names from the file's metadata were dropped silently and the class set grew to "0".."5".
        var e = Assert.Throws<InvalidDataException>(() => Labels.Index(["0", "1", "5", "2"], "train.parquet", ["cat", "dog", "bird"]));
        Assert.Contains("train.parquet row 3 has label 5", e.Message);
        Assert.Contains("3 classes", e.Message);
        var (labels, names) = Labels.Index(["0", "2", "1"], "train.parquet", ["cat", "dog", "bird"]);
        Assert.Equal([0, 2, 1], labels);
        Assert.Equal(["cat", "dog", "bird"], names);
    }

    [Fact]
    public void AnIdxLabelOutsideTheClassesStopsNamingTheItem()
    {
        var e = Assert.Throws<InvalidDataException>(() =>
            new IdxDataset(new byte[3 * 4], [1, 12, 3], 2, 2, ModelZoo.Data.FashionMnist.ClassNames, "train-labels-idx1-ubyte.gz"));
        Assert.Contains("train-labels-idx1-ubyte.gz: item 1 has label 12", e.Message);
        Assert.Contains("10 classes", e.Message);
    }

    [Fact]
    public void TheLearnerStopsOnALabelOutsideTheModelsClassesBeforeTraining()
    {
        var data = MemoryData.Synthetic(32, 16, 4);
        data.Labels[21] = 7; // batch 1 of the sequential order, item 21
        manual_seed(1);
        var model = new TinyCnn(4);
        using var learner = new Learner(model, _ => data.Sequential(16), null, options: new LearnerOptions { Quiet = true, Device = CPU });
        var e = Assert.Throws<LabelOutOfRangeException>(() => learner.Fit(1, Schedule.Constant(1e-2)));
        Assert.Equal(21, e.ItemIndex);
        Assert.Equal(7, e.Label);
        Assert.Equal(4, e.NumClasses);
        Assert.Contains("Item 21 (epoch 1, batch 1) has label 7", e.Message);
        Assert.Equal(1, learner.GlobalStep); // batch 0 trained, batch 1 did not
        // Evaluation refuses it too, instead of a libtorch error that names no item.
        var ev = Assert.Throws<LabelOutOfRangeException>(() => learner.Evaluate(data.Sequential(16)));
        Assert.Equal(21, ev.ItemIndex);
    }

    [Fact]
    public void CorruptImagesMidRunAreSkippedCountedAndReported()
    {
        var root = Path.Combine(_dir, "images");
        var rng = new Random(3);
        foreach (var cls in new[] { "cat", "dog" })
        {
            Directory.CreateDirectory(Path.Combine(root, cls));
            for (int i = 0; i < 8; i++)
            {
                using var bmp = new SkiaSharp.SKBitmap(20, 20);
                for (int y = 0; y < 20; y++)
                    for (int x = 0; x < 20; x++) bmp.SetPixel(x, y, new SkiaSharp.SKColor((byte)rng.Next(256), (byte)(cls == "cat" ? 30 : 220), 90));
                using var png = bmp.Encode(SkiaSharp.SKEncodedImageFormat.Png, 100);
                File.WriteAllBytes(Path.Combine(root, cls, $"{i}.png"), png.ToArray());
            }
        }
        var garbage = Path.Combine(root, "cat", "garbage.png");
        File.WriteAllBytes(garbage, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
        var truncated = Path.Combine(root, "dog", "truncated.png");
        File.WriteAllBytes(truncated, File.ReadAllBytes(Path.Combine(root, "dog", "0.png"))[..40]);
        var recipe = RecipeLoader.Parse("""
            name: corrupt
            model: {name: shufflenet_v2_x0_5, weights: none}
            data: {source: image-folder, image_size: 32, val_split: 0.25, batch_size: 4, workers: 1}
            train: {mode: fine-tune, epochs: 1, lr: 0.001}
            device: cpu
            """, "corrupt.yaml", [$"data.path={root}", $"output={Path.Combine(_dir, "runs")}"]);
        var log = new StringWriter();
        var result = RecipeRunner.Run(recipe, log);
        var text = log.ToString();
        Assert.Contains("2 item(s) could not be read and were skipped", text);
        var report = File.ReadAllText(Path.Combine(result.RunFolder, "report.md"));
        Assert.Contains("skipped items", report);
        Assert.Contains(garbage, report);
        Assert.Contains(truncated, report);
        Assert.True(File.Exists(result.LastCheckpoint));
    }
}
