using System.Text.Json;
using System.Text.Json.Serialization;

namespace ModelZoo.Weights.Store;

/// <summary>One file in the weight cache, as the manifest records it.</summary>
/// <param name="Path">Path relative to the cache root, with '/' separators.</param>
/// <param name="Model">Catalog model name, or null for files fetched by URL alone.</param>
/// <param name="Tag">Weight tag, or null.</param>
/// <param name="Source">Where the file came from (URL, Hub file, package resource).</param>
/// <param name="Size">Size in bytes.</param>
/// <param name="Sha256">Full SHA-256 (hex) of the file.</param>
/// <param name="Added">When the file was added (UTC).</param>
public sealed record CacheEntry(string Path, string? Model, string? Tag, string Source, long Size, string Sha256, DateTimeOffset Added);

/// <summary>State of a cache file after <see cref="WeightStore.Verify"/>.</summary>
public enum CacheFileState
{
    /// <summary>Present, size and SHA-256 as recorded.</summary>
    Ok,
    /// <summary>Recorded but missing.</summary>
    Missing,
    /// <summary>Present with another size or digest than recorded.</summary>
    Corrupt,
    /// <summary>In the cache folder but not in the manifest.</summary>
    Untracked,
}

/// <summary>Result of verifying one cache file.</summary>
/// <param name="Path">Path relative to the cache root.</param>
/// <param name="State">What was found.</param>
/// <param name="Detail">Sizes/digests when they differ.</param>
public sealed record CacheCheck(string Path, CacheFileState State, string? Detail = null);

/// <summary>
/// The cache manifest, <c>manifest.json</c> at the cache root. Writes go to a temporary file and are renamed over
/// the old one, so a crash never leaves a half-written manifest; a process-wide lock serialises updates.
/// </summary>
internal sealed class CacheManifest
{
    private static readonly Lock Gate = new();
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    internal CacheManifest(string root) => Root = root;

    internal string Root { get; }

    internal string FilePath => System.IO.Path.Combine(Root, "manifest.json");

    private sealed record Document(int Version, List<CacheEntry> Files);

    internal List<CacheEntry> Read()
    {
        lock (Gate)
        {
            if (!File.Exists(FilePath)) return [];
            try
            {
                return JsonSerializer.Deserialize<Document>(File.ReadAllText(FilePath), Json)?.Files ?? [];
            }
            catch (JsonException e)
            {
                throw new InvalidDataException($"The cache manifest '{FilePath}' is not valid JSON ({e.Message}). Delete it; 'zoo cache verify' lists the files it finds.", e);
            }
        }
    }

    internal void Update(Action<List<CacheEntry>> change)
    {
        lock (Gate)
        {
            var files = Read();
            change(files);
            Directory.CreateDirectory(Root);
            var tmp = FilePath + "." + Environment.ProcessId + ".tmp";
            File.WriteAllText(tmp, JsonSerializer.Serialize(new Document(1, files.OrderBy(f => f.Path, StringComparer.Ordinal).ToList()), Json));
            File.Move(tmp, FilePath, overwrite: true);
        }
    }

    internal void Put(CacheEntry entry) => Update(files =>
    {
        files.RemoveAll(f => f.Path == entry.Path);
        files.Add(entry);
    });
}
