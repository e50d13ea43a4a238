using ModelZoo.Tasks.Recipes;
using ModelZoo.Tasks.Vision;
using ModelZoo.Tests.Data;
using SkiaSharp;

namespace ModelZoo.Tests.Tasks;

/// <summary>A tiny synthetic image dataset: 3 classes of coloured shapes (red discs, green squares, blue triangles) at 32 px on noisy backgrounds.</summary>
public sealed class ShapesData : IDisposable
{
    public static readonly string[] Classes = ["disc", "square", "triangle"];

    public ShapesData(int perClass = 16)
    {
        Root = Directory.CreateTempSubdirectory("zoo-shapes-").FullName;
        Folder = Path.Combine(Root, "shapes");
        var rng = new Random(7);
        for (int c = 0; c < Classes.Length; c++)
        {
            Directory.CreateDirectory(Path.Combine(Folder, Classes[c]));
            for (int i = 0; i < perClass; i++)
            {
                var file = Path.Combine(Folder, Classes[c], $"{i:D3}.png");
                File.WriteAllBytes(file, Draw(c, rng));
                Items.Add((file, Classes[c]));
            }
        }
    }

    public string Root { get; }

    /// <summary>Folder with one sub-folder per class.</summary>
    public string Folder { get; }

    public List<(string File, string Label)> Items { get; } = [];

    public string Output => Path.Combine(Root, "runs");

    /// <summary>One 32×32 PNG of class <paramref name="c"/>: the shape's place, size and shade vary; the background is noise.</summary>
    public static byte[] Draw(int c, Random rng)
    {
        using var bmp = new SKBitmap(32, 32);
        using (var canvas = new SKCanvas(bmp))
        {
            for (int y = 0; y < 32; y++)
                for (int x = 0; x < 32; x++)
                {
                    byte v = (byte)(90 + rng.Next(60));
                    bmp.SetPixel(x, y, new SKColor(v, v, v));
                }
            byte shade = (byte)(180 + rng.Next(75));
            using var paint = new SKPaint { IsAntialias = true, Color = c switch { 0 => new SKColor(shade, 30, 30), 1 => new SKColor(30, shade, 30), _ => new SKColor(30, 30, shade) } };
            float r = 7 + rng.Next(5), cx = 16 + rng.Next(-4, 5), cy = 16 + rng.Next(-4, 5);
            switch (c)
            {
                case 0: canvas.DrawCircle(cx, cy, r, paint); break;
                case 1: canvas.DrawRect(cx - r, cy - r, 2 * r, 2 * r, paint); break;
                default:
                    using (var path = new SKPath())
                    {
                        path.MoveTo(cx, cy - r);
                        path.LineTo(cx + r, cy + r);
                        path.LineTo(cx - r, cy + r);
                        path.Close();
                        canvas.DrawPath(path, paint);
                    }
                    break;
            }
        }
        using var data = bmp.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    public void Dispose()
    {
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { }
    }
}

/// <summary>One quickstart run on the shape folder, shared by the tests that inspect its output.</summary>
public sealed class ShapesQuickstartRun : IDisposable
{
    public ShapesQuickstartRun()
    {
        Data = new ShapesData();
        Log = new StringWriter();
        Result = ImagesQuickstart.Run(new ImagesQuickstartOptions { Path = Data.Folder, TimeBudgetSeconds = 60, Output = Data.Output, Workers = 1 }, Log);
    }

    public ShapesData Data { get; }

    public StringWriter Log { get; }

    public ImagesQuickstartResult Result { get; }

