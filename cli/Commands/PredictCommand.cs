using System.CommandLine;
using System.Text.Json;
using ModelZoo.Tasks.Recipes;

namespace ModelZoo.Cli.Commands;

/// <summary><c>zoo predict CKPT FILE… [--topk 3] [--json]</c> (or <c>--text "…"</c> for text classifiers).</summary>
internal static class PredictCommand
{
    public static Command Create()
    {
        var ckpt = new Argument<string>("checkpoint") { Description = "A checkpoint written by 'zoo train' or a quickstart (or its run folder)." };
        var files = new Argument<string[]>("files") { Description = "Image files to classify.", Arity = ArgumentArity.ZeroOrMore };
        var texts = new Option<string[]>("--text") { Description = "Text to classify with a text checkpoint (repeatable)." };
        var topk = new Option<int>("--topk") { Description = "Classes to show per input.", DefaultValueFactory = _ => 3 };
        var json = new Option<bool>("--json") { Description = "Print JSON instead of text." };
        var command = new Command("predict", "Predict classes for images (or texts with --text) with a checkpoint.") { ckpt, files, texts, topk, json };
        command.SetAction(r => CliErrors.Run("predict", () =>
        {
            var fileList = r.GetValue(files) ?? [];
            var textList = r.GetValue(texts) ?? [];
            if (fileList.Length > 0 && textList.Length > 0)
                throw new ArgumentException("Give image files or --text, not both.");
            bool isText = textList.Length > 0;
            var predictions = CheckpointTools.Predict(r.GetValue(ckpt)!, isText ? textList : fileList, Math.Max(1, r.GetValue(topk)), isText);
            if (r.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(predictions.Select(p => new
                {
                    input = p.Input,
                    top = p.Top.Select(c => new { label = c.Label, index = c.Index, probability = Math.Round(c.Probability, 6) }),
                }), new JsonSerializerOptions { WriteIndented = true }));
            }
            else
            {
                foreach (var p in predictions)
                    Console.WriteLine($"{p.Input}: " + string.Join(", ", p.Top.Select(c => $"{c.Label} {c.Probability * 100:F1}%")));
            }
            return 0;
        }));
        return command;
    }
}
