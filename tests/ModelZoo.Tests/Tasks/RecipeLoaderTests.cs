using ModelZoo.Tasks.Recipes;

namespace ModelZoo.Tests.Tasks;

public class RecipeLoaderTests
{
    /// <summary>A small valid recipe touching every section (also the recipe fuzz target's seed).</summary>
    internal const string Minimal = """
        name: probe
        model:
          name: resnet18
          surgery:
            - replace: maxpool
              with: identity
            - insert_after: avgpool
              name: drop
              with: dropout(0.2)
        data:
          source: image-folder
          path: pets/
          augment: [hflip, random-resized-crop]
        train:
          mode: linear-probe
          epochs: 2
          lr: 0.003
        """;

    [Fact]
    public void BindsSnakeCaseKeysToTypedRecords()
    {
        var r = RecipeLoader.Parse(Minimal, "probe.yaml");
        Assert.Equal("probe", r.Name);
        Assert.Equal("resnet18", r.Model.Name);
        Assert.Equal(2, r.Model.Surgery.Count);
        Assert.Equal("maxpool", r.Model.Surgery[0].Replace);
        Assert.Equal("dropout(0.2)", r.Model.Surgery[1].With);
        Assert.Equal(["hflip", "random-resized-crop"], r.Data.Augment);
        Assert.Equal("linear-probe", r.Train.Mode);
        Assert.Equal(0.003, r.Train.Lr);
        Assert.Equal(42, r.Seed); // default kept
    }

    [Fact]
    public void SetOverridesAnyFieldIncludingNewSectionsAndLists()
    {
        var r = RecipeLoader.Parse(Minimal, "probe.yaml", ["train.epochs=5", "data.path=other/", "device=cpu", "data.augment=[vflip]", "seed=7"]);
        Assert.Equal(5, r.Train.Epochs);
        Assert.Equal("other/", r.Data.Path);
        Assert.Equal("cpu", r.Device);
        Assert.Equal(["vflip"], r.Data.Augment);
        Assert.Equal(7, r.Seed);
    }

    [Fact]
    public void UnknownKeyNamesItsPathLineAndTheAllowedKeys()
    {
        var e = Assert.Throws<RecipeException>(() => RecipeLoader.Parse("model:\n  nmae: resnet18\n", "r.yaml"));
        Assert.Contains("r.yaml", e.Message);
        Assert.Contains("unknown key 'model.nmae'", e.Message);
        Assert.Contains("line 2", e.Message);
        Assert.Contains("name, weights", e.Message);
    }

    [Fact]
    public void UnknownKeyFromSetIsRejectedToo()
    {
        var e = Assert.Throws<RecipeException>(() => RecipeLoader.Parse(Minimal, "r.yaml", ["train.epoch=3"]));
        Assert.Contains("unknown key 'train.epoch'", e.Message);
    }

