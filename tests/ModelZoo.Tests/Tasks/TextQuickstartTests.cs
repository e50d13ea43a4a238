using ModelZoo.Data;
using ModelZoo.Tasks;
using ModelZoo.Tasks.Nlp;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Tasks;

public sealed class TextQuickstartTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("zoo-textqs-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static readonly string[] Good = ["a wonderful film, I loved it", "great acting and a lovely story", "brilliant, moving and funny", "one of the best movies this year", "delightful and warm", "superb direction, loved every minute"];
    private static readonly string[] Bad = ["a terrible film, I hated it", "awful acting and a boring story", "dull, slow and painful", "one of the worst movies this year", "dreadful and cold", "horrible direction, hated every minute"];

    private string WriteCsv()
    {
        var path = Path.Combine(_dir, "reviews.csv");
        var lines = new List<string> { "review,sentiment" };
        for (int i = 0; i < 4; i++)
        {
            lines.AddRange(Good.Select(t => $"\"{t}\",positive"));
            lines.AddRange(Bad.Select(t => $"\"{t}\",negative"));
        }
        File.WriteAllLines(path, lines);
        return path;
    }

    [Theory]
    [InlineData(2048)]
    [InlineData(0)]
    public void TinyCsvGivesACheckpointThatTrainedModelLoadRebuilds(int bagTokens)
    {
        var csv = WriteCsv();
        var options = new TextQuickstartOptions
        {
            Data = csv, TextColumn = "review", LabelColumn = "sentiment", MaxLength = 16, BatchSize = 16, HeadSteps = 40, BagTokens = bagTokens,
            Device = "cpu", Output = Path.Combine(_dir, "runs"), TimeBudgetSeconds = 3600,
        };
        var log = new StringWriter();
        var result = TextQuickstart.Run(options, log);
        Assert.True(File.Exists(result.Checkpoint), log.ToString());
        Assert.True(File.Exists(Path.Combine(result.RunFolder, "report.md")));
        Assert.Equal(10, result.TestCount); // stratified 20% of 24 + 24
        Assert.Contains("test accuracy", log.ToString());
        Assert.NotNull(result.Baseline);
        Assert.Equal(10, result.Baseline!.Baseline.HeldOutCount); // the same held-out texts
        Assert.Contains("## Baseline", File.ReadAllText(Path.Combine(result.RunFolder, "report.md")));
        Assert.Contains("\"baseline\":", File.ReadAllText(Path.Combine(result.RunFolder, "result.json")));

        var trained = TrainedModel.Load(result.RunFolder);
        Assert.Equal("nlp", trained.Spec.Task);
        Assert.Equal("all-minilm-l6-v2", trained.Spec.Model);
        Assert.Equal(["negative", "positive"], trained.Spec.ClassNames);
        Assert.Equal(16, trained.Spec.MaxLength);
        Assert.Equal(bagTokens, trained.Spec.BagTokens);
        var rebuiltEncoder = (ModelZoo.Models.Nlp.TextEncoder)trained.Model;
        Assert.Equal(bagTokens > 0, rebuiltEncoder.TokenBag is not null);
        if (bagTokens > 0)
        {
            Assert.Equal(16, rebuiltEncoder.EncoderWindow);
            Assert.True(rebuiltEncoder.TokenBag!.ActiveIds().Length > 5, "the fitted idf is saved with the model");
            Assert.Contains("token bag", log.ToString());
        }

        // The rebuilt model (encoder + trained head) separates the training sentences: a random head would not.
        var tok = ModelZoo.Zoo.Tokenizer(trained.Spec.Model);
        var texts = Good.Concat(Bad).ToList();
        var batch = tok.Encode(texts, maxLength: trained.Spec.MaxLength);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var encoder = (ModelZoo.Models.Nlp.TextEncoder)trained.Model;
        var logits = encoder.Forward(batch.InputIdsTensor(), batch.AttentionMaskTensor());
        Assert.Equal(new long[] { texts.Count, 2 }, logits.shape);
        var pred = logits.argmax(1).data<long>().ToArray();
        int positive = trained.Spec.ClassNames.IndexOf("positive");
        int correct = Enumerable.Range(0, texts.Count).Count(i => pred[i] == (i < Good.Length ? positive : 1 - positive));
        Assert.True(correct >= texts.Count - 1, $"{correct}/{texts.Count} correct after reload");
    }

    [Theory]
    [InlineData(2000, 0.01, 100, 2000)] // two classes, a few thousand texts: all the steps fit
    [InlineData(2000, 0.1, 60, 600)]    // many classes × many texts: cut to the time left
    [InlineData(2000, 1.0, 10, 200)]    // never below 200
    [InlineData(40, 1.0, 0, 40)]        // fewer asked for: as asked
    public void HeadStepsFitTheTimeLeft(int wanted, double stepSeconds, double seconds, int expected) =>
        Assert.Equal(expected, TextQuickstart.PlanSteps(wanted, stepSeconds, seconds));

    [Theory]
    [InlineData(400, 100, 80_000, 20, 600, 80_000 * 320 / 400)] // 70 % of 600 s = 420 s, 100 s of it for the test texts
    [InlineData(200, 100, 80_000, 20, 600, 80_000)]             // fits: all
    [InlineData(2000, 900, 80_000, 50, 600, 1_000)]             // the test texts alone overrun: 20 per class
    [InlineData(2000, 900, 150, 2, 600, 150)]                   // fewer than the least: all there are
    public void TrainingTextsAreSampledWhenTheEncoderCannotReadThemAll(double trainSeconds, double testSeconds, int nTrain, int classes, double budget, int expected) =>
        Assert.Equal(expected, TextQuickstart.TrainTextsThatFit(trainSeconds, testSeconds, nTrain, classes, budget));

    [Fact]
    public void SplitIsStratifiedAndSeeded()
    {
        var labels = Enumerable.Range(0, 100).Select(i => i < 70 ? 0 : 1).ToArray();
        var data = TextDataset.FromTexts(labels.Select(i => $"t{i}").ToList(), labels, ["a", "b"]);
        var (train, test) = TextQuickstart.StratifiedSplit(data, Enumerable.Range(0, 100).ToArray(), 0.2, 7);
        Assert.Equal(20, test.Length);
        Assert.Equal(14, test.Count(i => labels[i] == 0));
        Assert.Empty(train.Intersect(test));
        Assert.Equal(100, train.Length + test.Length);
        Assert.Equal(test, TextQuickstart.StratifiedSplit(data, Enumerable.Range(0, 100).ToArray(), 0.2, 7).Test);
        Assert.NotEqual(test, TextQuickstart.StratifiedSplit(data, Enumerable.Range(0, 100).ToArray(), 0.2, 8).Test);
    }
}
