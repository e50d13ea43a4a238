using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using ModelZoo.FineTune;
using ModelZoo.Tests.Tasks;
using ModelZoo.Tests.Zoo.Weights;
using Xunit.Abstractions;

namespace ModelZoo.Tests.Reliability;

/// <summary>
/// Kills real <c>zoo train</c> and <c>zoo fetch</c> processes with SIGKILL and checks what survives. Phases, cycled in a
/// seeded order: <c>step</c> (a random moment after a checkpoint landed, while training steps run), <c>checkpoint-mid</c>
/// (half-way through writing the temporary checkpoint file), <c>checkpoint-rename</c> (temporary file complete, not yet
/// renamed), <c>download</c> (part-way through a slow download from a loopback server). The checkpoint phases use the
/// <c>ZOO_TEST_CHECKPOINT_PAUSE_MS</c> hook, which prints a marker and pauses at those two points; the harness kills when
/// it reads the marker. After every kill: every <c>*.ckpt</c> in the run folder loads, <c>last.ckpt</c> never goes back
/// in steps, and the next <c>zoo train --resume</c> says it resumed from exactly that checkpoint. At the end the final
/// checkpoints, metrics and accuracies equal an uninterrupted run bit for bit (CPU, one thread).
/// </summary>
internal sealed class CrashHarness(ITestOutputHelper? output)
{
    internal static readonly string[] Phases = ["step", "checkpoint-mid", "checkpoint-rename", "download"];

    internal sealed record KillRecord(int Number, string Planned, string Hit, long LastStepBefore, long ResumedAtStep, int TempFilesLeft, string Detail);

    internal sealed record Summary(int Kills, IReadOnlyList<KillRecord> Records, bool FinalEqual, string FinalDetail, int TensorsCompared, int Epochs, TimeSpan Elapsed);

    private readonly StringBuilder _log = new();

    private void Log(string line)
    {
        _log.AppendLine(line);
        try { output?.WriteLine(line); } catch (InvalidOperationException) { }
    }

    internal string Text => _log.ToString();

