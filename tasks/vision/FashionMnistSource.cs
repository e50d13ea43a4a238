using System.Diagnostics;
using ModelZoo.Data;
using ModelZoo.Weights.Store;

namespace ModelZoo.Tasks.Vision;

/// <summary>
/// Finds Fashion-MNIST on this machine or gets it: Debian's <c>dataset-fashion-mnist</c> package folder, then the zoo
/// cache, then — on Debian as root — <c>apt-get install dataset-fashion-mnist</c>, then the official download (progress
/// reported). Each step says what it does; when none works the error says exactly how to get the files.
/// </summary>
public static class FashionMnistSource
{
    /// <summary>The four IDX files of the dataset.</summary>
    public static readonly string[] Files =
        ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"];

    /// <summary>Folder in the zoo cache where downloaded files are kept.</summary>
    public static string CacheFolder => Path.Combine(ZooPaths.CacheRoot, "datasets", "fashion-mnist");

    /// <summary>Returns a folder holding the four files, getting them if needed.</summary>
    /// <param name="folder">A folder the user named, or null to search.</param>
    /// <param name="log">Where to say what is happening.</param>
    /// <param name="progress">Download progress.</param>
    public static string Ensure(string? folder, TextWriter log, IProgress<DownloadProgress>? progress = null)
    {
        if (folder is not null)
        {
            if (HasAll(folder)) return folder;
            throw new FileNotFoundException($"{folder} does not hold the Fashion-MNIST files ({string.Join(", ", Files)}). {HowToGet()}");
        }
        foreach (var candidate in new[] { FashionMnist.DebianPath, CacheFolder })
            if (HasAll(candidate)) return candidate;

        var errors = new List<string>();
        // Debian's package first: it needs no host but the distribution's mirror, which a machine set up with apt reaches.
        if (CanUseApt() && TryApt(log, errors) && HasAll(FashionMnist.DebianPath)) return FashionMnist.DebianPath;
        if (!ZooPaths.Offline)
        {
            try
            {
                log.WriteLine($"Fashion-MNIST not found; trying to download it from {FashionMnist.DownloadUrl} into {CacheFolder} …");
                var store = new WeightStore();
                Directory.CreateDirectory(CacheFolder);
                foreach (var file in Files)
                {
                    var path = store.ResolveUrl(FashionMnist.DownloadUrl + file, progress: progress);
                    File.Copy(path, Path.Combine(CacheFolder, file), overwrite: true);
                }
                return CacheFolder;
            }
            catch (Exception e) when (e is WeightDownloadException or WeightNotAvailableException or HttpRequestException or IOException or TaskCanceledException)
            {
                errors.Add($"download failed: {e.Message.Split('\n')[0]}");
            }
        }
        if (!CanUseApt()) errors.Add("apt-get is not available to this user");
        throw new FileNotFoundException($"Fashion-MNIST is not on this machine ({string.Join("; ", errors)}). {HowToGet()}");
    }

    /// <summary>The ways to get the dataset, for error messages and docs.</summary>
    public static string HowToGet() =>
        $"Get it with 'sudo apt-get install dataset-fashion-mnist' (Debian/Ubuntu; files land in {FashionMnist.DebianPath}), " +
        $"or download {string.Join(", ", Files)} from {FashionMnist.DownloadUrl} into {CacheFolder}, or pass the folder with --data.";

    private static bool HasAll(string folder) => Files.All(f => File.Exists(Path.Combine(folder, f)));

    private static bool CanUseApt() => OperatingSystem.IsLinux() && File.Exists("/usr/bin/apt-get") && Environment.UserName == "root";

    private static bool TryApt(TextWriter log, List<string> errors)
    {
        log.WriteLine("Installing Debian's dataset-fashion-mnist package with apt-get …");
        foreach (var args in new[] { "update -qq", "install -y -q dataset-fashion-mnist" })
        {
            var psi = new ProcessStartInfo("/usr/bin/apt-get", args) { RedirectStandardOutput = false, RedirectStandardError = false };
            psi.Environment["DEBIAN_FRONTEND"] = "noninteractive";
            using var p = Process.Start(psi)!;
            p.WaitForExit();
            if (p.ExitCode != 0 && args.StartsWith("install", StringComparison.Ordinal))
            {
                errors.Add($"apt-get {args} exited with {p.ExitCode}");
                return false;
            }
        }
        return true;
    }
}
