using System.Reflection;

namespace ModelZoo;

/// <summary>Facts about this build of the toolkit.</summary>
public static class BuildInfo
{
    /// <summary>The toolkit's version.</summary>
    public static string Version { get; } =
        typeof(BuildInfo).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    /// <summary>The Torch backend this build references: <c>cpu</c> or <c>cuda</c> (set with <c>-p:TorchBackend=...</c>).</summary>
    public static string TorchBackend { get; } =
        typeof(BuildInfo).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().FirstOrDefault(a => a.Key == "TorchBackend")?.Value ?? "cpu";

    /// <summary>The TorchSharp assembly's version.</summary>
    public static string TorchSharpVersion { get; } =
        typeof(TorchSharp.torch).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0]
        ?? typeof(TorchSharp.torch).Assembly.GetName().Version?.ToString() ?? "?";
}
