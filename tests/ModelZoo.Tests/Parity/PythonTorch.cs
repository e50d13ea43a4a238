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
    public static string Run(string code, int timeoutSeconds = 300)
    {
        if (!File.Exists(Python))
            Assert.Fail($"{Python} is missing; these tests need Debian's PyTorch. Run: sudo apt-get install python3-torchvision");
        var psi = new ProcessStartInfo(Python) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add("import sys; sys.path.insert(0, " + Quote(Path.Combine(RepoRoot, "scripts", "fixtures")) + ")\n" + code);
        psi.Environment["OMP_NUM_THREADS"] = "2";
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeoutSeconds * 1000))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"Python did not finish within {timeoutSeconds} s.");
        }
        string err = stderr.Result;
        if (p.ExitCode != 0)
        {
            if (err.Contains("No module named 'torch", StringComparison.Ordinal))
                Assert.Fail($"{Python} has no PyTorch/torchvision. Run: sudo apt-get install python3-torchvision\n{err}");
            Assert.Fail($"Python failed (exit {p.ExitCode}):\n{err}");
        }
        return stdout.Result;
    }

    /// <summary>A Python string literal for <paramref name="s"/>.</summary>
    public static string Quote(string s) => "'" + s.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("'", "\\'", StringComparison.Ordinal) + "'";
}
