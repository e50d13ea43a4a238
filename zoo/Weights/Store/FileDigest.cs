using System.Security.Cryptography;

namespace ModelZoo.Weights.Store;

/// <summary>SHA-256 of files and the two ways the catalog states it: a full digest, or torchvision's file-name prefix.</summary>
internal static class FileDigest
{
    internal static string Sha256(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, FileOptions.SequentialScan);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    /// <summary>The digest that must match: the full SHA-256 when known, else the prefix; null when neither is known.</summary>
    internal static string? Expected(string? sha256, string? hashPrefix) =>
        !string.IsNullOrWhiteSpace(sha256) ? sha256.Trim().ToLowerInvariant()
        : !string.IsNullOrWhiteSpace(hashPrefix) ? hashPrefix.Trim().ToLowerInvariant() : null;

    /// <summary>True when <paramref name="actual"/> (full hex digest) equals <paramref name="expected"/> or starts with it (prefix).</summary>
    internal static bool Matches(string actual, string? expected) =>
        expected is null || (expected.Length == 64 ? actual.Equals(expected, StringComparison.OrdinalIgnoreCase) : actual.StartsWith(expected, StringComparison.OrdinalIgnoreCase));

    /// <summary>torchvision's convention: <c>name-&lt;first hex digits of sha256&gt;.ext</c>; returns the prefix or null.</summary>
    internal static string? PrefixFromFileName(string fileName)
    {
        var stem = Path.GetFileNameWithoutExtension(fileName);
        int dash = stem.LastIndexOf('-');
        if (dash < 0) return null;
        var tail = stem[(dash + 1)..];
        return tail.Length >= 6 && tail.Length < 64 && tail.All(Uri.IsHexDigit) ? tail.ToLowerInvariant() : null;
    }
}
