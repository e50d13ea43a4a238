using System.Globalization;
using System.Net;
using System.Text;

namespace ModelZoo.Tasks.Baselines;

/// <summary>
/// A quickstart's held-out accuracy next to its baseline's on the same items, and the verdict in words: whether the
/// quickstart beat the baseline, or plainly that it did not. Written into the run's report (a <c>## Baseline</c>
/// section) and <c>result.json</c>.
/// </summary>
/// <param name="Quickstart">The quickstart's model in words (e.g. "resnet18-cntk, linear probe").</param>
/// <param name="Accuracy">The quickstart's accuracy on the held-out items.</param>
/// <param name="HeldOut">What the held-out items are (e.g. "validation split", "test folder").</param>
/// <param name="Baseline">The baseline's result on the same items.</param>
public sealed record BaselineComparison(string Quickstart, double Accuracy, string HeldOut, BaselineResult Baseline)
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>Whether the quickstart scored strictly higher than the baseline.</summary>
    public bool Beat => Accuracy > Baseline.Accuracy;

    /// <summary>Accuracy difference in percentage points (quickstart − baseline).</summary>
    public double Points => (Accuracy - Baseline.Accuracy) * 100;

    /// <summary>The verdict in one sentence; "did NOT beat the baseline" when the quickstart scored the same or lower.</summary>
    public string Verdict
    {
        get
        {
            int items = (int)Math.Round((Accuracy - Baseline.Accuracy) * Baseline.HeldOutCount);
            string scores = string.Format(Inv, "{0:F2} % vs the baseline's {1:F2} % on the {2:N0} held-out items ({3})", Accuracy * 100, Baseline.Accuracy * 100, Baseline.HeldOutCount, HeldOut);
            return Beat
                ? string.Format(Inv, "The quickstart beat the baseline: {0}, {1:+0.00;-0.00} points ({2:N0} more items right).", scores, Points, items)
                : string.Format(Inv, "The quickstart did NOT beat the baseline on this dataset: {0}, {1:+0.00;-0.00;0.00} points. " +
                    "On these data the simple baseline is at least as good; see docs/quickstarts.md (what does not work yet).", scores, Points);
        }
    }

    /// <summary>The <c>## Baseline</c> section of <c>report.md</c>.</summary>
    public string Markdown()
    {
        var md = new StringBuilder();
        md.AppendLine("## Baseline\n");
        md.AppendLine(Beat ? Verdict : $"**{Verdict}**");
        md.AppendLine();
        md.AppendLine("| model | held-out accuracy | macro-F1 | trained on | time |\n| --- | ---: | ---: | ---: | ---: |");
        md.AppendLine(Inv, $"| {Quickstart} (this run) | {Accuracy * 100:F2} % | | | |");
        md.AppendLine(Inv, $"| baseline: {Baseline.Method} | {Baseline.Accuracy * 100:F2} % | {Baseline.MacroF1:F4} | {Baseline.TrainCount:N0} items | {Baseline.Elapsed.TotalSeconds:F1} s |");
        if (Baseline.Note is not null) md.AppendLine(Inv, $"\nBaseline note: {Baseline.Note}.");
        md.AppendLine();
        return md.ToString();
    }

    /// <summary>The section as HTML.</summary>
    public string Html()
    {
        static string E(string s) => WebUtility.HtmlEncode(s);
        var h = new StringBuilder();
        h.Append("<h2>Baseline</h2>");
        h.Append(Beat ? $"<p>{E(Verdict)}</p>" : $"<p><b>{E(Verdict)}</b></p>");
        h.Append("<table><tr><th>model</th><th>held-out accuracy</th><th>macro-F1</th><th>trained on</th><th>time</th></tr>");
        h.Append(Inv, $"<tr><td>{E(Quickstart)} (this run)</td><td>{Accuracy * 100:F2} %</td><td></td><td></td><td></td></tr>");
        h.Append(Inv, $"<tr><td>baseline: {E(Baseline.Method)}</td><td>{Baseline.Accuracy * 100:F2} %</td><td>{Baseline.MacroF1:F4}</td><td>{Baseline.TrainCount:N0} items</td><td>{Baseline.Elapsed.TotalSeconds:F1} s</td></tr></table>");
        if (Baseline.Note is not null) h.Append($"<p>Baseline note: {E(Baseline.Note)}.</p>");
        return h.ToString();
    }

    /// <summary>The comparison as <c>result.json</c> holds it (under <c>baseline</c>).</summary>
    public Dictionary<string, object?> Json() => new()
    {
        ["method"] = Baseline.Method,
        ["accuracy"] = Baseline.Accuracy,
        ["macro_f1"] = Baseline.MacroF1,
        ["train_count"] = Baseline.TrainCount,
        ["held_out_count"] = Baseline.HeldOutCount,
        ["seconds"] = Baseline.Elapsed.TotalSeconds,
        ["note"] = Baseline.Note,
        ["beat"] = Beat,
        ["points"] = Points,
        ["verdict"] = Verdict,
    };

    /// <summary>
    /// Adds the section to the report of <paramref name="runFolder"/>: in <c>report.md</c> after the facts (before the
    /// first <c>##</c> heading), in <c>report.html</c> after the facts list. A report without those places gets it at the end.
    /// </summary>
    public void WriteInto(string runFolder)
    {
        var md = Path.Combine(runFolder, "report.md");
        if (File.Exists(md))
        {
            var text = File.ReadAllText(md);
            int at = text.IndexOf("\n## ", StringComparison.Ordinal);
            File.WriteAllText(md, at < 0 ? text.TrimEnd() + "\n\n" + Markdown() : text[..(at + 1)] + Markdown() + text[(at + 1)..]);
        }
        var html = Path.Combine(runFolder, "report.html");
        if (File.Exists(html))
        {
            var text = File.ReadAllText(html);
            int at = text.IndexOf("</ul>", StringComparison.Ordinal);
            int end = text.LastIndexOf("</body>", StringComparison.Ordinal);
            int insert = at >= 0 ? at + "</ul>".Length : end >= 0 ? end : text.Length;
            File.WriteAllText(html, text[..insert] + Html() + text[insert..]);
        }
    }
}
