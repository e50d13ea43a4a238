using System.Diagnostics;

namespace ModelZoo.Tests.Cli;

/// <summary>Runs the <c>zoo</c> command line built next to the tests (zoo.dll) as a child process.</summary>
internal static class ZooCli
{
    /// <summary>
    /// Runs <c>zoo <paramref name="args"/></c> with ZOO_OFFLINE set from <paramref name="offline"/>, 400 columns, and
    /// <paramref name="environment"/> on top (a null value removes the variable); fails the test when it does not finish
    /// within <paramref name="timeoutMinutes"/>. Returns the exit code, stdout followed by stderr, and stdout alone.
    /// </summary>
    public static (int Code, string Output, string Stdout) Run(string args, bool offline, IReadOnlyDictionary<string, string?>? environment = null, int timeoutMinutes = 2)
    {
        var exe = Path.Combine(AppContext.BaseDirectory, "zoo.dll");
        var psi = new ProcessStartInfo("dotnet", $"\"{exe}\" {args}") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.Environment["ZOO_OFFLINE"] = offline ? "1" : "0";
        psi.Environment["COLUMNS"] = "400";
        foreach (var (name, value) in environment ?? new Dictionary<string, string?>())
        {
            if (value is null) psi.Environment.Remove(name);
            else psi.Environment[name] = value;
        }
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        Assert.True(p.WaitForExit(timeoutMinutes * 60_000), $"zoo did not finish in {timeoutMinutes} minutes");
        return (p.ExitCode, stdout.Result + stderr.Result, stdout.Result);
    }
}
