using System.CommandLine;
using System.Runtime.InteropServices;
using ModelZoo.Native;
using Spectre.Console;
using TorchSharp;

namespace ModelZoo.Cli.Commands;

/// <summary><c>zoo doctor</c>: versions, devices, threads, cache folder and the native fix.</summary>
internal static class DoctorCommand
{
    public static Command Create()
    {
        var device = new Option<string>("--device") { Description = "Device to resolve: auto, cpu, cuda or cuda:N.", DefaultValueFactory = _ => "auto" };
        var convCheck = new Option<bool>("--conv-check")
        {
            Description = "Also train one step of each convolution shape that crashes or gives NaN in oneDNN without the zoo's guard.",
        };
        var command = new Command("doctor", "Check this machine: .NET, TorchSharp, libtorch, devices, threads, cache, native fix.") { device, convCheck };
        command.SetAction(r =>
        {
            var native = NativeStatus.Report();
            var rows = new List<(string, string)>
            {
                ("zoo", BuildInfo.Version),
                (".NET", RuntimeInformation.FrameworkDescription),
                ("OS", $"{RuntimeInformation.OSDescription} ({RuntimeInformation.RuntimeIdentifier})"),
                ("TorchSharp", BuildInfo.TorchSharpVersion),
                ("Torch backend (build)", BuildInfo.TorchBackend),
                ("native fix", $"{native.State}: {native.Message}"),
                ("system libstdc++", native.SystemLibStdCxx ?? "not found"),
            };
            try
            {
                TorchRuntime.EnsureConfigured();
                rows.Add(("libtorch", torch.__version__));
                rows.Add(("libtorch log level", TorchRuntime.LogLevelDescription));
                rows.Add(("oneDNN conv guard", OneDnnConvGuard.Description));
                if (r.GetValue(convCheck)) rows.Add(("conv check", ConvCheck.Run()));
                bool cuda = torch.cuda.is_available();
                rows.Add(("CUDA available", cuda ? $"yes ({torch.cuda.device_count()} device(s))" : "no"));
                rows.Add(("threads", $"{torch.get_num_threads()} intra-op ({Environment.ProcessorCount} logical cores)"));
                try
                {
                    rows.Add(("device", DeviceSelector.Resolve(r.GetValue(device)).Reason));
                }
                catch (InvalidOperationException e)
                {
                    rows.Add(("device", "FAILED: " + e.Message)); // e.g. CUDA asked for and absent: the CUDA rows below say why
                }
                using var x = torch.ones(2, 2);
                rows.Add(("tensor check", $"ones(2,2).sum() = {x.sum().item<float>()}"));
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                rows.Add(("libtorch", "FAILED to load or run: " + e.Message.Split('\n')[0]));
            }
            rows.AddRange(DoctorCuda.Rows(r.GetValue(device), rows.FirstOrDefault(x => x.Item1 == "CUDA available").Item2 is { } c ? c.StartsWith("yes", StringComparison.Ordinal) : null));
            rows.Add(("cache folder", ZooPaths.CacheRoot + (ZooPaths.Offline ? " (ZOO_OFFLINE: network disabled)" : "")));
            var table = new Table().Border(TableBorder.Simple).AddColumn("Check").AddColumn("Result");
            foreach (var (k, v) in rows) table.AddRow(Markup.Escape(k), Markup.Escape(v));
            AnsiConsole.Write(table);
            return rows.Any(x => x.Item2.StartsWith("FAILED", StringComparison.Ordinal)) ? 1 : 0;
        });
        return command;
    }
}
