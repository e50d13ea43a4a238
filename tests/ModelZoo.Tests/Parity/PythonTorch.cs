using System.Diagnostics;

namespace ModelZoo.Tests.Parity;

/// <summary>Runs snippets in Debian's Python with PyTorch 1.13 / torchvision 0.14 (the reference implementation).</summary>
public static class PythonTorch
{
    public const string Python = "/usr/bin/python3";

    /// <summary>The repository root (the folder holding ModelZoo.slnx).</summary>
    public static string RepoRoot
    {
        get
        {
            for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
                if (File.Exists(Path.Combine(d.FullName, "ModelZoo.slnx"))) return d.FullName;
            throw new InvalidOperationException("Cannot find the repository root (ModelZoo.slnx) above " + AppContext.BaseDirectory);
        }
    }

    /// <summary>Runs <paramref name="code"/> with scripts/fixtures on sys.path; returns stdout. Fails the test with the fix when torch is missing.</summary>
    public static string Run(string code, int timeoutSeconds = 300) =>
        RunArgs(["-c", "import sys; sys.path.insert(0, " + Quote(Path.Combine(RepoRoot, "scripts", "fixtures")) + ")\n" + code],
            workDir: null, threads: 2, timeoutSeconds);

    /// <summary>
    /// Runs <c>python3 <paramref name="args"/></c> in <paramref name="workDir"/> (the current folder when null) with
    /// <paramref name="threads"/> OpenMP threads; returns stdout. Fails the test with its output when it fails or
    /// outlasts <paramref name="timeoutSeconds"/>, and with the fix when Python or torch is missing.
    /// </summary>
    public static string RunArgs(IEnumerable<string> args, string? workDir, int threads, int timeoutSeconds)
    {
        if (!File.Exists(Python))
            Assert.Fail($"{Python} is missing; these tests need Debian's PyTorch. Run: scripts/setup.sh tests");
        var psi = new ProcessStartInfo(Python) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (workDir is not null) psi.WorkingDirectory = workDir;
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["OMP_NUM_THREADS"] = threads.ToString(System.Globalization.CultureInfo.InvariantCulture);
        string shown = psi.ArgumentList.Count > 0 && psi.ArgumentList[0] == "-c" ? "python3 -c …" : $"python3 {string.Join(' ', psi.ArgumentList)}";
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeoutSeconds * 1000))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"{shown} did not finish within {timeoutSeconds} s.");
        }
        string err = stderr.Result;
        if (p.ExitCode != 0)
        {
            if (err.Contains("No module named 'torch", StringComparison.Ordinal))
                Assert.Fail($"{Python} has no PyTorch/torchvision. Run: scripts/setup.sh tests\n{err}");
            Assert.Fail($"{shown} failed (exit {p.ExitCode}):\n{stdout.Result}\n{err}");
        }
        return stdout.Result;
    }

    /// <summary>A Python string literal for <paramref name="s"/>.</summary>
    public static string Quote(string s) => "'" + s.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("'", "\\'", StringComparison.Ordinal) + "'";
}
