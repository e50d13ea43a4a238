namespace ModelZoo;

/// <summary>Where the zoo keeps files on this machine.</summary>
public static class ZooPaths
{
    /// <summary>
    /// The cache folder: <c>ZOO_HOME</c> if set, else <c>$XDG_CACHE_HOME/modelzoo</c>, else <c>~/.cache/modelzoo</c>.
    /// </summary>
    public static string CacheRoot
    {
        get
        {
            var home = Environment.GetEnvironmentVariable("ZOO_HOME");
            if (!string.IsNullOrWhiteSpace(home)) return Path.GetFullPath(home);
            var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
            if (!string.IsNullOrWhiteSpace(xdg)) return Path.Combine(xdg, "modelzoo");
            return Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "modelzoo");
        }
    }

    /// <summary>True when <c>ZOO_OFFLINE</c> is set to 1/true/yes: no network access is attempted.</summary>
    public static bool Offline =>
        Environment.GetEnvironmentVariable("ZOO_OFFLINE") is { } v && (v == "1" || v.Equals("true", StringComparison.OrdinalIgnoreCase) || v.Equals("yes", StringComparison.OrdinalIgnoreCase));
}
