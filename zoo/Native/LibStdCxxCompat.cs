namespace ModelZoo.Native;

/// <summary>What <see cref="LibStdCxxCompat"/> found or did for one native library.</summary>
public enum NativeFixState
{
    /// <summary>The system libstdc++ provides every version the library needs; the file is left as shipped.</summary>
    NotNeeded,
    /// <summary>The marker version need is marked weak in this copy, so it loads on the older libstdc++.</summary>
    Applied,
    /// <summary>The library needs a version the system lacks and the need is not (yet) marked weak.</summary>
    Required,
}

/// <summary>The outcome of inspecting or patching one library.</summary>
/// <param name="State">What was found or done.</param>
/// <param name="Library">The library inspected.</param>
/// <param name="SystemLibStdCxx">The system libstdc++ it was compared with, if one was found.</param>
/// <param name="Message">One line for a person.</param>
public sealed record NativeFixReport(NativeFixState State, string Library, string? SystemLibStdCxx, string Message);

/// <summary>
/// Decides whether <c>libLibTorchSharp.so</c> needs the weak-version fix on this machine and applies it to a copy in a
/// build, test or publish output folder. Only version needs in <see cref="MarkerVersions"/> may be weakened: they guard
/// a marker symbol that nothing calls. Any other missing version is a real incompatibility and is reported as such.
/// </summary>
internal static class LibStdCxxCompat
{
    /// <summary>The native library TorchSharp loads first.</summary>
    public const string TorchSharpLibrary = "libLibTorchSharp.so";

    /// <summary>Versions whose only use is the marker symbol <c>_ZSt21ios_base_library_initv</c>.</summary>
    public static readonly IReadOnlySet<string> MarkerVersions = new HashSet<string>(StringComparer.Ordinal) { "GLIBCXX_3.4.32" };

    private static readonly string[] SearchDirs =
    [
        "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
        "/usr/lib64", "/lib64", "/usr/lib", "/lib",
    ];

    /// <summary>Finds the libstdc++ the dynamic loader would pick: <c>LD_LIBRARY_PATH</c> first, then the usual system folders.</summary>
    public static string? FindSystemLibStdCxx()
    {
        var dirs = (Environment.GetEnvironmentVariable("LD_LIBRARY_PATH") ?? "")
            .Split(':', StringSplitOptions.RemoveEmptyEntries).Concat(SearchDirs);
        return dirs.Select(d => Path.Combine(d, "libstdc++.so.6")).FirstOrDefault(File.Exists);
    }

    /// <summary>Reports the state of <paramref name="library"/> against the system libstdc++ without changing anything.</summary>
    public static NativeFixReport Inspect(string library, string? systemLibStdCxx = null)
    {
        systemLibStdCxx ??= FindSystemLibStdCxx();
        var needs = ElfVersionNeeds.ReadNeeds(library).Where(n => n.File.StartsWith("libstdc++", StringComparison.Ordinal)).ToList();
        var provided = systemLibStdCxx is null ? new HashSet<string>() : ElfVersionNeeds.ReadDefinitions(systemLibStdCxx);
        var missing = needs.Where(n => !provided.Contains(n.Version)).ToList();
        if (missing.Count == 0)
            return new(NativeFixState.NotNeeded, library, systemLibStdCxx, $"{systemLibStdCxx} provides every GLIBCXX version {Path.GetFileName(library)} needs; no fix needed.");
        var fatal = missing.Where(n => !MarkerVersions.Contains(n.Version)).Select(n => n.Version).Distinct().ToList();
        if (fatal.Count > 0)
            throw new NativeFixException($"{library} needs {string.Join(", ", fatal)} from libstdc++, which {systemLibStdCxx ?? "this system"} lacks. " +
                "Only the marker version GLIBCXX_3.4.32 can be weakened safely; install a newer libstdc++6 (or a newer OS) to run this TorchSharp build.");
        return missing.All(n => n.IsWeak)
            ? new(NativeFixState.Applied, library, systemLibStdCxx, $"{string.Join(", ", missing.Select(n => n.Version).Distinct())} marked weak in {library} (system libstdc++ lacks it).")
            : new(NativeFixState.Required, library, systemLibStdCxx, $"{library} needs {string.Join(", ", missing.Select(n => n.Version).Distinct())}, which {systemLibStdCxx} lacks; the weak-version fix has not been applied.");
    }

    /// <summary>Applies the fix to <paramref name="library"/> if this machine needs it; a no-op otherwise.</summary>
    public static NativeFixReport Apply(string library, string? systemLibStdCxx = null)
    {
        var report = Inspect(library, systemLibStdCxx);
        if (report.State != NativeFixState.Required) return report;
        MarkMarkerVersionsWeak(library);
        var after = Inspect(library, systemLibStdCxx);
        if (after.State != NativeFixState.Applied)
            throw new NativeFixException($"Patching {library} did not take effect: {after.Message}");
        return after;
    }

    /// <summary>
    /// Marks the <see cref="MarkerVersions"/> needs of <paramref name="library"/> weak whatever this machine's libstdc++
    /// provides: for outputs that will run on other machines (a tool package, a publish for another OS). Harmless where
    /// the version exists (a weak need that is satisfied binds as usual); other needs are left as they are.
    /// </summary>
    /// <returns>How many needs were changed (0 when they were weak already).</returns>
    public static int ApplyForAnyMachine(string library)
    {
        int before = ElfVersionNeeds.ReadNeeds(library).Count(n => MarkerVersions.Contains(n.Version) && !n.IsWeak);
        if (before > 0) MarkMarkerVersionsWeak(library);
        return before;
    }

    private static void MarkMarkerVersionsWeak(string library)
    {
        string nugetRoot = Path.GetFullPath(Environment.GetEnvironmentVariable("NUGET_PACKAGES")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages"));
        if (Path.GetFullPath(library).StartsWith(nugetRoot + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            throw new NativeFixException($"{library} lies in the NuGet global packages folder, which must never be modified; patch a copy in a build output instead.");
        foreach (var version in MarkerVersions)
            ElfVersionNeeds.MarkWeak(library, version);
    }
}

/// <summary>The native fix could not be applied, or would not help.</summary>
internal sealed class NativeFixException(string message) : Exception(message);
