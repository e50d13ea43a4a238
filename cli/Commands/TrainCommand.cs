using System.CommandLine;
using ModelZoo.Tasks.Recipes;

namespace ModelZoo.Cli.Commands;

/// <summary><c>zoo train RECIPE.yaml [--set key=value …]</c>: runs a YAML recipe into a run folder.</summary>
internal static class TrainCommand
{
    public static Command Create()
    {
        var recipe = new Argument<string>("recipe") { Description = "Recipe file (YAML), e.g. recipes/resnet18-cntk-fine-tune.yaml." };
        var set = new Option<string[]>("--set") { Description = "Override a recipe field: key.path=value (repeatable), e.g. --set train.epochs=3.", AllowMultipleArgumentsPerToken = false };
        var output = new Option<string?>("--output") { Description = "Folder for run folders (overrides the recipe's output)." };
        var dryRun = new Option<bool>("--dry-run") { Description = "Read and check the recipe, print the resolved YAML, and stop." };
        var command = new Command("train", "Run a YAML training recipe: data, model, surgery, training, checkpoints and a report in a run folder.")
        {
            recipe, set, output, dryRun,
        };
        command.SetAction(r => CliErrors.Run("train", () =>
        {
            var overrides = (r.GetValue(set) ?? []).ToList();
            if (r.GetValue(output) is { } o) overrides.Add($"output={o}");
            var loaded = RecipeLoader.Load(r.GetValue(recipe)!, overrides);
            if (r.GetValue(dryRun))
            {
                Console.Write(RecipeLoader.ToYaml(loaded));
                return 0;
            }
            var result = RecipeRunner.Run(loaded, Console.Out);
            Console.WriteLine($"done in {result.Elapsed.TotalSeconds:F0}s: validation accuracy {Pct(result.ValidationAccuracy)}" +
                (result.TestAccuracy is { } t ? $", test accuracy {Pct(t)}" : "") + $"; checkpoint {result.BestCheckpoint}");
            return 0;
        }));
        return command;
    }

    private static string Pct(double v) => double.IsNaN(v) ? "n/a" : $"{v * 100:F2}%";
}
