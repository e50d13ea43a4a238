using System.IO.Compression;
using System.Text.Json;
using ModelZoo.Tasks;
using ModelZoo.Tasks.Recipes;
using ModelZoo.Tests.Parity;
using TorchSharp;

namespace ModelZoo.Tests.Tasks;

/// <summary>Tiny, hermetic data for the recipe smoke tests: an IDX set shaped like Fashion-MNIST and a text CSV.</summary>
public sealed class TinyRecipeData : IDisposable
{
    public TinyRecipeData()
    {
        Root = Directory.CreateTempSubdirectory("zoo-recipes-").FullName;
        Idx = Path.Combine(Root, "fmnist");
        Directory.CreateDirectory(Idx);
        WriteIdx("train", 80, 1);
        WriteIdx("t10k", 20, 2);
        TextCsv = Path.Combine(Root, "texts.csv");
        var rng = new Random(5);
        var lines = new List<string> { "text,label" };
        string[] ham = ["meeting notes for the project", "lunch tomorrow with the team", "the build passed on main", "family photos from the trip"];
        string[] spam = ["win a free prize now", "cheap pills click here", "you are selected for cash", "limited offer buy now"];
        for (int i = 0; i < 40; i++)
        {
            lines.Add($"\"{ham[rng.Next(4)]} {i}\",ham");
            lines.Add($"\"{spam[rng.Next(4)]} {i}\",spam");
        }
        File.WriteAllLines(TextCsv, lines);
        Image = Path.Combine(Root, "shirt.png");
        WritePng(Image);
    }

    public string Root { get; }

    public string Idx { get; }

    public string TextCsv { get; }

    public string Image { get; }

    public string Output => Path.Combine(Root, "runs");

    /// <summary>Items with a class-dependent pattern (a bright band whose row depends on the label) plus noise.</summary>
    private void WriteIdx(string prefix, int n, int seed)
    {
        var rng = new Random(seed);
        var pixels = new byte[n * 28 * 28];
        var labels = new byte[n];
        for (int i = 0; i < n; i++)
        {
            int label = i % 10;
            labels[i] = (byte)label;
            for (int y = 0; y < 28; y++)
                for (int x = 0; x < 28; x++)
                    pixels[i * 784 + y * 28 + x] = (byte)((y / 3 == label % 9 ? 200 : 20) + rng.Next(40));
        }
        Write(Path.Combine(Idx, $"{prefix}-images-idx3-ubyte.gz"), [0, 0, 8, 3], [n, 28, 28], pixels);
        Write(Path.Combine(Idx, $"{prefix}-labels-idx1-ubyte.gz"), [0, 0, 8, 1], [n], labels);
    }

    private static void Write(string path, byte[] magic, int[] dims, byte[] data)
    {
        using var file = File.Create(path);
        using var gz = new GZipStream(file, CompressionLevel.Fastest);
        gz.Write(magic);
        foreach (var d in dims) gz.Write([(byte)(d >> 24), (byte)(d >> 16), (byte)(d >> 8), (byte)d]);
        gz.Write(data);
    }

    private static void WritePng(string path)
    {
        using var bmp = new SkiaSharp.SKBitmap(40, 30);
        for (int y = 0; y < 30; y++)
            for (int x = 0; x < 40; x++) bmp.SetPixel(x, y, new SkiaSharp.SKColor((byte)(x * 6), (byte)(y * 8), 90));
        using var data = bmp.Encode(SkiaSharp.SKEncodedImageFormat.Png, 100);
        File.WriteAllBytes(path, data.ToArray());
    }

    public void Dispose()
    {
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { }
    }
}

/// <summary>Runs the fine-tune recipe once at tiny size; the round-trip tests share its checkpoint.</summary>
public sealed class FineTunedRun : IDisposable
{
    public FineTunedRun()
    {
        Data = new TinyRecipeData();
        Result = RecipeRunnerTests.RunShipped("resnet18-cntk-fine-tune.yaml", Data);
    }

    public TinyRecipeData Data { get; }

    public RecipeResult Result { get; }

    public void Dispose() => Data.Dispose();
}

public sealed class RecipeRunnerTests(FineTunedRun run) : IClassFixture<FineTunedRun>
{
    public static string RecipePath(string file) => Path.Combine(PythonTorch.RepoRoot, "recipes", file);

