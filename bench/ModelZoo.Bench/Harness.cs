using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace ModelZoo.Bench;

/// <summary>One side of a comparison: runs <c>n</c> measured units and returns the seconds of each.</summary>
internal sealed record Arm(string Name, Func<int, double[]> Run, IDisposable? Owner = null);

/// <summary>Result of one arm over all rounds: the per-round value is the mean seconds per unit of that round.</summary>
internal sealed record ArmResult(string Name, List<double> Rounds)
{
    public double Median => Stats.Median(Rounds);
}

internal static class Stats
{
    public static double Median(IReadOnlyCollection<double> v)
    {
        if (v.Count == 0) return double.NaN;
        var s = v.Order().ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
    }
}

/// <summary>
/// Runs arms alternately (A, B, C, A, B, C, …) after one warm-up round each, and prints medians and ratios. Every model
/// arm runs n+1 units per round and reports the last n, so each pays the same re-warm-up after the other arms ran.
/// </summary>
internal static class Alternation
{
    public static List<ArmResult> Run(IReadOnlyList<Arm> arms, int rounds, int units, TextWriter log)
    {
        foreach (var a in arms) a.Run(Math.Max(1, Math.Min(units, 2)));   // warm-up: allocator, oneDNN kernels, JIT
        var results = arms.Select(a => new ArmResult(a.Name, [])).ToList();
        for (int r = 0; r < rounds; r++)
        {
            var line = new StringBuilder($"  round {r + 1}/{rounds}:");
            for (int i = 0; i < arms.Count; i++)
            {
                var t = arms[i].Run(units);
                double mean = t.Average();
                results[i].Rounds.Add(mean);
                line.Append(CultureInfo.InvariantCulture, $" {arms[i].Name} {mean * 1000:0.0} ms;");
            }
            log.WriteLine(line.ToString());
            log.Flush();
        }
        return results;
    }

    /// <summary>Markdown table: arm, median ms per unit, items/s, ratio of speed vs the first arm and vs each later arm named in <paramref name="against"/>.</summary>
    public static string Table(string title, IReadOnlyList<ArmResult> res, int itemsPerUnit, params string[] against)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine(inv, $"{title}");
        sb.AppendLine("| arm | median ms/step | items/s | rounds (ms) |");
        sb.AppendLine("| --- | ---: | ---: | --- |");
        foreach (var r in res)
            sb.AppendLine(inv, $"| {r.Name} | {r.Median * 1000:0.0} | {itemsPerUnit / r.Median:0.0} | {string.Join(" ", r.Rounds.Select(x => (x * 1000).ToString("0", inv)))} |");
        var first = res[0];
        foreach (var other in res.Skip(1))
            if (against.Length == 0 || against.Contains(other.Name))
                sb.AppendLine(inv, $"speed ratio {first.Name} / {other.Name} = **{other.Median / first.Median:0.000}**  ");
        return sb.ToString();
    }
}

/// <summary>Machine facts printed with every table.</summary>
internal static class Machine
{
    public static string LoadAverage() => File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";

    public static string CpuModel()
    {
        if (!File.Exists("/proc/cpuinfo")) return "unknown";
        var line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal));
        return line is null ? "unknown" : line[(line.IndexOf(':') + 1)..].Trim();
    }

    public static double RssMb()
    {
        foreach (var l in File.ReadLines("/proc/self/status"))
            if (l.StartsWith("VmRSS:", StringComparison.Ordinal))
                return long.Parse(l.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024.0;
        return double.NaN;
    }

    public static double PeakRssMb()
    {
        foreach (var l in File.ReadLines("/proc/self/status"))
            if (l.StartsWith("VmHWM:", StringComparison.Ordinal))
                return long.Parse(l.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024.0;
        return double.NaN;
    }

    public static string Describe(int threads, JsonNode? python)
    {
        var ts = typeof(TorchSharp.torch).Assembly.GetName().Version;
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture,
            $"machine: {CpuModel()}, {Environment.ProcessorCount} logical cores; torch threads used: {threads} (both sides); load average at start: {LoadAverage()}\n");
        sb.Append(CultureInfo.InvariantCulture, $"C#: .NET {Environment.Version}, TorchSharp {ts} (libtorch 2.10 CPU), intra-op threads {TorchSharp.torch.get_num_threads()}\n");
        if (python is not null)
            sb.Append(CultureInfo.InvariantCulture,
                $"Python: {python["python"]}, torch {python["torch"]}, torchvision {python["torchvision"]}, threads {python["threads"]}, MKL {python["mkl"]}, oneDNN {python["mkldnn"]}, BLAS {python["blas"]} (Debian python3-torch)\n");
        return sb.ToString();
    }
}

