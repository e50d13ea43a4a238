using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;

namespace ModelZoo.Weights.Store;

/// <summary>Progress of one download.</summary>
/// <param name="Url">What is being downloaded.</param>
/// <param name="FileName">Name of the file being written.</param>
/// <param name="BytesDone">Bytes on disk so far (including a resumed part).</param>
/// <param name="TotalBytes">Total size when the server states it.</param>
/// <param name="BytesPerSecond">Average speed of this attempt.</param>
public sealed record DownloadProgress(string Url, string FileName, long BytesDone, long? TotalBytes, double BytesPerSecond)
{
    /// <summary>Estimated time left, when the total is known and bytes are moving.</summary>
    public TimeSpan? Eta => TotalBytes is { } t && BytesPerSecond > 0 ? TimeSpan.FromSeconds((t - BytesDone) / BytesPerSecond) : null;
}

/// <summary>Limits of downloads: timeouts, retries, back-off.</summary>
/// <param name="ConnectTimeout">Time allowed for the server to answer with headers.</param>
/// <param name="IdleTimeout">Time allowed without receiving a byte once the body flows (a stalled server is retried).</param>
/// <param name="MaxAttempts">Attempts per source, the first included (each retry resumes where the last stopped).</param>
/// <param name="RetryDelay">Delay before the first retry; doubled after each.</param>
public sealed record DownloadOptions(TimeSpan ConnectTimeout, TimeSpan IdleTimeout, int MaxAttempts, TimeSpan RetryDelay)
{
    /// <summary>30 s to connect, 60 s idle, 4 attempts, 1 s back-off doubling.</summary>
    public static DownloadOptions Default { get; } = new(TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(60), 4, TimeSpan.FromSeconds(1));
}

/// <summary>
/// Streams a URL into a file: writes <c>&lt;dest&gt;.part</c>, resumes an existing part with an HTTP Range request,
/// verifies the SHA-256 (full digest or prefix) and only then renames the part onto <c>dest</c>. A digest mismatch
/// deletes the part. Transient failures (I/O, timeouts, 408/429/5xx) are retried a bounded number of times;
/// other HTTP errors fail at once.
/// </summary>
internal sealed class Downloader(HttpClient http, DownloadOptions options)
{
    internal async Task<string> DownloadAsync(string url, string dest, string? expectedDigest, IProgress<DownloadProgress>? progress, CancellationToken ct)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(dest)!);
        var part = dest + ".part";
        Exception? last = null;
        var delay = options.RetryDelay;
        for (int attempt = 1; attempt <= options.MaxAttempts; attempt++)
        {
            try
            {
                await FetchAsync(url, part, progress, ct).ConfigureAwait(false);
                var actual = FileDigest.Sha256(part);
                if (!FileDigest.Matches(actual, expectedDigest))
                {
                    File.Delete(part);
                    throw new WeightIntegrityException(Path.GetFileName(dest), url, expectedDigest!, actual);
                }
                File.Move(part, dest, overwrite: true);
                return actual;
            }
            catch (Exception e) when (IsTransient(e, ct) && attempt < options.MaxAttempts)
            {
                last = e;
                await Task.Delay(delay, ct).ConfigureAwait(false);
                delay *= 2;
            }
            catch (Exception e) when (IsTransient(e, ct))
            {
                last = e;
            }
        }
        throw new WeightDownloadException($"Downloading {url} failed after {options.MaxAttempts} attempts: {last?.Message}. The partial file '{part}' is kept; the next try resumes it.",
            (last as WeightDownloadException)?.StatusCode, last);
    }

    private static bool IsTransient(Exception e, CancellationToken ct) => e switch
    {
        WeightDownloadException d => d.StatusCode is null or 408 or 429 or >= 500,
        OperationCanceledException => !ct.IsCancellationRequested, // our own timeouts, not the caller's cancellation
        HttpRequestException or IOException or TimeoutException => true,
        _ => false,
    };

    private async Task FetchAsync(string url, string part, IProgress<DownloadProgress>? progress, CancellationToken ct)
    {
        long have = File.Exists(part) ? new FileInfo(part).Length : 0;
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        if (have > 0) request.Headers.Range = new RangeHeaderValue(have, null);

        using var connect = CancellationTokenSource.CreateLinkedTokenSource(ct);
        connect.CancelAfter(options.ConnectTimeout);
        HttpResponseMessage response;
        try
        {
            response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, connect.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new TimeoutException($"{url} did not answer within {options.ConnectTimeout.TotalSeconds:0.#} s.");
        }
        using (response)
        {
            if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable && have > 0)
            {
                // The part may already be complete (or the server's file shrank): let the digest decide, else restart.
                var total = response.Content.Headers.ContentRange?.Length;
                if (total == have) return;
                File.Delete(part);
                throw new WeightDownloadException($"{url} refused the range request for a {have}-byte partial file; restarting.", 503);
            }
            if (!response.IsSuccessStatusCode)
                throw new WeightDownloadException($"{url} answered {(int)response.StatusCode} {response.ReasonPhrase}.", (int)response.StatusCode);

            bool resumed = response.StatusCode == HttpStatusCode.PartialContent;
            if (resumed && response.Content.Headers.ContentRange?.From != have)
            {
                File.Delete(part);
                throw new WeightDownloadException($"{url} answered a range starting at {response.Content.Headers.ContentRange?.From}, not {have}; restarting.", 503);
            }
            if (!resumed) have = 0; // server ignored Range: start over
            long? totalBytes = resumed ? response.Content.Headers.ContentRange?.Length : response.Content.Headers.ContentLength;

            await using var body = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
            await using var file = new FileStream(part, resumed ? FileMode.Append : FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true);
            var buffer = new byte[1 << 16];
            var clock = Stopwatch.StartNew();
            long received = 0, lastReport = 0;
            var name = Path.GetFileName(part[..^".part".Length]);
            using var idle = CancellationTokenSource.CreateLinkedTokenSource(ct);
            while (true)
            {
                idle.CancelAfter(options.IdleTimeout);
                int n;
                try
                {
                    n = await body.ReadAsync(buffer, idle.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!ct.IsCancellationRequested)
                {
                    throw new TimeoutException($"{url} sent nothing for {options.IdleTimeout.TotalSeconds:0.#} s after {have + received} bytes.");
                }
                if (n == 0) break;
                await file.WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false);
                received += n;
                if (progress is not null && (received - lastReport >= 1 << 20 || clock.ElapsedMilliseconds > 0 && received == n))
                {
                    lastReport = received;
                    progress.Report(new DownloadProgress(url, name, have + received, totalBytes, received / Math.Max(clock.Elapsed.TotalSeconds, 1e-3)));
                }
            }
            await file.FlushAsync(ct).ConfigureAwait(false);
            progress?.Report(new DownloadProgress(url, name, have + received, totalBytes, received / Math.Max(clock.Elapsed.TotalSeconds, 1e-3)));
            if (totalBytes is { } expected && have + received != expected)
                throw new IOException($"{url}: connection closed after {have + received} of {expected} bytes.");
        }
    }
}
