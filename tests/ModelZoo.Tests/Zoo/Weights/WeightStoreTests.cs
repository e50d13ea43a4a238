using System.Security.Cryptography;
using ModelZoo.Weights.Store;

namespace ModelZoo.Tests.Zoo.Weights;

/// <summary>Cache, manifest, offline mode and downloads against a loopback HTTP server (127.0.0.1 only).</summary>
public sealed class WeightStoreTests : IDisposable
{
    private readonly LoopbackHttpServer _server = new();
    private readonly string _root = Path.Combine(Path.GetTempPath(), "zoo-store-" + Guid.NewGuid().ToString("N"));
    private readonly HttpClient _http = new(new SocketsHttpHandler { UseProxy = false });
    private static readonly DownloadOptions Fast = new(TimeSpan.FromSeconds(5), TimeSpan.FromMilliseconds(300), 3, TimeSpan.FromMilliseconds(10));

    private static byte[] Body(int size, int seed)
    {
        var b = new byte[size];
        new Random(seed).NextBytes(b);
        return b;
    }

    private static string Sha(byte[] b) => Convert.ToHexStringLower(SHA256.HashData(b));

    private WeightStore Store(bool offline = false) => new(_root, offline, _http, Fast);

    private static ModelEntry Entry(string name, params WeightTag[] tags) =>
        new(name, "test", ModelTask.Vision, new object(), _ => throw new NotSupportedException(), 0, [3, 8, 8], tags);

    private static WeightTag Tag(string url, string? sha = null, string? prefix = null, string? file = null) =>
        new("v1", [WeightSource.FromUrl(url)], WeightFormat.Pth, "test", null, 10, Sha256: sha, HashPrefix: prefix, FileName: file);

    [Fact]
    public void Downloads_verifies_records_in_manifest_and_then_serves_from_cache()
    {
        var body = Body(300_000, 1);
        _server.Serve("/w/model-v1.pth", body);
        var entry = Entry("m", Tag(_server.Url("/w/model-v1.pth"), sha: Sha(body)));
        var reports = new List<DownloadProgress>();
        var path = Store().Resolve(entry, entry.Weights[0], new SyncProgress(reports.Add));
        Assert.Equal(body, File.ReadAllBytes(path));
        Assert.Equal(Path.Combine(_root, "weights", "m", "model-v1.pth"), path);
        Assert.False(File.Exists(path + ".part"));
        var last = reports[^1];
        Assert.Equal(body.Length, last.BytesDone);
        Assert.Equal(body.Length, last.TotalBytes);
        var recorded = Assert.Single(Store().List());
        Assert.Equal("weights/m/model-v1.pth", recorded.Path);
        Assert.Equal(Sha(body), recorded.Sha256);
        Assert.Equal(body.Length, recorded.Size);
        Assert.Equal(_server.Url("/w/model-v1.pth"), recorded.Source);
        Assert.Equal(("m", "v1"), (recorded.Model, recorded.Tag));

        // Second time: from the cache, even offline, without a request.
        Assert.Equal(path, Store(offline: true).Resolve(entry, entry.Weights[0]));
        Assert.Equal(1, _server.Hits("/w/model-v1.pth"));
        Assert.All(Store().Verify(), c => Assert.Equal(CacheFileState.Ok, c.State));
    }

    [Fact]
    public void Truncated_download_is_resumed_with_a_range_request()
    {
        var body = Body(200_000, 2);
        _server.Serve("/t.pth", body, LoopbackHttpServer.Mode.TruncateFirst);
        var entry = Entry("m", Tag(_server.Url("/t.pth"), sha: Sha(body)));
        var path = Store().Resolve(entry, entry.Weights[0]);
        Assert.Equal(body, File.ReadAllBytes(path));
        var requests = _server.Requests.Where(r => r.Path == "/t.pth").ToList();
        Assert.Equal(2, requests.Count);
        Assert.Null(requests[0].Range);
        Assert.Equal($"bytes={body.Length / 2}-", requests[1].Range);
    }

    [Fact]
    public void Partial_file_from_an_earlier_run_is_resumed_and_a_server_ignoring_range_restarts_cleanly()
    {
        var body = Body(100_000, 3);
        _server.Serve("/r.pth", body);
        _server.Serve("/i.pth", body, LoopbackHttpServer.Mode.IgnoreRange);
        foreach (var (route, name) in new[] { ("/r.pth", "r"), ("/i.pth", "i") })
        {
            var entry = Entry(name, Tag(_server.Url(route), sha: Sha(body)));
            var dest = Store().CachePath(entry, entry.Weights[0]);
            Directory.CreateDirectory(Path.GetDirectoryName(dest)!);
            File.WriteAllBytes(dest + ".part", body.AsSpan(0, 40_000).ToArray());
            Assert.Equal(body, File.ReadAllBytes(Store().Resolve(entry, entry.Weights[0])));
        }
        Assert.Equal("bytes=40000-", _server.Requests.Single(r => r.Path == "/r.pth").Range);
        Assert.Equal("bytes=40000-", _server.Requests.Single(r => r.Path == "/i.pth").Range); // asked, got 200, started over
    }

    [Fact]
    public void Wrong_hash_deletes_the_file_and_names_both_digests()
    {
        var body = Body(50_000, 4);
        _server.Serve("/bad.pth", body);
        var wrong = new string('0', 64);
        var entry = Entry("m", Tag(_server.Url("/bad.pth"), sha: wrong));
        var e = Assert.Throws<WeightIntegrityException>(() => Store().Resolve(entry, entry.Weights[0]));
        Assert.Contains(wrong, e.Message);
        Assert.Contains(Sha(body), e.Message);
        var dest = Store().CachePath(entry, entry.Weights[0]);
        Assert.False(File.Exists(dest));
        Assert.False(File.Exists(dest + ".part"));
        Assert.Empty(Store().List());
    }