    [Theory]
    [InlineData("train.epochs=three", "'train.epochs' must be an integer, got 'three'")]
    [InlineData("train.lr=fast", "'train.lr' must be a number, got 'fast'")]
    [InlineData("train.mode=magic", "'train.mode' is 'magic'; allowed values: linear-probe, fine-tune, fine-tune-fastai")]
    [InlineData("train.schedule=zigzag", "allowed values: one-cycle, cosine, step, plateau, constant")]
    [InlineData("train.class_weights=inverse", "'train.class_weights' is 'inverse'; allowed values: none, balanced")]
    [InlineData("data.source=ftp", "'data.source' is 'ftp'")]
    [InlineData("data.val_split=1.5", "'data.val_split' is 1.5; it must lie between 0 and 0.9")]
    [InlineData("data.augment=[spin]", "'data.augment' is 'spin'")]
    [InlineData("device=tpu", "'device': Unknown device 'tpu'")]
    [InlineData("model.name=resnet9000", "not in the catalog")]
    [InlineData("train.metrics=accuracy", "'train.metrics' must be a list")]
    [InlineData("train.ema=0.2", "'train.ema' is 0.2; it must lie between 0.5 and 0.999999")]
    [InlineData("eval.tta=[rotate]", "'eval.tta' is 'rotate'; allowed values: hflip")]
    [InlineData("train.budget=soon", "'train.budget' is 'soon', which is not a duration. Write it like 90s, 30m, 2h or 1h30m")]
    [InlineData("train.budget=5s", "at least 10s are needed")]
    public void BadValuesNameThePathAndWhatIsAllowed(string set, string expected)
    {
        var e = Assert.Throws<RecipeException>(() => RecipeLoader.Parse(Minimal, "r.yaml", [set]));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void BudgetAndATimeStopTogetherAreRefusedWithTheChoice()
    {
        var e = Assert.Throws<RecipeException>(() => RecipeLoader.Parse(Minimal, "r.yaml", ["train.budget=30m", "train.time_budget_seconds=600"]));
        Assert.Contains("both 'train.budget' (30m) and 'train.time_budget_seconds' (600) are set", e.Message);
        Assert.Equal("1h30m", RecipeLoader.Parse(Minimal, "r.yaml", ["train.budget=1h30m"]).Train.Budget);
    }

    [Theory]
    [InlineData("90", 90)]
    [InlineData("90s", 90)]
    [InlineData("30m", 1800)]
    [InlineData("2h", 7200)]
    [InlineData("1h30m", 5400)]
    [InlineData("1.5h", 5400)]
    [InlineData(" 1H5m10S ", 3910)]
    public void DurationsReadAsSeconds(string text, double seconds) => Assert.Equal(seconds, DurationText.TryParseSeconds(text));

    [Theory]
    [InlineData("")]
    [InlineData("0")]
    [InlineData("-5m")]
    [InlineData("30x")]
    [InlineData("m30")]
    [InlineData("30m1h")]
    [InlineData("1h1h")]
    [InlineData("30 m")]
    public void NonDurationsAreNull(string text) => Assert.Null(DurationText.TryParseSeconds(text));

    [Theory]
    [InlineData(45, "45s")]
    [InlineData(1800, "30m")]
    [InlineData(1830, "30m30s")]
    [InlineData(5400, "1h30m")]
    [InlineData(7200, "2h")]
    public void DurationsFormatShortest(double seconds, string text) => Assert.Equal(text, DurationText.Format(seconds));

    [Fact]
    public void EmaTtaAndPadCropAreRecipeSettings()
    {
        var r = RecipeLoader.Parse(Minimal, "r.yaml", ["train.ema=0.999", "eval.tta=[hflip]", "data.augment=[pad-crop, random-erasing]"]);
        Assert.Equal(0.999, r.Train.Ema);
        Assert.Equal(["hflip"], r.Eval.Tta);
        Assert.Equal(["pad-crop", "random-erasing"], r.Data.Augment);
        var back = RecipeLoader.Parse(RecipeLoader.ToYaml(r));
        Assert.Equal(0.999, back.Train.Ema);
        Assert.Equal(["hflip"], back.Eval.Tta);
    }

    [Fact]
    public void BadSurgeryStepsAreExplained()
    {
        var twoActions = Assert.Throws<RecipeException>(() => RecipeLoader.Parse("model:\n  name: resnet18\n  surgery:\n    - replace: fc\n      remove: fc\n", "r.yaml"));
        Assert.Contains("exactly one of replace, remove, insert_after, insert_before", twoActions.Message);
        var badModule = Assert.Throws<RecipeException>(() => RecipeLoader.Parse("model:\n  name: resnet18\n  surgery:\n    - replace: fc\n      with: teleport\n", "r.yaml"));
        Assert.Contains("unknown module 'teleport'", badModule.Message);
        var noName = Assert.Throws<RecipeException>(() => RecipeLoader.Parse("model:\n  name: resnet18\n  surgery:\n    - insert_after: fc\n      with: relu\n", "r.yaml"));
        Assert.Contains("needs 'name:'", noName.Message);
    }

    [Fact]
    public void InvalidYamlAndMissingFilesAreClearErrors()
    {
        var bad = Assert.Throws<RecipeException>(() => RecipeLoader.Parse("model: [unclosed", "r.yaml"));
        Assert.Contains("not valid YAML", bad.Message);
        var missing = Assert.Throws<RecipeException>(() => RecipeLoader.Load("/nonexistent/recipe.yaml"));
        Assert.Contains("does not exist", missing.Message);
        var badSet = Assert.Throws<RecipeException>(() => RecipeLoader.Parse(Minimal, "r.yaml", ["train.epochs"]));
        Assert.Contains("expected key.path=value", badSet.Message);
    }

    [Fact]
    public void ResolvedRecipeRoundTripsThroughYaml()
    {
        var r = RecipeLoader.Parse(Minimal, "probe.yaml", ["train.epochs=4"]);
        var again = RecipeLoader.Parse(RecipeLoader.ToYaml(r), "resolved.yaml");
        Assert.Equal(RecipeLoader.ToYaml(r), RecipeLoader.ToYaml(again));
        Assert.Equal(4, again.Train.Epochs);
    }

    [Fact]
    public void SurgeryModulesBuildWhatTheyName()
    {
        Assert.IsType<TorchSharp.Modules.Identity>(SurgeryModules.Create("identity"));
        Assert.IsType<TorchSharp.Modules.Dropout>(SurgeryModules.Create("Dropout(0.25)"));
        Assert.Throws<RecipeException>(() => SurgeryModules.Create("dropout(1.5)"));
    }
}
