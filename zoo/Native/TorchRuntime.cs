using System.Runtime.InteropServices;
using TorchSharp;

namespace ModelZoo.Native;

/// <summary>
/// Process-wide libtorch settings the zoo applies once, the first time a zoo module, model or learner is created:
/// libtorch's C++ log threshold (so that "Could not initialize NNPACK! Reason: Unsupported hardware." and similar
/// notes nobody can act on stay off the console) and the state of the <see cref="OneDnnConvGuard"/>.
/// </summary>
/// <remarks>
/// libtorch reads <c>TORCH_CPP_LOG_LEVEL</c> only when Python initialises it; under TorchSharp the variable is ignored.
/// The zoo therefore honours it itself: unset means <c>ERROR</c> (warnings hidden, errors shown); <c>INFO</c>,
/// <c>WARNING</c>, <c>ERROR</c>, <c>FATAL</c> or 0–3 choose another threshold. Errors from libtorch reach .NET as
/// exceptions either way; only its console notes are filtered.
/// </remarks>
public static class TorchRuntime
{
    private static readonly object Gate = new();
    private static bool _configured;

    /// <summary>The environment variable that sets libtorch's C++ log threshold.</summary>
    public const string LogLevelVariable = "TORCH_CPP_LOG_LEVEL";

    /// <summary>libtorch's C++ log threshold in force (0 INFO, 1 WARNING, 2 ERROR, 3 FATAL), or null when it could not be set.</summary>
    public static int? LogLevel { get; private set; }

    /// <summary>One line for <c>zoo doctor</c>: the log threshold and where it came from.</summary>
    public static string LogLevelDescription { get; private set; } = "not configured yet";

    /// <summary>
    /// Applies the settings once per process; later calls return at once. Loads libtorch if it is not loaded yet.
    /// </summary>
    public static void EnsureConfigured()
    {
        if (Volatile.Read(ref _configured)) return;
        lock (Gate)
        {
            if (_configured) return;
            _configured = true;
            ConfigureLogLevel();
        }
    }

    /// <summary>Parses a <c>TORCH_CPP_LOG_LEVEL</c> value the way libtorch documents it; null when it is not one of them.</summary>
    public static int? ParseLogLevel(string? value) => value?.Trim().ToUpperInvariant() switch
    {
        "INFO" or "0" => 0,
        "WARNING" or "1" => 1,
        "ERROR" or "2" => 2,
        "FATAL" or "3" => 3,
        _ => null,
    };

    private static void ConfigureLogLevel()
    {
        var requested = Environment.GetEnvironmentVariable(LogLevelVariable);
        int level = 2;
        string source = $"default; set {LogLevelVariable}=WARNING to see libtorch's warnings";
        if (!string.IsNullOrWhiteSpace(requested))
        {
            var parsed = ParseLogLevel(requested);
            if (parsed is null)
                source = $"{LogLevelVariable}='{requested}' is not INFO, WARNING, ERROR, FATAL or 0-3; using ERROR";
            else
            {
                level = parsed.Value;
                source = $"from {LogLevelVariable}";
            }
        }
        if (!TrySetLogLevel(level, out var why))
        {
            LogLevelDescription = $"unchanged: {why}";
            return;
        }
        LogLevel = level;
        LogLevelDescription = $"{LevelName(level)} ({source})";
    }

    private static string LevelName(int level) => level switch { 0 => "INFO", 1 => "WARNING", 2 => "ERROR", _ => "FATAL" };

    /// <summary>
    /// Writes libtorch's <c>FLAGS_caffe2_log_level</c> (exported by libc10), the threshold below which its C++
    /// <c>LOG</c> and <c>TORCH_WARN</c> messages are dropped.
    /// </summary>
    private static bool TrySetLogLevel(int level, out string why)
    {
        why = "";
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS() && !OperatingSystem.IsWindows())
        {
            why = "unsupported OS";
            return false;
        }
        try
        {
            if (!torch.TryInitializeDeviceType(DeviceType.CPU))
            {
                why = "libtorch did not load";
                return false;
            }
        }
        catch (Exception e) when (e is DllNotFoundException or TypeInitializationException or NotSupportedException)
        {
            why = "libtorch did not load: " + e.Message.Split('\n')[0];
            return false;
        }
        foreach (var name in C10Names())
        {
            if (!NativeLibrary.TryLoad(name, typeof(torch).Assembly, DllImportSearchPath.AssemblyDirectory | DllImportSearchPath.SafeDirectories, out var handle)
                && !NativeLibrary.TryLoad(name, out handle))
                continue;
            if (!NativeLibrary.TryGetExport(handle, "FLAGS_caffe2_log_level", out var flag))
            {
                why = $"{name} has no FLAGS_caffe2_log_level";
                return false;
            }
            Marshal.WriteInt32(flag, level);
            return true;
        }
        why = "libc10 was not found next to TorchSharp";
        return false;
    }

    private static string[] C10Names() =>
        OperatingSystem.IsWindows() ? ["c10.dll"] : OperatingSystem.IsMacOS() ? ["libc10.dylib"] : ["libc10.so"];
}