    public void Dispose() => Data.Dispose();
}

public sealed class ImagesQuickstartTests(ShapesQuickstartRun run) : IClassFixture<ShapesQuickstartRun>
{
    [Fact]
    public void Folder_to_a_classifier_with_report_and_a_checkpoint_that_predicts()
    {
        var r = run.Result;
        var log = run.Log.ToString();
        foreach (var what in new[] { "dataset:", "split:", "backbone:", "resolution:", "batch size:", "training:" }) Assert.Contains(what, log);
        Assert.Contains("stratified", log);
        Assert.Equal("validation", r.EvaluatedOn);
        Assert.True(r.Accuracy >= 0.75, $"validation accuracy {r.Accuracy:P1} on coloured shapes\n{log}");
        foreach (var f in new[] { "best.ckpt", "recipe.yaml", "report.md", "report.html" }) Assert.True(File.Exists(Path.Combine(r.RunFolder, f)), f);
        var pngs = Directory.GetFiles(r.RunFolder, "*.png", SearchOption.AllDirectories).Select(Path.GetFileName).ToList();
        Assert.True(pngs.Count >= 3, string.Join(", ", pngs));
        var report = File.ReadAllText(Path.Combine(r.RunFolder, "report.md"));
        Assert.Contains("resolution", report);
        Assert.Contains("training", report);
        // The baseline on the same validation split, in the log, the report and result.json.
        Assert.NotNull(r.Baseline);
        Assert.Equal(r.Accuracy, r.Baseline!.Accuracy);
        Assert.Equal(9, r.Baseline.Baseline.HeldOutCount); // stratified 20 % of 3 × 16
        Assert.Contains("baseline: logistic regression", log);
        Assert.Contains("## Baseline", report);
        Assert.Contains(r.Baseline.Verdict, report);
        using (var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(r.RunFolder, "result.json"))))
        {
            Assert.Equal(r.Accuracy, json.RootElement.GetProperty("accuracy").GetDouble(), 6);
            Assert.Equal(r.Baseline.Beat, json.RootElement.GetProperty("baseline").GetProperty("beat").GetBoolean());
        }

