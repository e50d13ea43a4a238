using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace ModelZoo.Tests.Zoo.Weights;

/// <summary>
/// A minimal HTTP/1.1 server on 127.0.0.1 (random port) for download tests: no other address is ever contacted.
/// Each path has a behaviour; every request's path and Range header is recorded.
/// </summary>
internal sealed class LoopbackHttpServer : IDisposable
{
    internal enum Mode
    {
        /// <summary>200 with the body, 206 for "Range: bytes=N-".</summary>
        Normal,
        /// <summary>Like Normal, but the first response announces the full length and closes after half the body.</summary>
        TruncateFirst,
        /// <summary>Ignores Range: always 200 with the whole body.</summary>
        IgnoreRange,
        /// <summary>Sends headers and a few bytes, then stalls until the client gives up.</summary>
        Stall,
        /// <summary>500 on the first request, then Normal.</summary>
        FailFirst,
        /// <summary>404.</summary>
        NotFound,
        /// <summary>Like Normal, but sends 16 KB every 10 ms (about 1.6 MB/s), so a client can be killed mid-download.</summary>
        Slow,
    }

    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly ConcurrentDictionary<string, (byte[] Body, Mode Mode)> _routes = new();
    private readonly ConcurrentDictionary<string, int> _hits = new();
    private readonly CancellationTokenSource _stop = new();

    internal LoopbackHttpServer()
    {
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _ = Task.Run(AcceptLoop);
    }

    internal int Port { get; }

    internal ConcurrentQueue<(string Path, string? Range)> Requests { get; } = new();

    internal string Url(string path) => $"http://127.0.0.1:{Port}{path}";

    internal void Serve(string path, byte[] body, Mode mode = Mode.Normal) => _routes[path] = (body, mode);

    internal int Hits(string path) => _hits.GetValueOrDefault(path);

    private async Task AcceptLoop()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await _listener.AcceptTcpClientAsync(_stop.Token); }
            catch (Exception) { return; }
            _ = Task.Run(() => Handle(client));
        }
    }

    private async Task Handle(TcpClient client)
    {
        using var _ = client;
        try
        {
            var stream = client.GetStream();
            var header = new StringBuilder();
            var one = new byte[1];
            while (!header.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
            {
                if (await stream.ReadAsync(one, _stop.Token) == 0) return;
                header.Append((char)one[0]);
            }
            var lines = header.ToString().Split("\r\n");
            var path = lines[0].Split(' ')[1];
            var range = lines.FirstOrDefault(l => l.StartsWith("Range:", StringComparison.OrdinalIgnoreCase))?[6..].Trim();
            Requests.Enqueue((path, range));
            int hit = _hits.AddOrUpdate(path, 1, (_, n) => n + 1);
            if (!_routes.TryGetValue(path, out var route) || route.Mode == Mode.NotFound)
            {
                await Write(stream, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                return;
            }
            var body = route.Body;
            if (route.Mode == Mode.FailFirst && hit == 1)
            {
                await Write(stream, "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                return;
            }
            long from = 0;
            if (range is not null && route.Mode != Mode.IgnoreRange && range.StartsWith("bytes=", StringComparison.Ordinal))
                from = long.Parse(range[6..].TrimEnd('-'), System.Globalization.CultureInfo.InvariantCulture);
            if (from >= body.Length && from > 0)
            {
                await Write(stream, $"HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{body.Length}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                return;
            }
            var head = from > 0
                ? $"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {from}-{body.Length - 1}/{body.Length}\r\nContent-Length: {body.Length - from}\r\n"
                : $"HTTP/1.1 200 OK\r\nContent-Length: {body.Length}\r\n";
            await Write(stream, head + "Accept-Ranges: bytes\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n");
            int count = (int)(body.Length - from);
            if (route.Mode == Mode.TruncateFirst && hit == 1) count /= 2;
            if (route.Mode == Mode.Stall)
            {
                await stream.WriteAsync(body.AsMemory((int)from, Math.Min(16, count)), _stop.Token);
                await stream.FlushAsync(_stop.Token);
                await Task.Delay(Timeout.Infinite, _stop.Token);
            }
            if (route.Mode == Mode.Slow)
            {
                for (int off = 0; off < count; off += 16 * 1024)
                {
                    await stream.WriteAsync(body.AsMemory((int)from + off, Math.Min(16 * 1024, count - off)), _stop.Token);
                    await stream.FlushAsync(_stop.Token);
                    await Task.Delay(10, _stop.Token);
                }
                return;
            }
            await stream.WriteAsync(body.AsMemory((int)from, count), _stop.Token);
            await stream.FlushAsync(_stop.Token);
        }
        catch (Exception)
        {
            // client went away or the server stopped
        }
    }

    private async Task Write(NetworkStream stream, string text) => await stream.WriteAsync(Encoding.ASCII.GetBytes(text), _stop.Token);

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        _stop.Dispose();
    }
}