/// <summary>The persistent Python PyTorch worker (torch_worker.py): one JSON command per line.</summary>
internal sealed class PyWorker : IDisposable
{
    private readonly Process _p;

    public PyWorker(int threads)
    {
        var script = Path.Combine(AppContext.BaseDirectory, "torch_worker.py");
        var psi = new ProcessStartInfo("/usr/bin/python3", $"\"{script}\"")
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = false, UseShellExecute = false,
        };
        psi.Environment["OMP_NUM_THREADS"] = threads.ToString(CultureInfo.InvariantCulture);
        UseBlas(psi, threads);
        _p = Process.Start(psi) ?? throw new InvalidOperationException("could not start /usr/bin/python3 (Debian python3-torch is needed: apt-get install python3-torch python3-torchvision)");
        Info = Send(new JsonObject { ["op"] = "init", ["threads"] = threads });
    }

    public JsonNode Info { get; }

    public JsonNode Send(JsonObject cmd)
    {
        _p.StandardInput.WriteLine(cmd.ToJsonString());
        _p.StandardInput.Flush();
        var line = _p.StandardOutput.ReadLine() ?? throw new InvalidOperationException($"torch_worker.py exited (code {(_p.HasExited ? _p.ExitCode : -1)}) on {cmd.ToJsonString()}");
        var node = JsonNode.Parse(line) ?? throw new InvalidOperationException("torch_worker.py answered nothing");
        if (node["error"] is JsonNode e) throw new InvalidOperationException($"torch_worker.py: {e}");
        return node;
    }

    /// <summary>An arm that sets up <paramref name="setup"/> in the worker and runs its steps there.</summary>
    public Arm Arm(string name, JsonObject setup)
    {
        string key = name + "#" + Guid.NewGuid().ToString("N");
        setup["op"] = "setup";
        setup["key"] = key;
        Send(setup);
        return new Arm(name, n =>
        {
            // n+1 steps, the first not counted (the same re-warm-up rule as the C# arms).
            var r = Send(new JsonObject { ["op"] = "run", ["key"] = key, ["steps"] = n + 1 });
            return r["times"]!.AsArray().Skip(1).Select(t => t!.GetValue<double>()).ToArray();
        });
    }

    public void Dispose()
    {
        try
        {
            if (!_p.HasExited)
            {
                _p.StandardInput.WriteLine(new JsonObject { ["op"] = "quit" }.ToJsonString());
                _p.StandardInput.Close();
                if (!_p.WaitForExit(10_000)) _p.Kill();
            }
        }
        catch (IOException) { }
        _p.Dispose();
    }

    /// <summary>
    /// Debian's python3-torch does its matrix products in whatever <c>libblas.so.3</c> the system resolves, by default
    /// the unoptimized reference BLAS (about 20× slower than OpenBLAS on a 1024² product here). When
    /// <c>BENCH_PYTHON_BLAS_DIR</c> names a folder holding another <c>libblas.so.3</c> (scripts/bench.sh puts an
    /// unpacked libopenblas0-pthread there), the worker loads that one instead, with as many BLAS threads as torch's.
    /// </summary>
    private static void UseBlas(ProcessStartInfo psi, int threads)
    {
        var dir = Environment.GetEnvironmentVariable("BENCH_PYTHON_BLAS_DIR");
        if (string.IsNullOrEmpty(dir)) return;
        if (!File.Exists(Path.Combine(dir, "libblas.so.3"))) throw new FileNotFoundException($"BENCH_PYTHON_BLAS_DIR={dir} has no libblas.so.3.");
        psi.Environment["LD_LIBRARY_PATH"] = dir;
        psi.Environment["OPENBLAS_NUM_THREADS"] = threads.ToString(CultureInfo.InvariantCulture);
    }

    public static JsonNode RunOnce(string args)
    {
        var script = Path.Combine(AppContext.BaseDirectory, "torch_worker.py");
        var psi = new ProcessStartInfo("/usr/bin/python3", $"\"{script}\" {args}") { RedirectStandardOutput = true, UseShellExecute = false };
        UseBlas(psi, int.TryParse(args.Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).FirstOrDefault(), out var t) ? t : 1);
        using var p = Process.Start(psi)!;
        var o = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"torch_worker.py {args} failed (exit {p.ExitCode})");
        return JsonNode.Parse(o)!;
    }

    internal static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };
}
