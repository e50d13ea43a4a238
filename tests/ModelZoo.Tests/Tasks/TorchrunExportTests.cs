using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using ModelZoo.Tasks;
using ModelZoo.Tasks.Recipes;
using ModelZoo.Tests.Parity;
using ModelZoo.Weights;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Tasks;

/// <summary>
/// The way to PyTorch's torchrun and back, run for real: a recipe run is exported, the rebuilt model's logits are
/// compared with the zoo's, two DDP processes (gloo, this CPU, Debian's PyTorch) train it, and the result is imported
/// and compared again in C#.
/// </summary>
[Trait("Category", "Distributed")]
public sealed class TorchrunExportTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "zoo-torchrun-" + Guid.NewGuid().ToString("N")[..10]);

    private readonly ITestOutputHelper _output;
    private readonly Stopwatch _clock = Stopwatch.StartNew();

    public TorchrunExportTests(ITestOutputHelper output)
    {
        _output = output;
        Directory.CreateDirectory(_dir);
    }

    private void Lap(string what) => _output.WriteLine($"{_clock.Elapsed.TotalSeconds,6:F1}s  {what}");

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    /// <summary>
    /// The whole way, with every step a fixed amount of work (no time budget), so it gives the same verdict on any CPU:
    /// a 1-epoch zoo run (3 steps of 16), its export, 4 epochs of two torchrun processes, the import. The validation
    /// split (17 items) and the test set (67 items) are odd, so a sampler that pads the last shard would report 18 and
    /// 68 items.
    /// </summary>
    [Fact]
    public void RecipeRunRoundTripsThroughTwoProcessTorchrun()
    {
        // 34 blue + 33 red: train.py's stratified 25 % split holds out round(8.5) = 9 + round(8.25) = 8 = 17 items.
        const int blue = 34, red = 33, validItems = 17, allItems = blue + red, torchrunEpochs = 4;
        var images = WriteImages(blue, red);
        // Surgery of every kind that replays: a replaced stem module, a block removed from a sequence, a module
        // inserted into a sequence and one inserted after a module of a non-sequence parent (a residual block).
        var recipe = RecipeLoader.Parse($$"""
            name: torchrun-roundtrip
            seed: 42
            model:
              name: resnet18-cntk
              surgery:
                - replace: maxpool
                  with: identity
                - remove: layer4.2
                - insert_after: layer1.1
                  name: act
                  with: gelu
                - insert_after: layer4.0.relu
                  name: drop
                  with: dropout(0.1)
            data: {source: image-folder, path: {{images}}, test_path: {{images}}, image_size: 32, val_split: 0.25, batch_size: 16, augment: [hflip]}
            train: {mode: fine-tune, epochs: 1, lr: 0.001, schedule: constant, label_smoothing: 0.1}
            output: {{Path.Combine(_dir, "runs")}}
            """);
        var run = RecipeRunner.Run(recipe, TextWriter.Null).RunFolder;
        Lap("zoo run (1 epoch)");
        var outFolder = Path.Combine(_dir, "torchrun");
        var export = TorchrunExport.Export(run, outFolder, TextWriter.Null);
        Lap("export");
        Assert.Contains("torchrun --nproc_per_node=2", File.ReadAllText(Path.Combine(outFolder, "README.md")));

        // (a) before training: PyTorch's rebuild (torchvision + replayed surgery + weights.pth, strict) = the zoo model.
        var probe = Path.Combine(_dir, "probe.pth");
        var zoo = ZooLogits(run, probe);
        var torchBefore = TorchLogits(outFolder, probe, weights: null);
        AssertClose(zoo, torchBefore, "exported model before training");
        Lap("parity before");
        var before = CheckpointTools.Evaluate(run, images, "image-folder", Path.Combine(_dir, "eval-before"), TextWriter.Null);
        Assert.Equal(allItems, before.Count);
        Lap("C# cross-entropy before");

        // (b) two processes train it for a fixed number of epochs.
        // --redirects 2 --tee 2: torchrun of PyTorch 1.13 under Python 3.11 (Debian 12) fails on its default "0" (docs/distributed.md).
        RunPython(outFolder, 600, "-m", "torch.distributed.run", "--nproc_per_node=2", "--redirects", "2", "--tee", "2",
            "--master_addr=127.0.0.1", $"--master_port={FreePort()}",
            Path.Combine(outFolder, "train.py"), "--epochs", torchrunEpochs.ToString(CultureInfo.InvariantCulture));
        Lap($"torchrun (2 processes, {torchrunEpochs} epochs)");
        var lines = File.ReadAllLines(Path.Combine(outFolder, "metrics.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        var epochs = lines.Where(e => e.GetProperty("phase").GetString() != "test").ToList();
        _output.WriteLine("2-process epochs (train loss, valid loss, valid items): " + string.Join(" | ", epochs.Select(e =>
            $"{F4(e.GetProperty("train_loss"))}, {F4(e.GetProperty("valid_loss"))}, {e.GetProperty("valid_items").GetInt32()}")));
        Assert.Equal(torchrunEpochs, epochs.Count);
        Assert.All(lines, e => Assert.Equal(2, e.GetProperty("processes").GetInt32()));
        // Every validation and test item counted once over the two ranks (a padded shard would count one twice).
        Assert.All(epochs, e => Assert.Equal(validItems, e.GetProperty("valid_items").GetInt32()));
        var test = Assert.Single(lines, e => e.GetProperty("phase").GetString() == "test");
        Assert.Equal(allItems, test.GetProperty("test_items").GetInt32());
        Assert.Equal("test", lines[^1].GetProperty("phase").GetString());

        // (c) the imported checkpoint gives PyTorch's logits in C#, and they are not the untrained ones.
        var trained = Path.Combine(outFolder, "checkpoints", "last.pth");
        var imported = TorchrunExport.Import(trained, run);
        var zooAfter = ZooLogits(imported, probe);
        var torchAfter = TorchLogits(outFolder, probe, trained);
        AssertClose(zooAfter, torchAfter, "imported checkpoint after training");
        Lap("import + parity after");
        Assert.True(MaxAbsDiff(zoo, zooAfter) > 1e-3, "training did not change the logits, so the import check proves nothing");
        Assert.Equal(File.ReadAllText(Path.Combine(outFolder, "spec.json")), Ckpt.ReadInfo(imported).Config);
        Assert.NotEmpty(export.Command);

        // (b) the training worked: in C#, the imported model's eval-mode cross-entropy over all 67 images is less than half
        // the exported model's (a margin that float summation order on another CPU cannot cross).
        var after = CheckpointTools.Evaluate(imported, images, "image-folder", Path.Combine(_dir, "eval-after"), TextWriter.Null);
        Assert.Equal(allItems, after.Count);
        Lap("C# cross-entropy after");
        _output.WriteLine($"C# eval-mode cross-entropy on all {allItems} images: {before.Loss:F4} before torchrun → {after.Loss:F4} after (accuracy {before.Accuracy:P1} → {after.Accuracy:P1})");
        Assert.True(after.Loss < before.Loss / 2, $"two-process training did not halve the cross-entropy on the training images: {before.Loss:F4} → {after.Loss:F4}");
    }

    private static string F4(JsonElement e) => e.GetDouble().ToString("F4", CultureInfo.InvariantCulture);

    // Families other than ResNet have no offline pretrained weights here, and random-init weights make their logits
    // nearly independent of the input, so these checks show that train.py builds the torchvision model by name, replays
    // the edits and loads weights.pth strictly (every key and shape) and that the logits agree; that the zoo's forward
    // equals torchvision's for the same weights is what the catalog's parity tests (tests/…/Parity) show.

    [Fact]
    public void OtherTorchvisionFamilyRebuildsWithTheSameLogits()
    {
        // Built by name from torchvision.models (not the ResNet builder), with head dropout and a module inserted after
        // one that holds parameters (a forward hook in torchvision's ShuffleNetV2).
        var outFolder = ExportFamily("shufflenet_v2_x0_5", 32, ", head_dropout: 0.2, surgery: [{insert_after: conv5, name: act, with: silu}]");
        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(outFolder, "config.json")));
        Assert.Equal("shufflenet_v2_x0_5", config.RootElement.GetProperty("model").GetProperty("builder").GetProperty("name").GetString());
    }

    /// <summary>Which other families rebuild in torchvision (Heavy: up to minutes each on 2 cores).</summary>
    [Theory]
    [Trait("Category", "Heavy")]
    [InlineData("mobilenet_v2", 64)]
    [InlineData("mobilenet_v3_small", 64)]
    [InlineData("efficientnet_b0", 64)]
    [InlineData("convnext_tiny", 64)]
    [InlineData("regnet_y_400mf", 64)]
    [InlineData("densenet121", 64)]
    [InlineData("squeezenet1_1", 64)]
    [InlineData("mnasnet0_5", 64)]
    [InlineData("swin_t", 64)]
    [InlineData("vit_b_16", 224)]
    public void TorchvisionFamilyRebuildsWithTheSameLogits(string model, int size) => ExportFamily(model, size, "");

    private string ExportFamily(string model, int size, string extra)
    {
        var images = WriteImages(2, 2);
        var recipePath = Path.Combine(_dir, model + ".yaml");
        File.WriteAllText(recipePath, $"name: {model}-export\nmodel: {{name: {model}, weights: none{extra}}}\n" +
                                      $"data: {{source: image-folder, path: {images}, image_size: {size}}}\ntrain: {{mode: fine-tune-fastai, epochs: 1, lr: 0.002}}\n");
        var outFolder = Path.Combine(_dir, model);
        TorchrunExport.Export(recipePath, outFolder, TextWriter.Null);
        var output = RunPython(outFolder, 600, Path.Combine(outFolder, "train.py"), "--check");
        _output.WriteLine(output);
        Assert.Contains(": OK", output);
        return outFolder;
    }

    [Fact]
    public void WhatDoesNotReplayIsRefusedWithThePath()
    {
        var images = WriteImages(2, 2);
        string Refusal(string model, string extra)
        {
            var path = Path.Combine(_dir, Guid.NewGuid().ToString("N")[..6] + ".yaml");
            File.WriteAllText(path, $"name: refused\nmodel: {{name: {model}, weights: none{extra}}}\ndata: {{source: image-folder, path: {images}, image_size: 32}}\n");
            return Assert.Throws<RecipeException>(() => TorchrunExport.Export(path, Path.Combine(_dir, "refused"), TextWriter.Null)).Message;
        }
        Assert.Contains("'maxpool'", Refusal("shufflenet_v2_x0_5", ", surgery: [{replace: maxpool, with: identity}]"));
        Assert.Contains("text model", Refusal("distilbert-base-uncased", ""));
        var mixup = Path.Combine(_dir, "mixup.yaml");
        File.WriteAllText(mixup, $"name: m\nmodel: {{name: resnet18-cntk, weights: none}}\ndata: {{source: image-folder, path: {images}, image_size: 32, augment: [mixup]}}\n");
        Assert.Contains("mixup", Assert.Throws<RecipeException>(() => TorchrunExport.Export(mixup, Path.Combine(_dir, "refused"), TextWriter.Null)).Message);
    }

    [Fact]
    public void ImportRefusesWeightsOfAnotherArchitectureNamingTheKeys()
    {
        var images = WriteImages(2, 2);
        var recipe = RecipeLoader.Parse($"name: tiny\nmodel: {{name: shufflenet_v2_x0_5, weights: none}}\ndata: {{source: image-folder, path: {images}, image_size: 32, val_split: 0}}\n" +
                                        $"train: {{mode: linear-probe, epochs: 1, lr: 0.01}}\noutput: {Path.Combine(_dir, "runs")}\n");
        var run = RecipeRunner.Run(recipe, TextWriter.Null).RunFolder;
        var other = Path.Combine(_dir, "other.pth");
        StateDictFile.Write(other, new Dictionary<string, Tensor> { ["fc.weight"] = zeros(2, 1024), ["unrelated.weight"] = zeros(3) });
        var e = Assert.Throws<InvalidDataException>(() => TorchrunExport.Import(other, run));
        Assert.Contains("unrelated.weight", e.Message);
        Assert.Contains("missing", e.Message);
    }

    // ----- helpers -----

    private static class Ckpt
    {
        public static ModelZoo.FineTune.CheckpointInfo ReadInfo(string path) => ModelZoo.FineTune.Checkpoint.ReadInfo(path);
    }

    /// <summary>Two colour classes of noisy 32x32 images (an easy problem, so a few steps lower the loss).</summary>
    private string WriteImages(int blue, int red)
    {
        var root = Path.Combine(_dir, "images");
        if (Directory.Exists(root)) return root;
        var rng = new Random(7);
        foreach (var (cls, r, b, count) in new[] { ("blue", 40, 200, blue), ("red", 200, 40, red) })
        {
            Directory.CreateDirectory(Path.Combine(root, cls));
            for (int i = 0; i < count; i++)
            {
                using var bmp = new SkiaSharp.SKBitmap(32, 32);
                for (int y = 0; y < 32; y++)
                    for (int x = 0; x < 32; x++)
                        bmp.SetPixel(x, y, new SkiaSharp.SKColor(Noisy(r), Noisy(60), Noisy(b)));
                using var png = bmp.Encode(SkiaSharp.SKEncodedImageFormat.Png, 100);
                File.WriteAllBytes(Path.Combine(root, cls, $"{i}.png"), png.ToArray());
            }
        }
        return root;

        byte Noisy(int v) => (byte)Math.Clamp(v + rng.Next(-60, 61), 0, 255);
    }

    /// <summary>The zoo's logits for a fixed input batch (written to <paramref name="probe"/> as <c>input</c> the first time).</summary>
    private static float[] ZooLogits(string checkpoint, string probe)
    {
        var trained = TrainedModel.Load(checkpoint);
        using var model = trained.Model;
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        Tensor x;
        if (File.Exists(probe))
        {
            using var saved = StateDictFile.Read(probe);
            x = saved["input"].clone();
        }
        else
        {
            var rng = new Random(11);
            var values = new float[3 * 3 * 32 * 32];
            for (int i = 0; i < values.Length; i++) values[i] = (float)(rng.NextDouble() * 4 - 2);
            x = tensor(values, [3, 3, 32, 32]);
            StateDictFile.Write(probe, new Dictionary<string, Tensor> { ["input"] = x });
        }
        return model.call(x).data<float>().ToArray();
    }

    private string TorchLogits(string exportFolder, string probe, string? weights)
    {
        var output = Path.Combine(_dir, $"logits-{Guid.NewGuid():N}.pth");
        var args = new List<string> { Path.Combine(exportFolder, "train.py"), "--probe", probe, output };
        if (weights is not null) args.AddRange(["--weights", weights]);
        RunPython(exportFolder, 300, [.. args]);
        return output;
    }

    private static void AssertClose(float[] zoo, string torchFile, string what)
    {
        using var saved = StateDictFile.Read(torchFile);
        AssertClose(zoo, saved["logits"].data<float>().ToArray(), what);
    }

    private static int FreePort()
    {
        var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        int port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    private static void AssertClose(float[] a, float[] b, string what)
    {
        Assert.Equal(a.Length, b.Length);
        double scale = Math.Max(1, a.Max(v => Math.Abs(v)));
        double diff = MaxAbsDiff(a, b);
        Assert.True(diff <= 1e-4 * scale, $"{what}: max logit difference {diff:G3} > {1e-4 * scale:G3}");
    }

    private static double MaxAbsDiff(float[] a, float[] b) => a.Zip(b, (x, y) => (double)Math.Abs(x - y)).Max();

    /// <summary>Runs Debian's Python (PyTorch 1.13) in <paramref name="workDir"/> with one OpenMP thread per process.</summary>
    private static string RunPython(string workDir, int timeoutSeconds, params string[] args) =>
        PythonTorch.RunArgs(args, workDir, threads: 1, timeoutSeconds);
}
