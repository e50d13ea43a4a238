using ModelZoo.Tasks.Reports;

namespace ModelZoo.Tests.Tasks;

public sealed class RunReportTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("zoo-report-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static EvaluationSummary Eval()
    {
        var confusion = new long[,] { { 8, 2, 0 }, { 1, 9, 0 }, { 0, 3, 7 } };
        var img = new ReportImage(4, 4, Enumerable.Range(0, 48).Select(i => (byte)(i * 5)).ToArray());
        return new("test", ["cat", "dog", "bird"], confusion, 0.5,
            [new("a.png", "bird", "dog", 2.5, 0.08, img), new("b.png", "cat", "dog", 1.2, 0.3, img)]);
    }

    [Fact]
    public void MetricsFollowFromTheConfusionMatrix()
    {
        var ev = Eval();
        Assert.Equal(30, ev.Count);
        Assert.Equal(24 / 30.0, ev.Accuracy, 12);
        var dog = ev.PerClass[1];
        Assert.Equal(9 / 14.0, dog.Precision, 12);
        Assert.Equal(9 / 10.0, dog.Recall, 12);
        Assert.Equal(("bird", "dog", 3L), ev.MostConfused()[0]);
        Assert.Equal(ev.PerClass.Average(c => c.F1), ev.MacroF1, 12);
    }

    [Fact]
    public void WritesPngPlotsAndReportsThatLinkThem()
    {
        var history = new TrainingHistory(
            [new(1, "head", 1.2, 1.0, new Dictionary<string, double> { ["accuracy"] = 0.6 }, 3.5),
             new(2, "all", 0.8, 0.7, new Dictionary<string, double> { ["accuracy"] = 0.8 }, 4.0)],
            [(0, 1e-4), (10, 1e-3), (20, 1e-5)], [(0, 1.5), (10, 1.0), (20, 0.7)]);
        var files = RunReport.Write(_dir, "Test run", [("model", "resnet18"), ("device", "cpu")], history, [Eval()]);
        Assert.Equal(Path.Combine(_dir, "report.md"), files[0]);
        var md = File.ReadAllText(files[0]);
        Assert.Contains("accuracy 80.00%", md);
        Assert.Contains("bird → dog (3)", md);
        foreach (var png in files.Where(f => f.EndsWith(".png", StringComparison.Ordinal)))
        {
            var bytes = File.ReadAllBytes(png);
            Assert.True(bytes.Length > 1000, png);
            Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, bytes[..4]);
            Assert.Contains(Path.GetFileName(png), md);
        }
        Assert.Contains(files, f => f.EndsWith("top-losses-test.png", StringComparison.Ordinal));
        Assert.Contains(files, f => f.EndsWith("confusion-test.png", StringComparison.Ordinal));
        Assert.Contains("<img src=\"loss.png\"", File.ReadAllText(Path.Combine(_dir, "report.html")));
    }

    [Fact]
    public void TextTopLossesAppearAsSnippets()
    {
        var ev = new EvaluationSummary("test", ["ham", "spam"], new long[,] { { 5, 1 }, { 0, 4 } }, 0.2,
            [new("row 17", "ham", "spam", 3.1, 0.04, Text: "Subject: cheap | offer\n\nBuy   now")]);
        var files = RunReport.Write(_dir, "Text run", [], null, [ev]);
        var md = File.ReadAllText(files[0]);
        Assert.Contains("row 17: Subject: cheap \\| offer Buy now", md);
        Assert.Contains("Subject: cheap | offer Buy now", File.ReadAllText(Path.Combine(_dir, "report.html")));
    }
}