    /// <summary>Every shipped recipe at tiny size: 64 items, 32 px (or 32 tokens), one epoch, batches of 16.</summary>
    internal static RecipeResult RunShipped(string file, TinyRecipeData data)
    {
        var sets = new List<string> { "data.limit=64", "train.epochs=1", "data.batch_size=16", "data.workers=1", $"output={data.Output}" };
        var recipe = RecipeLoader.Load(RecipePath(file));
        if (recipe.Data.Source == "fashion-mnist") sets.AddRange([$"data.path={data.Idx}", "data.image_size=32"]);
        else sets.AddRange(["data.source=text-csv", $"data.path={data.TextCsv}", "data.max_length=32"]);
        if (recipe.Train.Mode == "fine-tune-fastai") sets.Add("train.freeze_epochs=1");
        recipe = RecipeLoader.Load(RecipePath(file), sets);
        return RecipeRunner.Run(recipe, TextWriter.Null);
    }

    private static void AssertRunFolder(RecipeResult result, bool hasTest)
    {
        foreach (var f in new[] { "recipe.yaml", "metrics.jsonl", "metrics.csv", "best.ckpt", "last.ckpt", "report.md", "report.html", "confusion-validation.png", "loss.png" }
                     .Concat(hasTest ? ["confusion-test.png"] : []))
            Assert.True(File.Exists(Path.Combine(result.RunFolder, f)),
                $"{f} missing in {result.RunFolder}: {string.Join(", ", Directory.GetFiles(result.RunFolder).Select(Path.GetFileName))}");
        Assert.InRange(result.ValidationAccuracy, 0, 1);
        var report = File.ReadAllText(Path.Combine(result.RunFolder, "report.md"));
        Assert.Contains("## Validation", report);
        Assert.Equal(hasTest, result.TestAccuracy is not null);
        if (hasTest) Assert.Contains("## Test", report);
        var resolved = RecipeLoader.Load(Path.Combine(result.RunFolder, "recipe.yaml"));
        Assert.Equal(64, resolved.Data.Limit);
        var spec = TrainedModelSpec.FromJson(ModelZoo.FineTune.Checkpoint.ReadInfo(result.BestCheckpoint).Config, result.BestCheckpoint);
        Assert.Contains("limit: 64", spec.Recipe);
    }

    [Theory]
    [InlineData("resnet18-cntk-linear-probe.yaml")]
    [InlineData("resnet18-cntk-fastai.yaml")]
    [InlineData("fashion-mnist-long.yaml")]
    [InlineData("fashion-mnist-best.yaml")]
    [InlineData("minilm-text-classification.yaml")]
    public void ShippedRecipeRunsEndToEndAtTinySize(string file)
    {
        using var data = new TinyRecipeData();
        var result = RunShipped(file, data);
        AssertRunFolder(result, hasTest: !file.StartsWith("minilm", StringComparison.Ordinal));
        using var trained = new DisposableModel(TrainedModel.Load(result.BestCheckpoint));
        Assert.Equal(file.StartsWith("minilm", StringComparison.Ordinal) ? 2 : 10, trained.Model.Spec.ClassNames.Count);
        var report = File.ReadAllText(Path.Combine(result.RunFolder, "report.md"));
        if (file == "fashion-mnist-best.yaml")
        {
            // EMA, flip TTA, shifts and erasing all ran: the report names the weights chosen and the evaluation.
            Assert.Contains("chosen on validation", report);
            Assert.Matches(@"test-time augmentation: class probabilities averaged over the plain view and hflip \(2 passes per batch\); chosen on validation|eval\.tta hflip was rejected on validation", report);
        }
        if (file != "resnet18-cntk-linear-probe.yaml" && !file.StartsWith("minilm", StringComparison.Ordinal))
        {
            // Validated epochs carry their wall time since the start: the time-to-accuracy plot and the table column.
            Assert.True(File.Exists(Path.Combine(result.RunFolder, "time-to-accuracy.png")), $"no time-to-accuracy.png in {result.RunFolder}");
            Assert.Contains("| since start |", report);
        }
        if (file.StartsWith("minilm", StringComparison.Ordinal))
        {
            var p = CheckpointTools.Predict(result.BestCheckpoint, ["win a free prize now"], topK: 2, inputsAreTexts: true);
            Assert.Equal(2, p[0].Top.Count);
            Assert.Contains(p[0].Top[0].Label, new[] { "ham", "spam" });
            Assert.Contains("top loss", File.ReadAllText(Path.Combine(result.RunFolder, "report.md")));
        }
    }

