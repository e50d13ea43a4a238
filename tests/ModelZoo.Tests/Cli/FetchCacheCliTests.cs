using System.Security.Cryptography;
using ModelZoo.Tests.Zoo.Weights;

namespace ModelZoo.Tests.Cli;

/// <summary>`zoo fetch` and `zoo cache` run as a separate process with ZOO_HOME in a temporary folder.</summary>
public sealed class FetchCacheCliTests : IDisposable
{
    private readonly string _home = Path.Combine(Path.GetTempPath(), "zoo-cli-" + Guid.NewGuid().ToString("N"));

    private (int Code, string Output) Zoo(string args, bool offline = false)
    {
        var (code, output, _) = ZooCli.Run(args, offline, new Dictionary<string, string?> { ["ZOO_HOME"] = _home, ["NO_PROXY"] = "127.0.0.1" });
        return (code, output);
    }

    [Fact]
    public void Fetch_url_then_cache_list_verify_and_clear()
    {
        using var server = new LoopbackHttpServer();
        var body = new byte[400_000];
        new Random(3).NextBytes(body);
        var prefix = Convert.ToHexStringLower(SHA256.HashData(body))[..8];
        server.Serve($"/m/net-{prefix}.pth", body);

        var (code, output) = Zoo($"fetch {server.Url($"/m/net-{prefix}.pth")}");
        Assert.True(code == 0, output);
        Assert.Contains("ok", output);
        var file = Path.Combine(_home, "weights", "_url", $"net-{prefix}.pth");
        Assert.Equal(body, File.ReadAllBytes(file));

        (code, output) = Zoo("cache list --json");
        Assert.Equal(0, code);
        Assert.Contains($"weights/_url/net-{prefix}.pth", output);
        Assert.Contains(Convert.ToHexStringLower(SHA256.HashData(body)), output);

        Assert.Equal(0, Zoo("cache verify").Code);
        File.WriteAllBytes(file, new byte[10]);
        (code, output) = Zoo("cache verify");
        Assert.Equal(1, code);
        Assert.Contains("corrupt", output);

        (code, output) = Zoo("cache clear");
        Assert.Equal(0, code);
        Assert.Contains("Deleted 1 file(s)", output);
        Assert.False(File.Exists(file));
    }

    [Fact]
    public void Fetch_offline_locates_the_package_and_explains_missing_downloads()
    {
        var (code, output) = Zoo("fetch resnet18-cntk", offline: true);
        Assert.True(code == 0, output);
        Assert.Contains("ResNet18.onnx", output);
        (code, output) = Zoo("fetch resnet18", offline: true);
        Assert.Equal(1, code);
        Assert.Contains("https://download.pytorch.org/models/resnet18-f37072fd.pth", output);
        Assert.Contains("ZOO_OFFLINE", output);
    }

    public void Dispose()
    {
        if (Directory.Exists(_home)) Directory.Delete(_home, recursive: true);
    }
}
