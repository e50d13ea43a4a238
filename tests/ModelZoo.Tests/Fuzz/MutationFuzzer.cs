using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;

namespace ModelZoo.Tests.Fuzz;

/// <summary>
/// A seeded mutation fuzzer: from a list of valid seed inputs it derives mutated inputs (bit flips, "interesting"
/// byte/int replacements, truncation, extension, chunk duplication/removal, splicing two seeds). Deterministic for a
/// given seed number, so a failure is reproduced by its iteration index.
/// </summary>
internal sealed class MutationFuzzer(IReadOnlyList<byte[]> seeds, int seed)
{
    private readonly Random _rng = new(seed);
    private static readonly byte[] InterestingBytes = [0x00, 0xFF, 0x7F, 0x80, 0x01, 0xFE, 0x20, 0x0A, (byte)'"', (byte)'{', (byte)'['];
    private static readonly long[] InterestingInts = [0, -1, 1, int.MaxValue, int.MinValue, uint.MaxValue, long.MaxValue, long.MinValue, 0x7FFF_FFFF_FFFF, 1L << 32, 255, 256, 65535];

    public byte[] Next()
    {
        var data = (byte[])seeds[_rng.Next(seeds.Count)].Clone();
        int rounds = 1 + _rng.Next(_rng.Next(2) == 0 ? 2 : 8);
        for (int i = 0; i < rounds; i++) data = Mutate(data);
        return data;
    }

    private byte[] Mutate(byte[] d)
    {
        if (d.Length == 0) return [InterestingBytes[_rng.Next(InterestingBytes.Length)]];
        switch (_rng.Next(9))
        {
            case 0: // bit flip
            {
                int p = _rng.Next(d.Length);
                d[p] ^= (byte)(1 << _rng.Next(8));
                return d;
            }
            case 1: // interesting byte
                d[_rng.Next(d.Length)] = InterestingBytes[_rng.Next(InterestingBytes.Length)];
                return d;
            case 2: // random byte
                d[_rng.Next(d.Length)] = (byte)_rng.Next(256);
                return d;
            case 3: // interesting little-endian int32/int64, or its decimal text (for text formats)
            {
                long v = InterestingInts[_rng.Next(InterestingInts.Length)];
                int kind = _rng.Next(3);
                byte[] bytes = kind switch
                {
                    0 => BitConverter.GetBytes((int)v),
                    1 => BitConverter.GetBytes(v),
                    _ => Encoding.ASCII.GetBytes(v.ToString(System.Globalization.CultureInfo.InvariantCulture)),
                };
                if (!BitConverter.IsLittleEndian && kind < 2) Array.Reverse(bytes);
                int p = _rng.Next(d.Length);
                if (kind == 2) return Splice(d, p, p + Math.Min(d.Length - p, _rng.Next(4)), bytes);
                var r = d.Length >= p + bytes.Length ? d : d.Concat(new byte[p + bytes.Length - d.Length]).ToArray();
                bytes.CopyTo(r, p);
                return r;
            }
            case 4: // truncate
                return d[.._rng.Next(d.Length)];
            case 5: // extend with random or repeated bytes
            {
                int n = 1 + _rng.Next(64);
                var ext = new byte[n];
                if (_rng.Next(2) == 0) _rng.NextBytes(ext); else Array.Fill(ext, InterestingBytes[_rng.Next(InterestingBytes.Length)]);
                int p = _rng.Next(d.Length + 1);
                return Splice(d, p, p, ext);
            }
            case 6: // duplicate a chunk
            {
                var (a, b) = Range(d.Length);
                int p = _rng.Next(d.Length + 1);
                return Splice(d, p, p, d[a..b]);
            }
            case 7: // remove a chunk
            {
                var (a, b) = Range(d.Length);
                return Splice(d, a, b, []);
            }
            default: // splice with another seed
            {
                var other = seeds[_rng.Next(seeds.Count)];
                if (other.Length == 0) return d;
                int cut = _rng.Next(d.Length + 1);
                int from = _rng.Next(other.Length);
                return d[..cut].Concat(other[from..]).ToArray();
            }
        }
    }

    private (int, int) Range(int length)
    {
        int a = _rng.Next(length);
        int b = Math.Min(length, a + 1 + _rng.Next(Math.Min(length - a, 256)));
        return (a, b);
    }

    private static byte[] Splice(byte[] d, int start, int end, byte[] insert)
    {
        var r = new byte[d.Length - (end - start) + insert.Length];
        d.AsSpan(0, start).CopyTo(r);
        insert.CopyTo(r, start);
        d.AsSpan(end).CopyTo(r.AsSpan(start + insert.Length));
        return r;
    }
}

/// <summary>One parser under test: how to feed it bytes and which exceptions it may throw.</summary>
/// <param name="Name">Short name; also the folder of regression seeds under Fixtures/fuzz/.</param>
/// <param name="Seeds">Valid inputs.</param>
/// <param name="Parse">Parses one input; gets the bytes and the source name (file path) to expect in messages.</param>
/// <param name="Allowed">The documented exception types (subclasses count).</param>
/// <param name="FileName">The file name the input is written under (its extension selects the format).</param>
internal sealed record FuzzTarget(string Name, IReadOnlyList<byte[]> Seeds, Action<byte[], string> Parse, Type[] Allowed, string FileName);