    [Fact]
    public void FlipTtaIsDroppedWhenValidationSaysItHurts()
    {
        // Two classes that are mirror images of each other (a bright left half or a bright right half): averaging a view
        // with its flip mixes the two classes' probabilities, so eval.tta=[hflip] must lose on validation and the test set
        // must then be evaluated plainly.
        var root = Path.Combine(run.Data.Root, "mirror");
        foreach (var (split, n) in new[] { ("train", 24), ("test", 8) })
            foreach (var side in new[] { "left", "right" })
            {
                var dir = Directory.CreateDirectory(Path.Combine(root, split, side)).FullName;
                var rng = new Random(split.Length * 7 + side.Length);
                for (int i = 0; i < n; i++)
                {
                    using var bmp = new SkiaSharp.SKBitmap(32, 32);
                    for (int y = 0; y < 32; y++)
                        for (int x = 0; x < 32; x++)
                        {
                            bool bright = side == "left" ? x < 16 : x >= 16;
                            var v = (byte)((bright ? 200 : 30) + rng.Next(40));
                            bmp.SetPixel(x, y, new SkiaSharp.SKColor(v, v, v));
                        }
                    using var png = bmp.Encode(SkiaSharp.SKEncodedImageFormat.Png, 100);
                    File.WriteAllBytes(Path.Combine(dir, $"{i}.png"), png.ToArray());
                }
            }
        var recipe = RecipeLoader.Load(RecipePath("resnet18-cntk-linear-probe.yaml"),
        [
            "data.source=image-folder", $"data.path={Path.Combine(root, "train")}", $"data.test_path={Path.Combine(root, "test")}",
            "data.image_size=32", "data.val_split=0.5", "data.batch_size=16", "data.workers=1", "train.epochs=20", "train.lr=0.01",
            "eval.tta=[hflip]", $"output={run.Data.Output}",
        ]);
        var log = new StringWriter();
        var result = RecipeRunner.Run(recipe, log);
        var report = File.ReadAllText(Path.Combine(result.RunFolder, "report.md"));
        Assert.True(result.ValidationAccuracy >= 0.9, log.ToString());
        Assert.Contains("eval.tta hflip was rejected on validation", report);
        Assert.Contains("so the test set is evaluated without it", log.ToString());
        Assert.DoesNotContain("with test-time augmentation", log.ToString());
        Assert.True(result.TestAccuracy >= 0.9, log.ToString());
    }

    [Fact]
    public void FineTuneRecipeWritesTheRunFolder() => AssertRunFolder(run.Result, hasTest: true);

    [Fact]
    public void EvalWritesAReportNextToTheCheckpoint()
    {
        var result = CheckpointTools.Evaluate(run.Result.BestCheckpoint, run.Data.Idx, null, null, TextWriter.Null);
        Assert.Equal(20, result.Count);
        Assert.InRange(result.Accuracy, 0, 1);
        Assert.True(File.Exists(Path.Combine(result.ReportFolder, "report.md")));
        Assert.StartsWith(run.Result.RunFolder, result.ReportFolder);
        // The runner's own test evaluation of best.ckpt saw the same 20 images.
        Assert.Equal(run.Result.TestAccuracy!.Value, result.Accuracy, 6);
    }

    [Fact]
    public void PredictReturnsValidClassesInProbabilityOrder()
    {
        var p = CheckpointTools.Predict(run.Result.BestCheckpoint, [run.Data.Image], topK: 3);
        var top = Assert.Single(p).Top;
        Assert.Equal(3, top.Count);
        Assert.All(top, c => Assert.Equal(ModelZoo.Data.FashionMnist.ClassNames[c.Index], c.Label));
        Assert.True(top[0].Probability >= top[1].Probability && top[1].Probability >= top[2].Probability);
        Assert.InRange(top.Sum(c => c.Probability), 0, 1.0001);
    }

