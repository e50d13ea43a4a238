namespace ModelZoo.Native;

/// <summary>Reports how the running process's <c>libLibTorchSharp.so</c> relates to the system libstdc++.</summary>
public static class NativeStatus
{
    /// <summary>Finds the <c>libLibTorchSharp.so</c> next to the running application (build, test or publish output).</summary>
    public static string? FindLoadedLibrary()
    {
        var baseDir = AppContext.BaseDirectory;
        string[] candidates =
        [
            Path.Combine(baseDir, LibStdCxxCompat.TorchSharpLibrary),
            Path.Combine(baseDir, "runtimes", "linux-x64", "native", LibStdCxxCompat.TorchSharpLibrary),
        ];
        return candidates.FirstOrDefault(File.Exists);
    }

    /// <summary>Inspects the application's copy, or explains why it cannot.</summary>
    public static NativeFixReport Report()
    {
        if (!OperatingSystem.IsLinux())
            return new(NativeFixState.NotNeeded, "-", null, "Not Linux: the libstdc++ fix does not apply.");
        var lib = FindLoadedLibrary();
        if (lib is null)
            return new(NativeFixState.Required, "-", LibStdCxxCompat.FindSystemLibStdCxx(), $"No {LibStdCxxCompat.TorchSharpLibrary} next to {AppContext.BaseDirectory}.");
        try
        {
            return LibStdCxxCompat.Inspect(lib);
        }
        catch (Exception e) when (e is NativeFixException or InvalidDataException or IOException)
        {
            return new(NativeFixState.Required, lib, LibStdCxxCompat.FindSystemLibStdCxx(), e.Message);
        }
    }
}