/// <summary>Runs a <see cref="FuzzTarget"/> over mutated inputs and collects what breaks the outcome rule.</summary>
internal static class FuzzRunner
{
    /// <summary>Managed bytes one input may allocate on its parsing thread.</summary>
    public const long MaxAllocatedBytes = 256L << 20;

    /// <summary>Inputs per parser: ZOO_FUZZ_ITERATIONS, else the short CI count.</summary>
    public static int Iterations(int ciDefault = 300) =>
        int.TryParse(Environment.GetEnvironmentVariable("ZOO_FUZZ_ITERATIONS"), out int n) && n > 0 ? n : ciDefault;

    /// <summary>The fuzz seed: ZOO_FUZZ_SEED, else a fixed number so CI is reproducible.</summary>
    public static int Seed => int.TryParse(Environment.GetEnvironmentVariable("ZOO_FUZZ_SEED"), out int s) ? s : 20261126;

    public static string FixtureDir(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "fuzz", name);

    public sealed record Result(string Target, int Inputs, int Accepted, Dictionary<string, int> Rejected, List<string> Failures, TimeSpan Elapsed, string? FailureDir)
    {
        public override string ToString() =>
            $"{Target}: {Inputs} inputs, {Accepted} parsed, rejected by type: {string.Join(", ", Rejected.OrderByDescending(kv => kv.Value).Select(kv => $"{kv.Key}={kv.Value}"))}; " +
            $"{Failures.Count} failures; {Elapsed.TotalSeconds:F1} s";
    }

    public static Result Run(FuzzTarget target, int iterations, int seed, TimeSpan? perInputTimeout = null)
    {
        var timeout = perInputTimeout ?? TimeSpan.FromSeconds(10);
        var dir = Path.Combine(Path.GetTempPath(), $"zoo-fuzz-{target.Name}-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        string path = Path.Combine(dir, target.FileName);
        string failDir = Path.Combine(Path.GetTempPath(), "zoo-fuzz-failures", target.Name);
        var rejected = new Dictionary<string, int>();
        var failures = new List<string>();
        int accepted = 0;
        var sw = Stopwatch.StartNew();

        // Regression seeds (inputs that once broke a parser) are run first, then used as seeds too.
        var regressions = Directory.Exists(FixtureDir(target.Name))
            ? Directory.GetFiles(FixtureDir(target.Name)).OrderBy(f => f, StringComparer.Ordinal).Select(File.ReadAllBytes).ToList()
            : [];
        var fuzzer = new MutationFuzzer([.. target.Seeds, .. regressions], seed);
        int total = regressions.Count + iterations;
        try
        {
            for (int i = 0; i < total; i++)
            {
                var input = i < regressions.Count ? regressions[i] : fuzzer.Next();
                string? failure = RunOne(target, input, path, timeout, ref accepted, rejected, out bool hung);
                if (failure is null) continue;
                Directory.CreateDirectory(failDir);
                var saved = Path.Combine(failDir, $"seed{seed}-input{i}.bin");
                File.WriteAllBytes(saved, input);
                failures.Add($"input {i} ({input.Length} bytes, saved to {saved}): {failure}");
                if (hung || failures.Count >= 20) break; // a hung parser thread keeps running; stop rather than pile up
            }
        }
        finally
        {
            try { Directory.Delete(dir, true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
        return new Result(target.Name, total, accepted, rejected, failures, sw.Elapsed, failures.Count > 0 ? failDir : null);
    }

    private static string? RunOne(FuzzTarget target, byte[] input, string path, TimeSpan timeout, ref int accepted, Dictionary<string, int> rejected, out bool hung)
    {
        hung = false;
        File.WriteAllBytes(path, input);
        Exception? error = null;
        long allocated = 0;
        var thread = new Thread(() =>
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            try { target.Parse(input, path); }
            catch (Exception e) { error = e; }
            allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        }, maxStackSize: 16 << 20) { IsBackground = true };
        thread.Start();
        if (!thread.Join(timeout))
        {
            hung = true;
            return $"no result within {timeout.TotalSeconds} s (hang)";
        }
        if (allocated > MaxAllocatedBytes)
            return $"allocated {allocated >> 20} MB (limit {MaxAllocatedBytes >> 20} MB); outcome {error?.GetType().Name ?? "success"}";
        if (error is null) { accepted++; return null; }
        var type = error.GetType();
        if (!target.Allowed.Any(a => a.IsAssignableFrom(type)))
            return $"{type.FullName}: {error.Message}\n{error.StackTrace}";
        if (!error.Message.Contains(Path.GetFileName(path), StringComparison.Ordinal))
            return $"{type.Name} does not name the file: {error.Message}\n{error.StackTrace}";
        rejected[type.Name] = rejected.GetValueOrDefault(type.Name) + 1;
        return null;
    }
}