    [Fact]
    public void Torchvision_hash_prefix_is_checked()
    {
        var body = Body(10_000, 5);
        var prefix = Sha(body)[..8];
        _server.Serve($"/resnet-{prefix}.pth", body);
        _server.Serve("/resnet-deadbeef.pth", body);
        var ok = Entry("m", Tag(_server.Url($"/resnet-{prefix}.pth"), prefix: prefix));
        Assert.Equal(body, File.ReadAllBytes(Store().Resolve(ok, ok.Weights[0])));
        // A URL given directly: the prefix in its file name is checked too.
        Assert.Equal(body, File.ReadAllBytes(Store().ResolveUrl(_server.Url($"/resnet-{prefix}.pth"))));
        var e = Assert.Throws<WeightIntegrityException>(() => Store().ResolveUrl(_server.Url("/resnet-deadbeef.pth")));
        Assert.Equal("deadbeef", e.Expected);
    }

    [Fact]
    public void Not_found_fails_at_once_without_retries()
    {
        var entry = Entry("m", Tag(_server.Url("/missing.pth")));
        var e = Assert.Throws<WeightNotAvailableException>(() => Store().Resolve(entry, entry.Weights[0]));
        Assert.Contains("404", e.Message);
        Assert.Contains(_server.Url("/missing.pth"), e.Message);
        Assert.Equal(1, _server.Hits("/missing.pth"));
    }

    [Fact]
    public void Server_error_is_retried()
    {
        var body = Body(20_000, 6);
        _server.Serve("/flaky.pth", body, LoopbackHttpServer.Mode.FailFirst);
        var entry = Entry("m", Tag(_server.Url("/flaky.pth"), sha: Sha(body)));
        Assert.Equal(body, File.ReadAllBytes(Store().Resolve(entry, entry.Weights[0])));
        Assert.Equal(2, _server.Hits("/flaky.pth"));
    }

    [Fact]
    public void Stalled_server_times_out_after_bounded_retries_and_keeps_the_partial_file()
    {
        _server.Serve("/slow.pth", Body(100_000, 7), LoopbackHttpServer.Mode.Stall);
        var entry = Entry("m", Tag(_server.Url("/slow.pth")));
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var e = Assert.Throws<WeightNotAvailableException>(() => Store().Resolve(entry, entry.Weights[0]));
        Assert.Contains("sent nothing for 0.3 s", e.Message);
        Assert.Equal(Fast.MaxAttempts, _server.Hits("/slow.pth"));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20));
        Assert.True(File.Exists(Store().CachePath(entry, entry.Weights[0]) + ".part"));
    }

    [Fact]
    public void Offline_mode_names_the_missing_file_where_to_put_it_and_where_to_get_it()
    {
        var url = _server.Url("/never.pth");
        var entry = Entry("m", Tag(url));
        var e = Assert.Throws<WeightNotAvailableException>(() => Store(offline: true).Resolve(entry, entry.Weights[0]));
        var dest = Store().CachePath(entry, entry.Weights[0]);
        Assert.Contains("m:v1", e.Message);
        Assert.Contains(dest, e.Message);
        Assert.Contains(url, e.Message);
        Assert.Contains("ZOO_OFFLINE", e.Message);
        Assert.Contains("zoo fetch m:v1", e.Message);
        Assert.Equal(0, _server.Hits("/never.pth"));
    }

    [Fact]
    public void A_file_placed_in_the_cache_by_hand_is_verified_and_recorded()
    {
        var body = Body(5_000, 8);
        var entry = Entry("m", Tag(_server.Url("/x.pth"), sha: Sha(body)));
        var dest = Store().CachePath(entry, entry.Weights[0]);
        Directory.CreateDirectory(Path.GetDirectoryName(dest)!);
        File.WriteAllBytes(dest, body);
        Assert.Equal(dest, Store(offline: true).Resolve(entry, entry.Weights[0]));
        Assert.Equal("placed in the cache by hand", Assert.Single(Store().List()).Source);

        File.WriteAllBytes(dest, Body(5_000, 9)); // now corrupt it: size unchanged, digest differs
        Assert.Equal(CacheFileState.Corrupt, Assert.Single(Store().Verify()).State);
    }

    [Fact]
    public void Verify_reports_missing_and_untracked_files_and_clear_empties_the_cache()
    {
        var body = Body(1_000, 10);
        _server.Serve("/a.pth", body);
        var entry = Entry("a", Tag(_server.Url("/a.pth")));
        var path = Store().Resolve(entry, entry.Weights[0]);
        File.WriteAllBytes(Path.Combine(_root, "weights", "a", "stray.bin"), [1, 2, 3]);
        var checks = Store().Verify();
        Assert.Contains(checks, c => c.State == CacheFileState.Ok && c.Path == "weights/a/a.pth");
        Assert.Contains(checks, c => c.State == CacheFileState.Untracked && c.Path == "weights/a/stray.bin");
        File.Delete(path);
        Assert.Contains(Store().Verify(), c => c.State == CacheFileState.Missing);
        Assert.Equal(1, Store().Clear());
        Assert.Empty(Store().List());
        Assert.Empty(Store().Verify());
    }

    public void Dispose()
    {
        _server.Dispose();
        _http.Dispose();
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }

    /// <summary>IProgress that reports synchronously (Progress&lt;T&gt; posts to the thread pool).</summary>
    private sealed class SyncProgress(Action<DownloadProgress> report) : IProgress<DownloadProgress>
    {
        public void Report(DownloadProgress value) => report(value);
    }
}
