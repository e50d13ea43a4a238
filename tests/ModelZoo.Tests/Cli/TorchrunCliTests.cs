using System.Diagnostics;

namespace ModelZoo.Tests.Cli;

/// <summary><c>zoo export … --to torchrun</c> and <c>zoo import</c> run as a separate process: what they write and how they fail.</summary>
public sealed class TorchrunCliTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "zoo-cli-torchrun-" + Guid.NewGuid().ToString("N")[..10]);

    public TorchrunCliTests() => Directory.CreateDirectory(_dir);

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    private (int Code, string Output) Zoo(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = _dir };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "zoo.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["COLUMNS"] = "400";
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        Assert.True(p.WaitForExit(120_000), "zoo did not finish in 2 minutes");
        return (p.ExitCode, stdout.Result + stderr.Result);
    }

    private string Recipe()
    {
        foreach (var cls in new[] { "a", "b" })
        {
            Directory.CreateDirectory(Path.Combine(_dir, "images", cls));
            for (int i = 0; i < 2; i++)
            {
                using var bmp = new SkiaSharp.SKBitmap(16, 16);
                bmp.Erase(cls == "a" ? SkiaSharp.SKColors.Red : SkiaSharp.SKColors.Blue);
                using var png = bmp.Encode(SkiaSharp.SKEncodedImageFormat.Png, 100);
                File.WriteAllBytes(Path.Combine(_dir, "images", cls, $"{i}.png"), png.ToArray());
            }
        }
        var path = Path.Combine(_dir, "r.yaml");
        File.WriteAllText(path, "name: r\nmodel: {name: shufflenet_v2_x0_5, weights: none}\ndata: {source: image-folder, path: images, image_size: 32}\n");
        return path;
    }

    [Fact]
    public void ExportToTorchrunWritesTheFolderAndTheCommand()
    {
        var (code, output) = Zoo("export", Recipe(), "--to", "torchrun", "out");
        Assert.True(code == 0, output);
        Assert.Contains("torchrun --nproc_per_node=2", output);
        foreach (var f in new[] { "weights.pth", "config.json", "train.py", "check.pth", "spec.json", "README.md" })
            Assert.True(File.Exists(Path.Combine(_dir, "out", f)), $"{f} missing: {output}");
        Assert.Contains(Path.Combine(_dir, "images"), File.ReadAllText(Path.Combine(_dir, "out", "config.json")));

        // The export folder describes the model itself: its (untrained) weights.pth imports against it and predicts.
        (code, output) = Zoo("import", Path.Combine("out", "weights.pth"), "--like", "out");
        Assert.True(code == 0, output);
        Assert.True(File.Exists(Path.Combine(_dir, "out", "weights.ckpt")), output);
        (code, output) = Zoo("predict", Path.Combine("out", "weights.ckpt"), Path.Combine("images", "a", "0.png"));
        Assert.True(code == 0, output);
        Assert.Contains("0.png", output);
    }

    [Fact]
    public void BadTargetsAndMissingArgumentsFailWithTheFix()
    {
        var recipe = Recipe();
        var (code, output) = Zoo("export", recipe, "--to", "onnx", "out");
        Assert.Equal(1, code);
        Assert.Contains("--to 'onnx' is not known", output);
        (code, output) = Zoo("export", recipe, "--to", "torchrun");
        Assert.Equal(1, code);
        Assert.Contains("needs the folder", output);
        (code, output) = Zoo("import", Path.Combine(_dir, "missing.pth"));
        Assert.NotEqual(0, code);
        Assert.Contains("--like", output);
        (code, output) = Zoo("import", Path.Combine(_dir, "missing.pth"), "--like", Path.Combine(_dir, "no-run"));
        Assert.Equal(1, code);
        Assert.Contains("no-run", output);
    }
}
