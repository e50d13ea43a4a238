using Xunit.Abstractions;

namespace ModelZoo.Tests.Reliability;

/// <summary>
/// The SIGKILL harness (<see cref="CrashHarness"/>). CI runs 3 seeded kills (one step, one checkpoint rename, one
/// download); <c>scripts/crash-harness.sh --kills 20</c> (ZOO_CRASH_KILLS=20) runs the documented long version.
/// A summary is appended to <c>/tmp/zoo-crash-summary.log</c>.
/// </summary>
[Collection("crash-harness")]
public sealed class CrashSafetyTests(ITestOutputHelper output)
{
    [Fact]
    public void KilledTrainingAndDownloadsResumeToTheUninterruptedResult()
    {
        int kills = int.TryParse(Environment.GetEnvironmentVariable("ZOO_CRASH_KILLS"), out int k) && k > 0 ? k : 3;
        int seed = int.TryParse(Environment.GetEnvironmentVariable("ZOO_CRASH_SEED"), out int s) ? s : 20261126;
        var harness = new CrashHarness(output);
        var summary = harness.Run(kills, seed);
        var phases = summary.Records.GroupBy(r => r.Hit).Select(g => $"{g.Key} {g.Count()}");
        var text = $"{DateTime.UtcNow:u} seed {seed}: {summary.Kills} kills ({string.Join(", ", phases)}), all resumed; {summary.FinalDetail}; {summary.Elapsed.TotalSeconds:F0}s\n"
                   + CrashHarness.Table(summary) + "\n" + harness.Text + "\n";
        File.AppendAllText(Path.Combine(Path.GetTempPath(), "zoo-crash-summary.log"), text);
        output.WriteLine(text);
        Assert.Equal(kills, summary.Records.Count);
        Assert.True(summary.FinalEqual);
        Assert.Contains(summary.Records, r => r.Hit == "download");
        Assert.Contains(summary.Records, r => r.Planned.StartsWith("checkpoint", StringComparison.Ordinal) && r.TempFilesLeft > 0);
    }
}
