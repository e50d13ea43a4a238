namespace ModelZoo.Weights.Store;

/// <summary>
/// A weight file is not on this machine and cannot be downloaded (offline mode, or every source failed). The message
/// names the file, where to put it, and where to get it.
/// </summary>
public sealed class WeightNotAvailableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>A downloaded or cached file does not have the expected SHA-256; the file has been deleted.</summary>
public sealed class WeightIntegrityException : Exception
{
    /// <summary>Creates the exception.</summary>
    public WeightIntegrityException(string file, string source, string expected, string actual)
        : base($"SHA-256 mismatch for '{file}' from {source}: expected {expected}, got {actual}. The file was deleted; the download is corrupt or the source changed.")
    {
        Expected = expected;
        Actual = actual;
    }

    /// <summary>Expected digest (full hex or the torchvision-style prefix).</summary>
    public string Expected { get; }

    /// <summary>Digest of the file that was received.</summary>
    public string Actual { get; }
}

/// <summary>A download failed for good (HTTP error that is not worth retrying, or retries exhausted).</summary>
public sealed class WeightDownloadException(string message, int? statusCode = null, Exception? inner = null) : Exception(message, inner)
{
    /// <summary>HTTP status code, when the server answered.</summary>
    public int? StatusCode { get; } = statusCode;
}
