using System.CommandLine;
using ModelZoo.Tasks.Recipes;

namespace ModelZoo.Cli.Commands;

/// <summary><c>zoo eval CKPT --data PATH [--source kind]</c>: evaluates a checkpoint and writes a report.</summary>
internal static class EvalCommand
{
    public static Command Create()
    {
        var ckpt = new Argument<string>("checkpoint") { Description = "A best.ckpt/last.ckpt written by 'zoo train' or a quickstart (or its run folder)." };
        var data = new Option<string>("--data") { Description = "Data to evaluate: image folder, CSV, JSONL, Parquet, or a Fashion-MNIST IDX folder (its test split).", Required = true };
        var source = new Option<string?>("--source") { Description = $"Data kind ({string.Join(", ", RecipeLoader.DataSources)}); default: guessed from the path." };
        var output = new Option<string?>("--output") { Description = "Report folder (default: eval-<data> next to the checkpoint)." };
        var text = new Option<string>("--text-column") { Description = "Text column of text tables.", DefaultValueFactory = _ => "text" };
        var label = new Option<string>("--label-column") { Description = "Label column of tables.", DefaultValueFactory = _ => "label" };
        var batch = new Option<int>("--batch-size") { Description = "Items per batch.", DefaultValueFactory = _ => 64 };
        var command = new Command("eval", "Evaluate a checkpoint on a dataset; writes report.md/report.html with plots.") { ckpt, data, source, output, text, label, batch };
        command.SetAction(r => CliErrors.Run("eval", () =>
        {
            var result = CheckpointTools.Evaluate(r.GetValue(ckpt)!, r.GetValue(data)!, r.GetValue(source), r.GetValue(output), Console.Out,
                r.GetValue(text)!, r.GetValue(label)!, Math.Max(1, r.GetValue(batch)));
            Console.WriteLine($"accuracy: {result.Accuracy * 100:F2}% ({result.Count:N0} items)");
            return 0;
        }));
        return command;
    }
}
