using System.CommandLine;
using ModelZoo.Tasks.Recipes;

namespace ModelZoo.Cli.Commands;

/// <summary><c>zoo train RECIPE.yaml [--set key=value …]</c>: runs a YAML recipe into a run folder; <c>zoo train --resume RUN_FOLDER</c> continues a stopped run.</summary>
internal static class TrainCommand
{
    public static Command Create()
    {
        var recipe = new Argument<string?>("recipe") { Description = "Recipe file (YAML), e.g. recipes/resnet18-cntk-fine-tune.yaml.", Arity = ArgumentArity.ZeroOrOne };
        var set = new Option<string[]>("--set") { Description = "Override a recipe field: key.path=value (repeatable), e.g. --set train.epochs=3.", AllowMultipleArgumentsPerToken = false };
        var output = new Option<string?>("--output") { Description = "Folder for run folders (overrides the recipe's output)." };
        var dryRun = new Option<bool>("--dry-run") { Description = "Read and check the recipe, print the resolved YAML, and stop." };
        var budget = new Option<string?>("--budget") { Description = "Wall time for the whole run, e.g. 30m, 1h30m, 90s: measured steps decide how many epochs fit (sets train.budget)." };
        var resume = new Option<string?>("--resume") { Description = "Continue the run in this run folder (runs/<date>-<name>/) from its last.ckpt, with the recipe.yaml stored there." };
        var command = new Command("train", "Run a YAML training recipe: data, model, surgery, training, checkpoints and a report in a run folder.")
        {
            recipe, set, output, budget, dryRun, resume,
        };
        command.SetAction(r => CliErrors.Run("train", () =>
        {
            if (r.GetValue(resume) is { } folder)
            {
                if (r.GetValue(recipe) is not null || (r.GetValue(set) ?? []).Length > 0 || r.GetValue(output) is not null || r.GetValue(budget) is not null || r.GetValue(dryRun))
                    throw new ArgumentException("--resume continues a run exactly as it was started: give only the run folder (its recipe.yaml is used), without a recipe, --set, --output, --budget or --dry-run.");
                if (!Directory.Exists(folder)) throw new ArgumentException($"--resume: run folder '{folder}' does not exist.");
                Report(RecipeRunner.Resume(folder, Console.Out));
                return 0;
            }
            if (r.GetValue(recipe) is null) throw new ArgumentException("Give a recipe file (e.g. recipes/resnet18-cntk-fine-tune.yaml), or --resume RUN_FOLDER to continue a run.");
            var overrides = (r.GetValue(set) ?? []).ToList();
            if (r.GetValue(output) is { } o) overrides.Add($"output={o}");
            // --budget replaces the recipe's own time stop: the plan sets a safety stop of its own.
            if (r.GetValue(budget) is { } b) overrides.AddRange([$"train.budget={b}", "train.time_budget_seconds=0"]);
            var loaded = RecipeLoader.Load(r.GetValue(recipe)!, overrides);
            if (r.GetValue(dryRun))
            {
                Console.Write(RecipeLoader.ToYaml(loaded));
                return 0;
            }
            Report(RecipeRunner.Run(loaded, Console.Out));
            return 0;
        }));
        return command;
    }

    private static void Report(RecipeResult result) =>
        Console.WriteLine($"done in {result.Elapsed.TotalSeconds:F0}s: validation accuracy {Pct(result.ValidationAccuracy)}" +
            (result.TestAccuracy is { } t ? $", test accuracy {Pct(t)}" : "") + $"; checkpoint {result.BestCheckpoint}");

    private static string Pct(double v) => double.IsNaN(v) ? "n/a" : $"{v * 100:F2}%";
}
