using System.CommandLine;
using ModelZoo.Tasks.Recipes;

namespace ModelZoo.Cli.Commands;

/// <summary><c>zoo export CKPT --format safetensors|pth [--output file]</c>.</summary>
internal static class ExportCommand
{
    public static Command Create()
    {
        var ckpt = new Argument<string>("checkpoint") { Description = "A checkpoint written by 'zoo train' or a quickstart (or its run folder)." };
        var format = new Option<string>("--format") { Description = "safetensors or pth (both load in PyTorch with strict=True).", DefaultValueFactory = _ => "safetensors" };
        var output = new Option<string?>("--output") { Description = "File to write (default: next to the checkpoint, same name, new extension)." };
        var command = new Command("export", "Export a checkpoint's weights as a plain state dict (.safetensors or .pth) plus a JSON description.") { ckpt, format, output };
        command.SetAction(r => CliErrors.Run("export", () =>
        {
            var path = CheckpointTools.Export(r.GetValue(ckpt)!, r.GetValue(format)!, r.GetValue(output));
            Console.WriteLine($"wrote {path} (and {Path.GetFileName(path)}.json with the architecture, surgery and class names)");
            return 0;
        }));
        return command;
    }
}
