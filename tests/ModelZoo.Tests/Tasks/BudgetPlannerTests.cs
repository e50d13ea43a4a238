using ModelZoo.Tasks.Recipes;

namespace ModelZoo.Tests.Tasks;

public class BudgetPlannerTests
{
    [Theory]
    [InlineData(90, 0.9)]
    [InlineData(1800, 18)]
    [InlineData(6900, 60)]
    public void TheSpeedProbeTimesOnePercentOfTheBudgetAtMostAMinute(double budget, double probe) =>
        Assert.Equal(probe, BudgetPlanner.ProbeSeconds(budget), 6);

    [Fact]
    public void ABudgetPlansEpochsFromMeasuredStepsAndTheRunFolderRecipeReplaysThePlan()
    {
        using var data = new TinyRecipeData();
        var recipe = RecipeLoader.Load(RecipeRunnerTests.RecipePath("resnet18-cntk-fine-tune.yaml"),
            ["data.limit=48", "data.batch_size=16", "data.workers=1", "data.image_size=32", $"data.path={data.Idx}", "train.budget=20s", $"output={data.Output}"]);
        var log = new StringWriter();
        var result = RecipeRunner.Run(recipe, log);

        var planned = RecipeLoader.Load(Path.Combine(result.RunFolder, "recipe.yaml"));
        Assert.Null(planned.Train.Budget);
        Assert.InRange(planned.Train.Epochs, 1, BudgetPlanner.MaxEpochs);
        Assert.InRange(planned.Train.TimeBudgetSeconds, 1, 20);
        Assert.Contains("budget 20s: a training step takes", log.ToString());
        // On a busy machine not even one epoch may fit the 20s; the plan then says so and trains one, cut by the stop.
        var text = log.ToString();
        Assert.True(text.Contains($"{planned.Train.Epochs} epoch(s) planned", StringComparison.Ordinal)
            || (planned.Train.Epochs == 1 && text.Contains("not even one epoch fits", StringComparison.Ordinal)), text);
        Assert.Contains("- **budget**: budget 20s:", File.ReadAllText(Path.Combine(result.RunFolder, "report.md")));
        // The safety stop ends training at the budget less the final evaluation, whatever the machine's speed.
        Assert.True(result.Elapsed.TotalSeconds < 60, $"the 20s run took {result.Elapsed.TotalSeconds:F0}s");
    }
}