        // The checkpoint is a TrainedModelSpec checkpoint: zoo predict works on it.
        var (file, label) = run.Data.Items[^1];
        var p = CheckpointTools.Predict(r.Checkpoint, [file], topK: 3);
        Assert.Equal(3, p[0].Top.Count);
        Assert.Equal(ShapesData.Classes.Order(), p[0].Top.Select(t => t.Label).Order());
        // A recipe file that `zoo train` reruns.
        var recipe = RecipeLoader.Load(Path.Combine(r.RunFolder, "recipe.yaml"));
        Assert.Equal("image-folder", recipe.Data.Source);
        _ = label;
    }

    [Theory]
    [InlineData(256, 128, 100_000, 128)] // large data: the resolution's cap
    [InlineData(256, 128, 1_437, 32)]    // sk-digits' 1,437 training images: 44 steps per epoch, not 11
    [InlineData(256, 64, 3_000, 64)]
    [InlineData(256, 128, 300, 16)]      // tiny data: never below 16, even if that leaves fewer than 32 steps
    [InlineData(12, 128, 50_000, 16)]    // little memory: still 16
    [InlineData(40, 128, 50_000, 32)]    // memory allows 40: the power of two below
    public void Batch_gives_at_least_32_steps_per_epoch_and_at_least_16_images(int fromMemory, int cap, int nTrain, int expected) =>
        Assert.Equal(expected, ImagesQuickstart.BatchSize(fromMemory, cap, nTrain));

    [Theory]
    [InlineData(10, 0, 20)]        // no time to spare: about 200 steps, as before
    [InlineData(40, 60, 25)]       // room for more: ~1,000 steps
    [InlineData(10, 1000, 50)]     // at most 50 epochs
    [InlineData(40, 3, 5)]         // half of 3 s fits 2 epochs of ~0.55 s: the 5-epoch floor stays
    [InlineData(500, 1000, 5)]     // large sets: 5 epochs are already 2,500 steps
    public void Linear_probe_spends_spare_budget_on_more_head_epochs(int steps, double secondsLeft, int expected)
    {
        Assert.Equal(expected, ImagesQuickstart.ProbeEpochs(steps, secondsLeft, weightBytes: 46_800_000, out var why));
        Assert.Contains(expected > Math.Clamp((int)Math.Ceiling(200.0 / steps), 5, 20) ? "fit half of" : "about 200 steps", why);
    }

    [Theory]
    [InlineData(null, new[] { 600, 300, 12 }, "balanced")]  // 50:1
    [InlineData(null, new[] { 400, 100, 0 }, "balanced")]   // 4:1 among the classes present
    [InlineData(null, new[] { 400, 101, 200 }, "none")]     // under 4:1
    [InlineData("none", new[] { 600, 12 }, "none")]
    [InlineData("balanced", new[] { 50, 50 }, "balanced")]
    public void Loss_is_class_balanced_from_4_to_1_unless_told(string? requested, int[] counts, string expected)
    {
        Assert.Equal(expected, ImagesQuickstart.ClassWeighting(requested, counts, out var why));
        Assert.Contains(expected == "balanced" ? "class-balanced" : "without class weights", why.Replace("no class weights", "without class weights"));
    }

    [Fact]
    public void Csv_with_named_columns()
    {
        using var d = new ShapesData(perClass: 6);
        var csv = Path.Combine(d.Root, "labels.csv");
        File.WriteAllLines(csv, d.Items.Select(i => $"{Path.GetRelativePath(d.Root, i.File)},{i.Label}").Prepend("file,kind"));
        var result = ImagesQuickstart.Run(new ImagesQuickstartOptions
        {
            Path = csv, ImageColumn = "file", LabelColumn = "kind", ImageSize = 32, Mode = "linear-probe", TimeBudgetSeconds = 60, Output = d.Output, Workers = 1,
        }, TextWriter.Null);
        Assert.True(File.Exists(result.Checkpoint));
        Assert.Equal(ShapesData.Classes, ModelZoo.Tasks.TrainedModel.Load(result.Checkpoint).Spec.ClassNames);
    }

    [Fact]
    public async Task Parquet_of_image_bytes()
    {
        using var d = new ShapesData(perClass: 6);
        var file = Path.Combine(d.Root, "shapes.parquet");
        var rows = d.Items.Select(i => (File.ReadAllBytes(i.File), (long)Array.IndexOf(ShapesData.Classes, i.Label))).ToArray();
        await DatasetTests.WriteHfParquet(file, rows, 8, ShapesData.Classes);
        var log = new StringWriter();
        var result = ImagesQuickstart.Run(new ImagesQuickstartOptions
        {
            Path = file, ImageSize = 32, Mode = "linear-probe", TimeBudgetSeconds = 60, Output = d.Output, Workers = 1,
        }, log);
        Assert.Contains("parquet-images", log.ToString());
        Assert.True(File.Exists(Path.Combine(result.RunFolder, "report.md")));
    }

    [Fact]
    public void Uses_the_datasets_own_train_and_val_folders()
    {
        using var d = new ShapesData(perClass: 4);
        var split = Path.Combine(d.Root, "split");
        foreach (var (f, label) in d.Items)
        {
            var part = int.Parse(Path.GetFileNameWithoutExtension(f), System.Globalization.CultureInfo.InvariantCulture) < 3 ? "train" : "val";
            Directory.CreateDirectory(Path.Combine(split, part, label));
            File.Copy(f, Path.Combine(split, part, label, Path.GetFileName(f)));
        }
        var layout = ImagesQuickstart.Inspect(new ImagesQuickstartOptions { Path = split });
        Assert.Equal(Path.Combine(split, "train"), layout.Train);
        Assert.Equal(Path.Combine(split, "val"), layout.Val);
        Assert.Null(layout.Test);
        Assert.Equal([3, 3, 3], layout.ClassCounts);
        Assert.Equal(3, layout.ValCount);
        Assert.Equal(32, layout.MedianSide);
    }

    [Fact]
    public void Bad_inputs_name_the_path_and_the_fix()
    {
        using var d = new TempDir();
        RecipeException Fails(ImagesQuickstartOptions o) => Assert.Throws<RecipeException>(() => ImagesQuickstart.Inspect(o));

        var missing = Path.Combine(d.Path, "nope");
        Assert.Contains(missing, Fails(new() { Path = missing }).Message);

        var empty = Path.Combine(d.Path, "empty");
        Directory.CreateDirectory(empty);
        var e = Fails(new() { Path = empty }).Message;
        Assert.Contains(empty, e);
        Assert.Contains("sub-folder", e);

        var one = Path.Combine(d.Path, "one");
        Directory.CreateDirectory(Path.Combine(one, "cats"));
        File.WriteAllBytes(Path.Combine(one, "cats", "a.png"), ShapesData.Draw(0, new Random(1)));
        e = Fails(new() { Path = one }).Message;
        Assert.Contains(one, e);
        Assert.Contains("'cats'", e);
        Assert.Contains("at least two", e);

        var csv = Path.Combine(one, "labels.csv");
        File.WriteAllText(csv, "path,category\ncats/a.png,cat\n");
        e = Fails(new() { Path = csv }).Message;
        Assert.Contains("labels.csv", e);
        Assert.Contains("'label'", e);
        Assert.Contains("--label-col", e);
        Assert.Contains("category", e);

        e = Fails(new() { Path = csv, LabelColumn = "category" }).Message;
        Assert.Contains("at least two", e);
        Assert.Contains("--label-col", e);

        var txt = Path.Combine(d.Path, "notes.md");
        File.WriteAllText(txt, "hi");
        Assert.Contains(txt, Fails(new() { Path = txt }).Message);
    }
}
