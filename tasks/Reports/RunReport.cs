using System.Globalization;
using System.Net;
using System.Text;
using ScottPlot;
using SkiaSharp;

namespace ModelZoo.Tasks.Reports;

/// <summary>One epoch of a training run as the report plots it.</summary>
/// <param name="Epoch">1-based epoch number over the whole run.</param>
/// <param name="Phase">Phase label, e.g. <c>head</c> (frozen backbone) or <c>all</c>.</param>
/// <param name="TrainLoss">Mean training loss.</param>
/// <param name="ValLoss">Validation loss, if validated.</param>
/// <param name="Metrics">Validation metrics by name (accuracy, macro_f1, …), as fractions.</param>
/// <param name="Seconds">Wall time of the epoch.</param>
/// <param name="WallSeconds">Wall time from the start of the run to the end of this epoch (data preparation included), when known: the x axis of the time-to-accuracy plot.</param>
public sealed record EpochRecord(int Epoch, string Phase, double TrainLoss, double? ValLoss, IReadOnlyDictionary<string, double> Metrics, double Seconds, double? WallSeconds = null);

/// <summary>The curves of a run: per epoch, and per step for the learning rate and loss.</summary>
/// <param name="Epochs">Epoch records in order.</param>
/// <param name="LearningRates">(step, learning rate of the last parameter group) samples.</param>
/// <param name="StepLosses">(step, training loss) samples.</param>
public sealed record TrainingHistory(IReadOnlyList<EpochRecord> Epochs, IReadOnlyList<(long Step, double Lr)> LearningRates, IReadOnlyList<(long Step, double Loss)> StepLosses);

/// <summary>An RGB thumbnail for the top-losses grid.</summary>
/// <param name="Width">Width in pixels.</param>
/// <param name="Height">Height in pixels.</param>
/// <param name="Rgb">Width×Height×3 bytes, row-major.</param>
public sealed record ReportImage(int Width, int Height, byte[] Rgb);

/// <summary>One of the worst-predicted items.</summary>
/// <param name="Source">File path, row or dataset index that identifies the item.</param>
/// <param name="Actual">True class name.</param>
/// <param name="Predicted">Predicted class name.</param>
/// <param name="Loss">Its loss.</param>
/// <param name="Probability">Probability the model gave its (wrong) prediction.</param>
/// <param name="Image">Thumbnail for vision items.</param>
/// <param name="Text">Snippet for text items.</param>
public sealed record TopLoss(string Source, string Actual, string Predicted, double Loss, double Probability, ReportImage? Image = null, string? Text = null);

/// <summary>Evaluation results on one split.</summary>
/// <param name="Split">Split name, e.g. <c>test</c>.</param>
/// <param name="ClassNames">Class names by index.</param>
/// <param name="Confusion">Counts [actual, predicted].</param>
/// <param name="Loss">Mean loss.</param>
/// <param name="TopLosses">Worst items, worst first.</param>
public sealed record EvaluationSummary(string Split, IReadOnlyList<string> ClassNames, long[,] Confusion, double Loss, IReadOnlyList<TopLoss> TopLosses)
{
    /// <summary>Items evaluated.</summary>
    public long Count => Confusion.Cast<long>().Sum();

    /// <summary>Fraction predicted correctly.</summary>
    public double Accuracy => Count == 0 ? 0 : Enumerable.Range(0, ClassNames.Count).Sum(i => Confusion[i, i]) / (double)Count;

    /// <summary>Per-class precision, recall and F1.</summary>
    public IReadOnlyList<(string Class, double Precision, double Recall, double F1, long Support)> PerClass =>
        Enumerable.Range(0, ClassNames.Count).Select(c =>
        {
            long tp = Confusion[c, c];
            long predicted = Enumerable.Range(0, ClassNames.Count).Sum(a => Confusion[a, c]);
            long support = Enumerable.Range(0, ClassNames.Count).Sum(p => Confusion[c, p]);
            double precision = predicted == 0 ? 0 : tp / (double)predicted, recall = support == 0 ? 0 : tp / (double)support;
            double f1 = precision + recall == 0 ? 0 : 2 * precision * recall / (precision + recall);
            return (ClassNames[c], precision, recall, f1, support);
        }).ToList();

