using System.CommandLine;
using ModelZoo.Tasks.Recipes;

namespace ModelZoo.Cli.Commands;

/// <summary><c>zoo export CKPT --format safetensors|pth [--output file]</c>, and <c>zoo export RUN_OR_RECIPE --to torchrun OUT/</c> (<see cref="TorchrunCommands"/>).</summary>
internal static class ExportCommand
{
    public static Command Create()
    {
        var ckpt = new Argument<string>("checkpoint") { Description = "A checkpoint written by 'zoo train' or a quickstart (or its run folder); with --to torchrun also a recipe file." };
        var outFolder = new Argument<string?>("out") { Description = "With --to torchrun: the folder to write.", Arity = ArgumentArity.ZeroOrOne };
        var format = new Option<string>("--format") { Description = "safetensors or pth (both load in PyTorch with strict=True).", DefaultValueFactory = _ => "safetensors" };
        var output = new Option<string?>("--output") { Description = "File to write (default: next to the checkpoint, same name, new extension)." };
        var to = new Option<string?>("--to") { Description = "torchrun: write a folder for PyTorch's torchrun (DDP): weights, train.py, config, README." };
        var command = new Command("export", "Export a checkpoint's weights as a plain state dict (.safetensors or .pth) plus a JSON description, or a run as a torchrun folder.") { ckpt, outFolder, format, output, to };
        command.SetAction(r => CliErrors.Run("export", () =>
        {
            if (r.GetValue(to) is { } target) return TorchrunCommands.Export(r.GetValue(ckpt)!, target, r.GetValue(outFolder) ?? r.GetValue(output));
            var path = CheckpointTools.Export(r.GetValue(ckpt)!, r.GetValue(format)!, r.GetValue(output));
            Console.WriteLine($"wrote {path} (and {Path.GetFileName(path)}.json with the architecture, surgery and class names)");
            return 0;
        }));
        return command;
    }
}