    internal Summary Run(int kills, int seed)
    {
        var clock = Stopwatch.StartNew();
        var rng = new Random(seed);
        using var data = new TinyRecipeData();
        var home = Path.Combine(data.Root, "home");
        int epochs = kills > 5 ? 4 : 2;
        var recipe = Path.Combine(data.Root, "crash.yaml");
        File.WriteAllText(recipe, $"""
            name: crash
            model: {"{"}name: shufflenet_v2_x0_5, weights: none{"}"}
            data: {"{"}source: fashion-mnist, path: {data.Idx}, image_size: 32, val_split: 0.25, batch_size: 8, workers: 1{"}"}
            train: {"{"}mode: fine-tune, epochs: {epochs}, lr: 0.002, checkpoint_every_steps: 1{"}"}
            device: cpu
            seed: {seed % 1000}
            """);

        // 1. The uninterrupted reference run. Timeouts are generous: on a shared, overloaded machine (load 60 on 2 cores)
        // one process start-up took minutes; a timeout is a failure of the harness, not of the property under test.
        var baseline = ZooRun.Start(home, null, "train", recipe, "--output", Path.Combine(data.Root, "baseline"));
        Assert.True(baseline.WaitForExit(1800), "baseline run did not finish: " + baseline.Output);
        Assert.True(baseline.ExitCode == 0, "baseline run failed: " + baseline.Output);
        var baseFolder = Directory.GetDirectories(Path.Combine(data.Root, "baseline")).Single();
        Log($"baseline: {baseFolder} ({baseline.Seconds:F1}s)");

        // 2. The interrupted run: kill, check, resume, … then let it finish.
        var plan = Enumerable.Range(0, kills).Select(i => Phases[i % Phases.Length]).ToArray();
        if (kills == 3) plan = ["step", "checkpoint-rename", "download"];
        rng.Shuffle(plan);
        var records = new List<KillRecord>();
        var crashRoot = Path.Combine(data.Root, "crash");
        string? runFolder = null;
        long lastStep = -1;
        using var server = new LoopbackHttpServer();
        for (int k = 0; k < plan.Length; k++)
        {
            var phase = plan[k];
            if (phase == "download")
            {
                records.Add(KillDownload(k + 1, home, server, rng));
                continue;
            }
            int pause = phase == "step" ? 0 : 400;
            var args = runFolder is null ? new[] { "train", recipe, "--output", crashRoot } : ["train", "--resume", runFolder];
            var p = ZooRun.Start(home, pause, args);
            long resumedAt = -1;
            string hit;
            string detail;
            try
            {
                // Wait until this process wrote a checkpoint of its own (the first one after any resume).
                if (!p.WaitForLine(l => l.StartsWith("zoo-test: checkpoint renamed", StringComparison.Ordinal), 900))
                    throw new Xunit.Sdk.XunitException($"kill {k + 1}: the run ended or stalled before writing a checkpoint:\n{p.Output}");
                resumedAt = p.ResumedAtStep();
                switch (phase)
                {
                    case "step":
                    {
                        int renamed = p.Count("zoo-test: checkpoint renamed");
                        Thread.Sleep(rng.Next(5, 120));
                        p.Kill();
                        bool inWrite = p.Count("zoo-test: checkpoint renamed") == renamed && p.Count("zoo-test: checkpoint mid-write") > renamed;
                        hit = inWrite ? "checkpoint-write (random moment)" : "step";
                        detail = $"killed {p.Seconds:F1}s after start, {p.Count("zoo-test: checkpoint renamed")} checkpoint(s) written by this process";
                        break;
                    }
                    case "checkpoint-mid":
                    case "checkpoint-rename":
                    {
                        string marker = phase == "checkpoint-mid" ? "zoo-test: checkpoint mid-write" : "zoo-test: checkpoint complete";
                        int before = p.Count(marker);
                        if (!p.WaitForLine(l => l.StartsWith(marker, StringComparison.Ordinal), 900, skip: before))
                            throw new Xunit.Sdk.XunitException($"kill {k + 1}: no '{marker}' marker:\n{p.Output}");
                        p.Kill();
                        hit = phase;
                        detail = $"killed on the marker: {p.LastLine(marker)}";
                        break;
                    }
                    default: throw new InvalidOperationException(phase);
                }
            }
            finally
            {
                p.Kill();
            }
            runFolder ??= Directory.GetDirectories(crashRoot).Single();
            // After the kill: checkpoints load, nothing half-written under a checkpoint name, last.ckpt never regresses.
            var temps = Directory.GetFiles(runFolder, ".*.tmp");
            if (phase.StartsWith("checkpoint", StringComparison.Ordinal))
                Assert.True(temps.Length > 0, $"kill {k + 1} ({phase}) left no temporary file: the kill did not land inside the write");
            long step = CheckCheckpoints(runFolder, $"after kill {k + 1}");
            Assert.True(step >= lastStep, $"kill {k + 1}: last.ckpt went back from step {lastStep} to {step}");
            records.Add(new KillRecord(k + 1, phase, hit, step, resumedAt, temps.Length, detail));
            Log($"kill {k + 1}: {phase} → hit {hit}; last.ckpt at step {step}; this process had resumed at step {resumedAt}; {temps.Length} temp file(s) left; {detail}");
            Assert.True(resumedAt == lastStep, $"kill {k + 1}: the process resumed at step {resumedAt}, but last.ckpt was at step {lastStep} (-1: none)");
            lastStep = step;
        }

        // 3. Finish the run and compare with the reference.
        Assert.NotNull(runFolder);
        var final = ZooRun.Start(home, null, "train", "--resume", runFolder!);
        Assert.True(final.WaitForExit(1800), "final resume did not finish: " + final.Output);
        Assert.True(final.ExitCode == 0, "final resume failed: " + final.Output);
        var lastTraining = records.LastOrDefault(r => r.Planned != "download");
        if (lastTraining is not null)
            Assert.True(final.ResumedAtStep() == lastTraining.LastStepBefore, $"final run resumed at step {final.ResumedAtStep()}, last.ckpt was at {lastTraining.LastStepBefore}:\n{final.Output}");
        Assert.Empty(Directory.GetFiles(runFolder!, ".*.tmp"));
        int tensors = 0;
        foreach (var name in new[] { "last.ckpt", "best.ckpt" }) tensors += AssertSameModel(Path.Combine(baseFolder, name), Path.Combine(runFolder!, name));
        Assert.Equal(Metrics(Path.Combine(baseFolder, "metrics.jsonl")), Metrics(Path.Combine(runFolder!, "metrics.jsonl")));
        Assert.Equal(baseline.DoneLine(), final.DoneLine());
        var finalDetail = $"{tensors} tensors of last.ckpt + best.ckpt bit-identical; metrics.jsonl equal ({epochs} epochs, time_s ignored); '{final.DoneLine()}'";
        Log($"final: {finalDetail}");
        return new Summary(kills, records, true, finalDetail, tensors, epochs, clock.Elapsed);
    }