    [Fact]
    public void ExportedSafetensorsLoadStrictlyIntoTheSpecArchitecture()
    {
        var file = CheckpointTools.Export(run.Result.BestCheckpoint, "safetensors", Path.Combine(run.Data.Root, "export", "model.safetensors"));
        var trained = TrainedModel.Load(run.Result.BestCheckpoint);
        using var fresh = trained.Spec.BuildArchitecture();
        using var state = ModelZoo.Weights.StateDictFile.Read(file);
        var report = fresh.LoadStateDict(state, strict: true);
        Assert.Empty(report.Missing);
        Assert.Empty(report.Unexpected);
        using var x = torch.randn(2, 3, 32, 32);
        fresh.eval();
        using var a = fresh.call(x);
        using var b = trained.Model.call(x);
        Assert.True(a.allclose(b, rtol: 1e-5, atol: 1e-5));
        Assert.True(File.Exists(file + ".json"));
    }

    [Fact]
    public void ExportedPthLoadsStrictlyInPyTorch()
    {
        var file = CheckpointTools.Export(run.Result.BestCheckpoint, "pth", Path.Combine(run.Data.Root, "export", "model.pth"));
        // Surgery here only removed the stem max-pool (no parameters), so torchvision's ResNet class (with the CNTK model's block counts) takes the state dict as is.
        var output = PythonTorch.Run($$"""
            import torch
            from torchvision.models.resnet import ResNet, BasicBlock
            sd = torch.load({{PythonTorch.Quote(file)}})
            blocks = [1 + max(int(k.split('.')[1]) for k in sd if k.startswith(f'layer{i}.')) for i in range(1, 5)]
            m = ResNet(BasicBlock, blocks, num_classes=10)
            r = m.load_state_dict(sd, strict=True)
            print("ok", len(r.missing_keys), len(r.unexpected_keys))
            """);
        Assert.Contains("ok 0 0", output);
    }

    [Fact]
    public void ExportRejectsUnknownFormats() =>
        Assert.Contains("safetensors or pth", Assert.Throws<ArgumentException>(() => CheckpointTools.Export(run.Result.BestCheckpoint, "onnx")).Message);

    [Fact]
    public void TextSourceWithVisionModelFailsWithTheFix()
    {
        var recipe = RecipeLoader.Load(RecipePath("resnet18-cntk-fine-tune.yaml"), ["data.source=text-csv", $"data.path={run.Data.TextCsv}", $"output={run.Data.Output}"]);
        var e = Assert.Throws<RecipeException>(() => RecipeRunner.Run(recipe, TextWriter.Null));
        Assert.Contains("vision model", e.Message);
    }

    [Fact]
    public void MissingDataPathFailsWithTheFix()
    {
        var recipe = RecipeLoader.Load(RecipePath("resnet18-cntk-fine-tune.yaml"), ["data.source=image-folder", $"output={run.Data.Output}"]);
        Assert.Contains("--set data.path=", Assert.Throws<RecipeException>(() => RecipeRunner.Run(recipe, TextWriter.Null)).Message);
    }

    [Fact]
    public void CliVerbsWorkAndBadInputNamesTheFix()
    {
        var ckpt = run.Result.BestCheckpoint;
        var (code, output, stdout) = Zoo($"predict \"{ckpt}\" \"{run.Data.Image}\" --topk 2 --json");
        Assert.True(code == 0, output);
        using (var doc = JsonDocument.Parse(stdout))   // the JSON alone on stdout; anything else goes to stderr
            Assert.Equal(2, doc.RootElement[0].GetProperty("top").GetArrayLength());

        (code, output, _) = Zoo($"predict \"{ckpt}\" /nonexistent/cat.jpg");
        Assert.Equal(1, code);
        Assert.Contains("/nonexistent/cat.jpg", output);

        (code, output, _) = Zoo($"train \"{RecipePath("resnet18-cntk-fine-tune.yaml")}\" --set train.mode=bogus");
        Assert.Equal(1, code);
        Assert.Contains("'train.mode' is 'bogus'; allowed values: linear-probe, fine-tune, fine-tune-fastai", output);

        (code, output, _) = Zoo("train missing-recipe.yaml");
        Assert.Equal(1, code);
        Assert.Contains("missing-recipe.yaml", output);

        (code, output, _) = Zoo($"export \"{ckpt}\" --format onnx");
        Assert.Equal(1, code);
        Assert.Contains("use safetensors or pth", output);
    }

    private static (int Code, string Output, string Stdout) Zoo(string args) => Cli.ZooCli.Run(args, offline: true);

    private sealed class DisposableModel(TrainedModel model) : IDisposable
    {
        public TrainedModel Model => model;

        public void Dispose() => model.Model.Dispose();
    }
}
