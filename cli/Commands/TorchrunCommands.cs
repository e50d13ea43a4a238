using System.CommandLine;
using ModelZoo.Tasks.Recipes;

namespace ModelZoo.Cli.Commands;

/// <summary>
/// The way to PyTorch's torchrun and back: <c>zoo export RUN_OR_RECIPE --to torchrun OUT/</c> (called from
/// <see cref="ExportCommand"/>) and <c>zoo import CKPT --like RUN/</c>.
/// </summary>
internal static class TorchrunCommands
{
    /// <summary>Runs <c>zoo export … --to <paramref name="target"/> <paramref name="outFolder"/></c>.</summary>
    public static int Export(string runOrRecipe, string target, string? outFolder)
    {
        if (!string.Equals(target, "torchrun", StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException($"--to '{target}' is not known; the only target is torchrun (for plain weight files use --format).");
        if (string.IsNullOrWhiteSpace(outFolder))
            throw new ArgumentException("--to torchrun needs the folder to write: zoo export RUN_OR_RECIPE --to torchrun OUT/");
        TorchrunExport.Export(runOrRecipe, outFolder, Console.Out);
        return 0;
    }

    /// <summary><c>zoo import CKPT --like RUN [--output file.ckpt]</c>.</summary>
    public static Command Import()
    {
        var ckpt = new Argument<string>("checkpoint") { Description = "A PyTorch state dict (.pth/.pt/.safetensors), e.g. checkpoints/last.pth of a torchrun export." };
        var like = new Option<string>("--like") { Description = "The run folder (or zoo checkpoint) whose architecture, surgery and classes the weights have, or the torchrun export folder.", Required = true };
        var output = new Option<string?>("--output") { Description = "The zoo checkpoint to write (default: the same name with .ckpt)." };
        var command = new Command("import", "Bring weights trained in PyTorch (e.g. by a torchrun export) back as a zoo checkpoint for eval, predict and the C# API.") { ckpt, like, output };
        command.SetAction(r => CliErrors.Run("import", () =>
        {
            var path = TorchrunExport.Import(r.GetValue(ckpt)!, r.GetValue(like)!, r.GetValue(output));
            Console.WriteLine($"wrote {path}; use it with: zoo eval {path} --data …  or  zoo predict {path} …");
            return 0;
        }));
        return command;
    }
}