    private KillRecord KillDownload(int number, string home, LoopbackHttpServer server, Random rng)
    {
        var body = new byte[1_500_000 + rng.Next(500_000)];
        rng.NextBytes(body);
        var sha = Convert.ToHexStringLower(SHA256.HashData(body));
        var path = $"/w{number}/net-{sha[..10]}.pth";
        server.Serve(path, body, LoopbackHttpServer.Mode.Slow);
        var dest = Path.Combine(home, "weights", "_url", $"net-{sha[..10]}.pth");
        var p = ZooRun.Start(home, null, "fetch", server.Url(path));
        long partSize;
        try
        {
            var wait = Stopwatch.StartNew();
            while (!(File.Exists(dest + ".part") && new FileInfo(dest + ".part").Length > 0))
            {
                if (p.HasExited || wait.Elapsed > TimeSpan.FromSeconds(60)) throw new Xunit.Sdk.XunitException("download never started:\n" + p.Output);
                Thread.Sleep(5);
            }
            Thread.Sleep(rng.Next(0, 300));
        }
        finally
        {
            p.Kill();
        }
        Assert.False(File.Exists(dest), $"kill {number}: the download was complete before the kill; make the server slower");
        partSize = new FileInfo(dest + ".part").Length;
        Assert.InRange(partSize, 1, body.Length - 1);
        var again = ZooRun.Start(home, null, "fetch", server.Url(path));
        Assert.True(again.WaitForExit(900) && again.ExitCode == 0, "fetch after the kill failed:\n" + again.Output);
        Assert.Equal(body, File.ReadAllBytes(dest));
        Assert.False(File.Exists(dest + ".part"));
        var ranges = server.Requests.Where(r => r.Path == path).Select(r => r.Range).ToList();
        // The part on disk may have grown a little between our size reading and the kill; the resume range starts at its final size.
        var resumedFrom = ranges.Where(r => r is not null).Select(r => long.Parse(r!["bytes=".Length..].TrimEnd('-'), CultureInfo.InvariantCulture)).ToList();
        Assert.True(resumedFrom.Count == 1 && resumedFrom[0] >= partSize, $"expected one Range request from ≥ {partSize}: {string.Join(", ", ranges)}");
        var detail = $"{body.Length:N0}-byte file, killed with {resumedFrom[0]:N0} bytes in the .part; rerun sent Range: bytes={resumedFrom[0]}- and the sha256 matched";
        Log($"kill {number}: download → {detail}");
        return new KillRecord(number, "download", "download", -1, -1, 0, detail);
    }

    /// <summary>Every *.ckpt loads (meta and tensors); returns last.ckpt's global step (-1 when there is none yet).</summary>
    private static long CheckCheckpoints(string folder, string when)
    {
        long step = -1;
        foreach (var f in Directory.GetFiles(folder, "*.ckpt"))
        {
            try
            {
                var info = Checkpoint.ReadInfo(f);
                var state = Checkpoint.ReadModelState(f);
                Assert.NotEmpty(state);
                foreach (var t in state.Values) t.Dispose();
                if (Path.GetFileName(f) == "last.ckpt") step = info.GlobalStep;
            }
            catch (Exception e) when (e is not Xunit.Sdk.XunitException)
            {
                throw new Xunit.Sdk.XunitException($"{when}: {f} does not load: {e.Message}");
            }
        }
        return step;
    }

    private static int AssertSameModel(string expected, string actual)
    {
        var a = Checkpoint.ReadModelState(expected);
        var b = Checkpoint.ReadModelState(actual);
        try
        {
            Assert.Equal(a.Keys.Order(), b.Keys.Order());
            foreach (var (name, t) in a)
                Assert.True(t.bytes.SequenceEqual(b[name].bytes), $"{Path.GetFileName(actual)}: tensor '{name}' differs from the uninterrupted run");
            return a.Count;
        }
        finally
        {
            foreach (var t in a.Values.Concat(b.Values)) t.Dispose();
        }
    }

    private static List<string> Metrics(string path) =>
        File.ReadAllLines(path).Where(l => l.Length > 0).Select(l =>
        {
            var d = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(l)!;
            d.Remove("time_s");
            return string.Join(",", d.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key}={kv.Value.GetRawText()}"));
        }).ToList();