    /// <summary>Unweighted mean F1 over classes.</summary>
    public double MacroF1 => PerClass.Count == 0 ? 0 : PerClass.Average(c => c.F1);

    /// <summary>The most confused (actual, predicted) pairs, most frequent first.</summary>
    public IReadOnlyList<(string Actual, string Predicted, long Count)> MostConfused(int n = 5) =>
        (from a in Enumerable.Range(0, ClassNames.Count)
         from p in Enumerable.Range(0, ClassNames.Count)
         where a != p && Confusion[a, p] > 0
         orderby Confusion[a, p] descending
         select (ClassNames[a], ClassNames[p], Confusion[a, p])).Take(n).ToList();
}

/// <summary>
/// Writes a run's report: PNG plots (ScottPlot) of loss, metrics, learning rate, the confusion matrix and the top
/// losses (an image grid for vision, text snippets for NLP), and <c>report.md</c> + <c>report.html</c> linking them.
/// </summary>
public static class RunReport
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>Writes the report into <paramref name="folder"/> and returns the paths written (report.md first).</summary>
    /// <param name="folder">Run folder (created if missing).</param>
    /// <param name="title">Report title.</param>
    /// <param name="facts">Key facts shown at the top (model, data, device, choices made, timings).</param>
    /// <param name="history">Training curves; null for evaluation-only reports.</param>
    /// <param name="evaluations">Evaluations to report (e.g. validation and test).</param>
    public static IReadOnlyList<string> Write(string folder, string title, IReadOnlyList<(string Key, string Value)> facts,
        TrainingHistory? history, IReadOnlyList<EvaluationSummary> evaluations)
    {
        Directory.CreateDirectory(folder);
        var images = new List<(string File, string Caption)>();
        if (history is { Epochs.Count: > 0 })
        {
            images.Add((PlotLoss(folder, history), "Training and validation loss"));
            if (history.Epochs.Any(e => e.Metrics.Count > 0)) images.Add((PlotMetrics(folder, history), "Validation metrics"));
            if (TimeToAccuracy(history) is { Count: > 0 } tta) images.Add((PlotTimeToAccuracy(folder, tta), "Time to accuracy: validation accuracy against wall time since the run started"));
        }
        if (history is { LearningRates.Count: > 1 }) images.Add((PlotLr(folder, history), "Learning-rate schedule"));
        foreach (var ev in evaluations)
        {
            images.Add((PlotConfusion(folder, ev), $"Confusion matrix ({ev.Split})"));
            if (ev.TopLosses.Any(t => t.Image is not null)) images.Add((TopLossGrid(folder, ev), $"Top losses ({ev.Split})"));
        }

        var md = new StringBuilder();
        md.AppendLine(Inv, $"# {title}\n");
        foreach (var (k, v) in facts) md.AppendLine(Inv, $"- **{k}**: {v}");
        md.AppendLine();
        foreach (var ev in evaluations)
        {
            md.AppendLine(Inv, $"## {Capitalize(ev.Split)}: accuracy {ev.Accuracy * 100:0.00}%, macro-F1 {ev.MacroF1:0.0000}, loss {ev.Loss:0.0000} ({ev.Count:N0} items)\n");
            md.AppendLine("| class | precision | recall | F1 | support |\n| --- | ---: | ---: | ---: | ---: |");
            foreach (var c in ev.PerClass) md.AppendLine(Inv, $"| {c.Class} | {c.Precision:0.000} | {c.Recall:0.000} | {c.F1:0.000} | {c.Support} |");
            var confused = ev.MostConfused();
            if (confused.Count > 0)
            {
                md.AppendLine("\nMost confused (actual → predicted): " + string.Join("; ", confused.Select(c => $"{c.Actual} → {c.Predicted} ({c.Count})")));
            }
            if (ev.TopLosses.Count > 0)
            {
                md.AppendLine("\n| top loss | actual | predicted | p(predicted) | source |\n| ---: | --- | --- | ---: | --- |");
                foreach (var t in ev.TopLosses)
                    md.AppendLine(Inv, $"| {t.Loss:0.000} | {t.Actual} | {t.Predicted} | {t.Probability:0.000} | {EscapeCell(t.Text is null ? t.Source : $"{t.Source}: {Snippet(t.Text)}")} |");
            }
            md.AppendLine();
        }
        if (history is { Epochs.Count: > 0 })
        {
            var metricNames = history.Epochs.SelectMany(e => e.Metrics.Keys).Distinct().ToList();
            md.AppendLine("## Epochs\n");
            md.AppendLine("| epoch | phase | train loss | val loss | " + string.Join(" | ", metricNames) + " | seconds | since start |");
            md.AppendLine("| ---: | --- | ---: | ---: | " + string.Join(" | ", metricNames.Select(_ => "---:")) + " | ---: | ---: |");
            foreach (var e in history.Epochs)
            {
                string val = e.ValLoss is { } v ? v.ToString("0.0000", Inv) : "-";
                string metrics = string.Join(" | ", metricNames.Select(m => e.Metrics.TryGetValue(m, out var x) ? x.ToString("0.0000", Inv) : "-"));
                string since = e.WallSeconds is { } w ? TimeSpan.FromSeconds(Math.Round(w)).ToString(@"h\:mm\:ss", Inv) : "-";
                md.AppendLine(Inv, $"| {e.Epoch} | {e.Phase} | {e.TrainLoss:0.0000} | {val} | {metrics} | {e.Seconds:0.0} | {since} |");
            }
            md.AppendLine();
        }
        foreach (var (file, caption) in images) md.AppendLine(Inv, $"![{caption}]({file})\n");

        var mdPath = Path.Combine(folder, "report.md");
        File.WriteAllText(mdPath, md.ToString());
        var htmlPath = Path.Combine(folder, "report.html");
        File.WriteAllText(htmlPath, ToHtml(title, facts, evaluations, images, md.ToString()));
        return [mdPath, htmlPath, .. images.Select(i => Path.Combine(folder, i.File))];
    }

    private static string PlotLoss(string folder, TrainingHistory h)
    {
        if (h.Epochs.Count == 1 && h.StepLosses.Count > 1) return PlotStepLoss(folder, h);
        var plt = new Plot();
        double[] xs = h.Epochs.Select(e => (double)e.Epoch).ToArray();
        if (h.StepLosses.Count > 1)
        {
            long maxStep = h.StepLosses.Max(s => s.Step);
            double perEpoch = maxStep / (double)h.Epochs.Count;
            var steps = plt.Add.ScatterLine(h.StepLosses.Select(s => s.Step / perEpoch).ToArray(), h.StepLosses.Select(s => s.Loss).ToArray());
            steps.LegendText = "train (per step)";
            steps.LineWidth = 1;
            steps.Color = Colors.Gray.WithAlpha(0.5);
        }
        var train = plt.Add.Scatter(xs, h.Epochs.Select(e => e.TrainLoss).ToArray());
        train.LegendText = "train (epoch mean)";
        var withVal = h.Epochs.Where(e => e.ValLoss is not null).ToList();
        if (withVal.Count > 0)
        {
            var val = plt.Add.Scatter(withVal.Select(e => (double)e.Epoch).ToArray(), withVal.Select(e => e.ValLoss!.Value).ToArray());
            val.LegendText = "validation";
        }
        plt.Title("Loss");
        plt.XLabel("epoch");
        plt.YLabel("cross-entropy");
        plt.ShowLegend();
        return Save(plt, folder, "loss.png");
    }

    /// <summary>
    /// One epoch of many steps (a full-batch probe): loss per step on a log scale, so the long tail after the first
    /// drop stays readable; the epoch's held-out loss is marked at the last step.
    /// </summary>
    private static string PlotStepLoss(string folder, TrainingHistory h)
    {
        var plt = new Plot();
        static double Log(double v) => Math.Log10(Math.Max(v, 1e-6));
        var steps = plt.Add.ScatterLine(h.StepLosses.Select(s => (double)s.Step).ToArray(), h.StepLosses.Select(s => Log(s.Loss)).ToArray());
        steps.LegendText = "train (per step)";
        steps.LineWidth = 1.5f;
        if (h.Epochs[0].ValLoss is { } val)
        {
            var v = plt.Add.Scatter(new[] { (double)h.StepLosses[^1].Step }, new[] { Log(val) });
            v.LegendText = "held-out (final model)";
            v.MarkerSize = 9;
        }
        plt.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic
        {
            LabelFormatter = y => Math.Pow(10, y).ToString("G2", Inv),
            MinorTickGenerator = new ScottPlot.TickGenerators.LogMinorTickGenerator(),
        };
        plt.Title("Loss");
        plt.XLabel("step");
        plt.YLabel("loss (log scale)");
        plt.ShowLegend();
        return Save(plt, folder, "loss.png");
    }

    private static string PlotMetrics(string folder, TrainingHistory h)
    {
        var plt = new Plot();
        foreach (var name in h.Epochs.SelectMany(e => e.Metrics.Keys).Distinct())
        {
            var pts = h.Epochs.Where(e => e.Metrics.ContainsKey(name)).ToList();
            var s = plt.Add.Scatter(pts.Select(e => (double)e.Epoch).ToArray(), pts.Select(e => e.Metrics[name]).ToArray());
            s.LegendText = name;
        }
        plt.Title("Validation metrics");
        plt.XLabel("epoch");
        plt.ShowLegend();
        return Save(plt, folder, "metrics.png");
    }

    /// <summary>(minutes since the run started, validation accuracy in %) per validated epoch with a known wall time.</summary>
    internal static IReadOnlyList<(double Minutes, double Accuracy)> TimeToAccuracy(TrainingHistory h) =>
        h.Epochs.Where(e => e.WallSeconds is not null && e.Metrics.ContainsKey("accuracy"))
            .Select(e => (e.WallSeconds!.Value / 60, e.Metrics["accuracy"] * 100)).ToList();

    private static string PlotTimeToAccuracy(string folder, IReadOnlyList<(double Minutes, double Accuracy)> points)
    {
        var plt = new Plot();
        var s = plt.Add.Scatter(points.Select(p => p.Minutes).ToArray(), points.Select(p => p.Accuracy).ToArray());
        s.LegendText = "validation accuracy";
        plt.Title("Time to accuracy");
        plt.XLabel("minutes since the run started");
        plt.YLabel("accuracy (%)");
        plt.Axes.SetLimitsX(0, Math.Max(points.Max(p => p.Minutes) * 1.05, 0.1));
        return Save(plt, folder, "time-to-accuracy.png");
    }

    private static string PlotLr(string folder, TrainingHistory h)
    {
        var plt = new Plot();
        var s = plt.Add.ScatterLine(h.LearningRates.Select(p => (double)p.Step).ToArray(), h.LearningRates.Select(p => p.Lr).ToArray());
        s.LegendText = "learning rate (head group)";
        plt.Title("Learning-rate schedule");
        plt.XLabel("step");
        plt.YLabel("learning rate");
        return Save(plt, folder, "lr.png");
    }

    private static string PlotConfusion(string folder, EvaluationSummary ev)
    {
        // Drawn cell by cell with SkiaSharp so rows (actual) and columns (predicted) cannot be transposed or mirrored.
        int n = ev.ClassNames.Count;
        int cellSize = n <= 12 ? 56 : Math.Max(14, 700 / n);
        const int left = 150, top = 60, legend = 90;
        using var font = new SKFont(SKTypeface.Default, n <= 12 ? 12 : 8);
        using var titleFont = new SKFont(SKTypeface.Default, 15);
        string title = $"Confusion matrix ({ev.Split}): rows = actual, columns = predicted; colour = row share, numbers = counts";
        int bottom = 140, height = top + n * cellSize + bottom;
        int width = Math.Max(left + n * cellSize + legend, (int)titleFont.MeasureText(title) + 20);
        var colormap = new ScottPlot.Colormaps.Viridis();
        using var surface = SKSurface.Create(new SKImageInfo(width, height));
        var canvas = surface.Canvas;
        canvas.Clear(SKColors.White);
        using var ink = new SKPaint { Color = SKColors.Black, IsAntialias = true };
        using var fill = new SKPaint { IsAntialias = false };
        canvas.DrawText(title, 10, 24, titleFont, ink);
        for (int a = 0; a < n; a++)
        {
            double total = Enumerable.Range(0, n).Sum(p => (double)ev.Confusion[a, p]);
            for (int p = 0; p < n; p++)
            {
                double share = total == 0 ? 0 : ev.Confusion[a, p] / total;
                var c = colormap.GetColor(share);
                fill.Color = new SKColor(c.R, c.G, c.B);
                var rect = SKRect.Create(left + p * cellSize, top + a * cellSize, cellSize, cellSize);
                canvas.DrawRect(rect, fill);
                if (n <= 30)
                {
                    using var text = new SKPaint { Color = share > 0.5 ? SKColors.Black : SKColors.White, IsAntialias = true };
                    string label = ev.Confusion[a, p].ToString(Inv);
                    float w = font.MeasureText(label);
                    canvas.DrawText(label, rect.MidX - w / 2, rect.MidY + font.Size / 3, font, text);
                }
            }
            string name = ev.ClassNames[a];
            canvas.DrawText(name, left - 8 - font.MeasureText(name), top + a * cellSize + cellSize / 2f + font.Size / 3, font, ink);
        }
        for (int p = 0; p < n; p++)
        {
            canvas.Save();
            canvas.Translate(left + p * cellSize + cellSize / 2f, top + n * cellSize + 8);
            canvas.RotateDegrees(45);
            canvas.DrawText(ev.ClassNames[p], 0, font.Size / 3, font, ink);
            canvas.Restore();
        }
        canvas.DrawText("predicted →", left + n * cellSize / 2f - 30, height - 12, font, ink);
        for (int i = 0; i <= 100; i++)
        {
            var c = colormap.GetColor(i / 100.0);
            fill.Color = new SKColor(c.R, c.G, c.B);
            canvas.DrawRect(SKRect.Create(left + n * cellSize + 20, top + (100 - i) * n * cellSize / 101f, 18, n * cellSize / 101f + 1), fill);
        }
        canvas.DrawText("100%", left + n * cellSize + 42, top + font.Size, font, ink);
        canvas.DrawText("0%", left + n * cellSize + 42, top + n * cellSize, font, ink);
        var file = $"confusion-{ev.Split}.png";
        SavePng(surface, Path.Combine(folder, file));
        return file;
    }

    private static void SavePng(SKSurface surface, string path)
    {
        using var snapshot = surface.Snapshot();
        using var data = snapshot.Encode(SKEncodedImageFormat.Png, 100);
        using var stream = File.Create(path);
        data.SaveTo(stream);
    }

    private static string TopLossGrid(string folder, EvaluationSummary ev)
    {
        var items = ev.TopLosses.Where(t => t.Image is not null).Take(16).ToList();
        const int cell = 160, thumb = 112, cols = 4;
        int rows = (items.Count + cols - 1) / cols;
        using var surface = SKSurface.Create(new SKImageInfo(cols * cell, rows * (cell + 20)));
        var canvas = surface.Canvas;
        canvas.Clear(SKColors.White);
        using var font = new SKFont(SKTypeface.Default, 11);
        using var paint = new SKPaint { Color = SKColors.Black, IsAntialias = true };
        for (int i = 0; i < items.Count; i++)
        {
            var img = items[i].Image!;
            using var bitmap = new SKBitmap(img.Width, img.Height, SKColorType.Rgba8888, SKAlphaType.Opaque);
            var px = new byte[img.Width * img.Height * 4];
            for (int j = 0; j < img.Width * img.Height; j++)
            {
                px[4 * j] = img.Rgb[3 * j]; px[4 * j + 1] = img.Rgb[3 * j + 1]; px[4 * j + 2] = img.Rgb[3 * j + 2]; px[4 * j + 3] = 255;
            }
            System.Runtime.InteropServices.Marshal.Copy(px, 0, bitmap.GetPixels(), px.Length);
            using var image = SKImage.FromBitmap(bitmap);
            float x = i % cols * cell + (cell - thumb) / 2f, y = i / cols * (cell + 20) + 6;
            canvas.DrawImage(image, new SKRect(x, y, x + thumb, y + thumb), new SKSamplingOptions(SKFilterMode.Nearest));
            float ty = y + thumb + 14;
            canvas.DrawText($"{items[i].Actual} → {items[i].Predicted}", i % cols * cell + 6, ty, font, paint);
            canvas.DrawText(string.Create(Inv, $"loss {items[i].Loss:0.00}  p={items[i].Probability:0.00}"), i % cols * cell + 6, ty + 14, font, paint);
        }
        var file = $"top-losses-{ev.Split}.png";
        SavePng(surface, Path.Combine(folder, file));
        return file;
    }

    private static string Save(Plot plt, string folder, string file, int width = 800, int height = 500)
    {
        plt.SavePng(Path.Combine(folder, file), width, height);
        return file;
    }

    private static string ToHtml(string title, IReadOnlyList<(string Key, string Value)> facts, IReadOnlyList<EvaluationSummary> evaluations,
        List<(string File, string Caption)> images, string markdown)
    {
        var sb = new StringBuilder();
        sb.Append(Inv, $"<!doctype html><html><head><meta charset=\"utf-8\"><title>{WebUtility.HtmlEncode(title)}</title>");
        sb.Append("<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}td:first-child,th:first-child{text-align:left}img{max-width:100%;border:1px solid #eee;margin:.5em 0}pre{white-space:pre-wrap}</style></head><body>");
        sb.Append(Inv, $"<h1>{WebUtility.HtmlEncode(title)}</h1><ul>");
        foreach (var (k, v) in facts) sb.Append(Inv, $"<li><b>{WebUtility.HtmlEncode(k)}</b>: {WebUtility.HtmlEncode(v)}</li>");
        sb.Append("</ul>");
        foreach (var ev in evaluations)
        {
            sb.Append(Inv, $"<h2>{WebUtility.HtmlEncode(Capitalize(ev.Split))}: accuracy {ev.Accuracy * 100:0.00}%, macro-F1 {ev.MacroF1:0.0000}</h2>");
            sb.Append("<table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>");
            foreach (var c in ev.PerClass)
                sb.Append(Inv, $"<tr><td>{WebUtility.HtmlEncode(c.Class)}</td><td>{c.Precision:0.000}</td><td>{c.Recall:0.000}</td><td>{c.F1:0.000}</td><td>{c.Support}</td></tr>");
            sb.Append("</table>");
            var texts = ev.TopLosses.Where(t => t.Text is not null).ToList();
            if (texts.Count > 0)
            {
                sb.Append("<h3>Top losses</h3><table><tr><th>loss</th><th>actual → predicted</th><th>text</th></tr>");
                foreach (var t in texts)
                    sb.Append(Inv, $"<tr><td>{t.Loss:0.000}</td><td>{WebUtility.HtmlEncode(t.Actual)} → {WebUtility.HtmlEncode(t.Predicted)}</td><td style=\"text-align:left\">{WebUtility.HtmlEncode(Snippet(t.Text!))}</td></tr>");
                sb.Append("</table>");
            }
        }
        foreach (var (file, caption) in images)
            sb.Append(Inv, $"<h3>{WebUtility.HtmlEncode(caption)}</h3><img src=\"{WebUtility.HtmlEncode(file)}\" alt=\"{WebUtility.HtmlEncode(caption)}\">");
        sb.Append("<details><summary>Markdown report</summary><pre>").Append(WebUtility.HtmlEncode(markdown)).Append("</pre></details></body></html>");
        return sb.ToString();
    }

    private static string Snippet(string text)
    {
        var oneLine = string.Join(' ', text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));
        return oneLine.Length <= 160 ? oneLine : oneLine[..157] + "…";
    }

    private static string EscapeCell(string s) => s.Replace("|", "\\|", StringComparison.Ordinal);

    private static string Capitalize(string s) => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..];
}
