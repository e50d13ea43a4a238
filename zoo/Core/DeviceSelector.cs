using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo;

/// <summary>A device request as a user writes it: <c>auto</c>, <c>cpu</c>, <c>cuda</c> or <c>cuda:N</c>.</summary>
/// <param name="Kind">Which kind of device was asked for.</param>
/// <param name="Index">The CUDA ordinal for <c>cuda:N</c>; null for "any" (cuda) or not applicable.</param>
public sealed record DeviceRequest(DeviceRequestKind Kind, int? Index = null)
{
    /// <summary>Automatic choice: CUDA when available, else CPU.</summary>
    public static DeviceRequest Auto { get; } = new(DeviceRequestKind.Auto);

    /// <inheritdoc />
    public override string ToString() => Kind switch
    {
        DeviceRequestKind.Auto => "auto",
        DeviceRequestKind.Cpu => "cpu",
        _ => Index is { } i ? $"cuda:{i}" : "cuda",
    };
}

/// <summary>The kinds of device a user can ask for.</summary>
public enum DeviceRequestKind
{
    /// <summary>CUDA if <c>torch.cuda.is_available()</c>, else CPU.</summary>
    Auto,
    /// <summary>The CPU.</summary>
    Cpu,
    /// <summary>A CUDA GPU.</summary>
    Cuda,
}

/// <summary>The one place that turns a device request into a TorchSharp device and says why.</summary>
public static class DeviceSelector
{
    /// <summary>Parses <c>auto</c>, <c>cpu</c>, <c>cuda</c> or <c>cuda:N</c> (case-insensitive, surrounding spaces ignored).</summary>
    /// <exception cref="ArgumentException">The text is none of those forms.</exception>
    public static DeviceRequest Parse(string? text)
    {
        var t = (text ?? "auto").Trim().ToLowerInvariant();
        if (t is "" or "auto") return DeviceRequest.Auto;
        if (t == "cpu") return new(DeviceRequestKind.Cpu);
        if (t is "cuda" or "gpu") return new(DeviceRequestKind.Cuda);
        if (t.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(t.AsSpan(5), System.Globalization.NumberStyles.None, null, out int i))
            return new(DeviceRequestKind.Cuda, i);
        throw new ArgumentException($"Unknown device '{text}'. Use auto, cpu, cuda or cuda:N (e.g. cuda:0).", nameof(text));
    }

    /// <summary>Resolves a request against this machine.</summary>
    /// <param name="request">What the user asked for.</param>
    /// <param name="cudaAvailable">Overrides the CUDA probe (for tests); null asks TorchSharp.</param>
    /// <param name="cudaDeviceCount">Overrides the CUDA device count (for tests); null asks TorchSharp.</param>
    /// <exception cref="InvalidOperationException">CUDA was asked for and is absent, or the ordinal does not exist.</exception>
    public static DeviceChoice Resolve(DeviceRequest request, bool? cudaAvailable = null, int? cudaDeviceCount = null)
    {
        bool available = cudaAvailable ?? torch.cuda.is_available();
        switch (request.Kind)
        {
            case DeviceRequestKind.Cpu:
                return new(torch.CPU, "cpu (requested)");
            case DeviceRequestKind.Auto:
                return available ? new(new Device(DeviceType.CUDA, 0), "cuda:0 (auto: CUDA is available)")
                                 : new(torch.CPU, "cpu (auto: CUDA is not available in this build or machine)");
            default:
                if (!available)
                    throw new InvalidOperationException(
                        $"Device '{request}' was requested but CUDA is not available. This build uses TorchBackend=" +
                        $"{(BuildInfo.TorchBackend)}; rebuild with -p:TorchBackend=cuda on a machine with an NVIDIA driver, or use --device cpu.");
                int count = cudaDeviceCount ?? torch.cuda.device_count();
                int index = request.Index ?? 0;
                if (index >= count)
                    throw new InvalidOperationException($"Device '{request}' was requested but only {count} CUDA device(s) exist (cuda:0..cuda:{count - 1}).");
                return new(new Device(DeviceType.CUDA, index), $"cuda:{index} (requested)");
        }
    }

    /// <summary>Parses and resolves in one step.</summary>
    public static DeviceChoice Resolve(string? text) => Resolve(Parse(text));
}

/// <summary>A resolved device and a one-line explanation of the choice.</summary>
/// <param name="Device">The TorchSharp device.</param>
/// <param name="Reason">Why this device, for logs and <c>zoo doctor</c>.</param>
public sealed record DeviceChoice(Device Device, string Reason)
{
    /// <summary>True for CUDA devices.</summary>
    public bool IsCuda => Device.type == DeviceType.CUDA;
}