    /// <summary>Markdown table of the kills for the docs.</summary>
    internal static string Table(Summary s)
    {
        var sb = new StringBuilder();
        sb.AppendLine("| # | planned phase | hit | last.ckpt step after the kill | process had resumed at step | temp files left |");
        sb.AppendLine("|---|---|---|---|---|---|");
        foreach (var r in s.Records)
            sb.AppendLine(r.Planned == "download"
                ? $"| {r.Number} | download | download | — | — | — |"
                : $"| {r.Number} | {r.Planned} | {r.Hit} | {r.LastStepBefore} | {(r.ResumedAtStep < 0 ? "fresh start" : r.ResumedAtStep.ToString(CultureInfo.InvariantCulture))} | {r.TempFilesLeft} |");
        return sb.ToString();
    }
}

/// <summary>A <c>zoo</c> process (the CLI built next to the tests) with its output lines collected as they come.</summary>
internal sealed class ZooRun
{
    private readonly Process _p;
    private readonly ConcurrentQueue<string> _lines = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly ManualResetEventSlim _changed = new();

    private ZooRun(Process p) => _p = p;

    internal static ZooRun Start(string home, int? checkpointPauseMs, params string[] args)
    {
        var exe = Path.Combine(AppContext.BaseDirectory, "zoo.dll");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(exe);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["ZOO_HOME"] = home;
        psi.Environment["ZOO_OFFLINE"] = "0";
        psi.Environment["NO_PROXY"] = "127.0.0.1";
        psi.Environment["COLUMNS"] = "400";
        // One intra-op thread: bit-exact and fast on a loaded machine (two threads spin against each other).
        psi.Environment["OMP_NUM_THREADS"] = "1";
        // Markers are always on (pause 0) so the harness sees each checkpoint land; a pause makes the kill land inside the write.
        psi.Environment["ZOO_TEST_CHECKPOINT_PAUSE_MS"] = (checkpointPauseMs ?? 0).ToString(CultureInfo.InvariantCulture);
        var p = new Process { StartInfo = psi };
        var run = new ZooRun(p);
        p.OutputDataReceived += (_, e) => run.Add(e.Data);
        p.ErrorDataReceived += (_, e) => run.Add(e.Data);
        p.Start();
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return run;
    }

    private void Add(string? line)
    {
        if (line is null) return;
        _lines.Enqueue(line);
        _changed.Set();
    }

    internal bool HasExited => _p.HasExited;
    internal int ExitCode => _p.ExitCode;
    internal double Seconds => _clock.Elapsed.TotalSeconds;
    internal string Output => string.Join("\n", _lines);

    internal int Count(string prefix) => _lines.Count(l => l.StartsWith(prefix, StringComparison.Ordinal));

    internal string LastLine(string prefix) => _lines.LastOrDefault(l => l.StartsWith(prefix, StringComparison.Ordinal)) ?? "";

    /// <summary>Waits for the (skip+1)-th line matching <paramref name="match"/>; false if the process ends or time runs out first.</summary>
    internal bool WaitForLine(Func<string, bool> match, int seconds, int skip = 0)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (DateTime.UtcNow < deadline)
        {
            _changed.Reset();
            if (_lines.Count(match) > skip) return true;
            if (_p.HasExited)
            {
                _p.WaitForExit();
                return _lines.Count(match) > skip;
            }
            _changed.Wait(20);
        }
        return false;
    }

    internal bool WaitForExit(int seconds)
    {
        if (!_p.WaitForExit(seconds * 1000)) { Kill(); return false; }
        _p.WaitForExit();
        return true;
    }

    /// <summary>SIGKILL (Process.Kill on Unix), then waits for the process to be gone.</summary>
    internal void Kill()
    {
        try
        {
            if (!_p.HasExited) _p.Kill();
        }
        catch (InvalidOperationException) { }
        _p.WaitForExit();
    }

    /// <summary>The global step of the "resume: … step N" line, or -1 for a fresh start.</summary>
    internal long ResumedAtStep()
    {
        var line = _lines.FirstOrDefault(l => l.StartsWith("resume: ", StringComparison.Ordinal) && l.Contains(", step ", StringComparison.Ordinal));
        if (line is null) return -1;
        var tail = line[(line.IndexOf(", step ", StringComparison.Ordinal) + 7)..];
        return long.Parse(new string(tail.TakeWhile(char.IsDigit).ToArray()), CultureInfo.InvariantCulture);
    }

    internal string DoneLine()
    {
        var done = _lines.LastOrDefault(l => l.StartsWith("done in ", StringComparison.Ordinal)) ?? "";
        int colon = done.IndexOf(':', StringComparison.Ordinal);
        int semi = done.IndexOf("; checkpoint", StringComparison.Ordinal);
        return colon < 0 || semi < 0 ? done : done[(colon + 1)..semi].Trim();
    }
}
