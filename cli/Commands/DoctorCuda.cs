using System.Runtime.InteropServices;

namespace ModelZoo.Cli.Commands;

/// <summary>
/// The CUDA part of <c>zoo doctor --device cuda</c>: what this machine and this build offer for CUDA, and which of the
/// routes of docs/cuda.md applies. Reads files only (no libtorch calls), so it also explains a libtorch that fails to load.
/// </summary>
internal static class DoctorCuda
{
    private static readonly string[] SystemLibDirs =
        ["/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib64", "/lib64", "/usr/lib", "/usr/local/cuda/lib64", "/usr/lib/wsl/lib"];

    /// <summary>Rows (check, result) for a CUDA request; empty when <paramref name="device"/> does not ask for CUDA.</summary>
    /// <param name="device">The --device value.</param>
    /// <param name="cudaAvailable">What TorchSharp reported, or null when libtorch did not load.</param>
    public static IReadOnlyList<(string Check, string Result)> Rows(string? device, bool? cudaAvailable)
    {
        if (device is null || !device.Trim().StartsWith("cuda", StringComparison.OrdinalIgnoreCase) && !device.Trim().Equals("gpu", StringComparison.OrdinalIgnoreCase))
            return [];
        var appDir = AppContext.BaseDirectory;
        var ldPath = (Environment.GetEnvironmentVariable("LD_LIBRARY_PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries);
        string? driver = File.Exists("/proc/driver/nvidia/version") ? File.ReadLines("/proc/driver/nvidia/version").FirstOrDefault()?.Trim() : null;
        string? libcuda = Find("libcuda.so.1", ldPath.Concat(SystemLibDirs));
        string? cudaTorch = Find("libtorch_cuda.so", [appDir, Path.Combine(appDir, "runtimes", RuntimeInformation.RuntimeIdentifier, "native"),
            Path.Combine(appDir, "runtimes", "linux-x64", "native"), .. ldPath]);
        string? cpuTorch = Find("libtorch_cpu.so", [appDir, Path.Combine(appDir, "runtimes", "linux-x64", "native")]);
        var rows = new List<(string, string)>
        {
            ("CUDA: NVIDIA driver", driver ?? "not found (/proc/driver/nvidia/version is missing: no NVIDIA GPU or no driver loaded)"),
            ("CUDA: libcuda.so.1", libcuda ?? "not found in LD_LIBRARY_PATH or the system library folders"),
            ("CUDA: libtorch_cuda.so", cudaTorch ?? "not found next to the program nor in LD_LIBRARY_PATH"),
            ("CUDA: CPU libtorch next to the program", cpuTorch is null ? "no" : $"yes ({cpuTorch}) - it is loaded first and has no CUDA"),
            ("CUDA: verdict", Verdict(cudaAvailable, driver, libcuda, cudaTorch, cpuTorch)),
        };
        return rows;
    }

    private static string Verdict(bool? available, string? driver, string? libcuda, string? cudaTorch, string? cpuTorch)
    {
        if (available == true) return "CUDA is available to TorchSharp.";
        if (driver is null && libcuda is null)
            return "No NVIDIA driver on this machine: CUDA cannot work here; use --device cpu.";
        if (cudaTorch is null)
            return $"The driver is there but this program has no CUDA libtorch (Torch backend of this build: {BuildInfo.TorchBackend}). " +
                "Publish with scripts/publish-cuda.sh (TorchSharp-cuda-linux where that package is reachable, else it borrows an " +
                "installed PyTorch's torch/lib through LD_LIBRARY_PATH; docs/cuda.md), or point LD_LIBRARY_PATH at a PyTorch torch/lib " +
                "and remove libtorch*.so, libc10*.so and libgomp* from the program's folder.";
        if (cpuTorch is not null)
            return "libtorch_cuda.so is on LD_LIBRARY_PATH but the CPU libtorch next to the program is loaded first: remove " +
                "libtorch*.so, libc10*.so and libgomp* from the program's folder (scripts/publish-cuda.sh does this).";
        return available is null
            ? "libtorch did not load (see the libtorch row): the CUDA libtorch found may not match TorchSharp 0.107 (libtorch 2.10), or a CUDA library it needs is missing."
            : "A CUDA libtorch and a driver are present but TorchSharp reports no CUDA device: check that the driver supports the CUDA version libtorch was built for (nvidia-smi) and CUDA_VISIBLE_DEVICES.";
    }

    private static string? Find(string file, IEnumerable<string> dirs) =>
        dirs.Select(d => Path.Combine(d, file)).FirstOrDefault(File.Exists);
}
