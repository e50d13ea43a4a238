using System.Globalization;
using System.Text;
using System.Text.Json;
using Spectre.Console;

namespace ModelZoo.FineTune;

/// <summary>
/// Appends each epoch's metrics to <c>metrics.jsonl</c> (one JSON object per line) and <c>metrics.csv</c> (header
/// written once, columns fixed by the first epoch) in a run folder.
/// </summary>
public sealed class MetricsFileLogger(string folder) : Callback
{
    private string[]? _columns;

    /// <inheritdoc />
    public override int Order => 50;

    /// <summary>Path of the JSONL file.</summary>
    public string JsonlPath => Path.Combine(folder, "metrics.jsonl");

    /// <summary>Path of the CSV file.</summary>
    public string CsvPath => Path.Combine(folder, "metrics.csv");

    /// <inheritdoc />
    public override void AfterEpoch(Learner learner)
    {
        Directory.CreateDirectory(folder);
        var m = learner.EpochMetrics;
        File.AppendAllText(JsonlPath, JsonSerializer.Serialize(m, Json.Options) + "\n");
        if (_columns is null)
        {
            if (File.Exists(CsvPath) && new FileInfo(CsvPath).Length > 0)
                _columns = File.ReadLines(CsvPath).First().Split(',');
            else
            {
                _columns = [.. m.Keys];
                File.AppendAllText(CsvPath, string.Join(',', _columns) + "\n");
            }
        }
        File.AppendAllText(CsvPath, CsvLine(_columns, m) + "\n");
    }

    private static string CsvLine(string[] columns, IReadOnlyDictionary<string, double> m) =>
        string.Join(',', columns.Select(c => m.TryGetValue(c, out var v) ? v.ToString("R", CultureInfo.InvariantCulture) : ""));

    /// <summary>Rewrites <c>metrics.jsonl</c>/<c>metrics.csv</c> in <paramref name="folder"/> to hold exactly <paramref name="history"/> (used on resume), each file atomically.</summary>
    internal static void Rewrite(string folder, IReadOnlyList<IReadOnlyDictionary<string, double>> history)
    {
        var logger = new MetricsFileLogger(folder);
        if (!File.Exists(logger.JsonlPath) && !File.Exists(logger.CsvPath) && history.Count == 0) return;
        Directory.CreateDirectory(folder);
        var jsonl = string.Concat(history.Select(m => JsonSerializer.Serialize(m, Json.Options) + "\n"));
        string csv = "";
        if (history.Count > 0)
        {
            var columns = File.Exists(logger.CsvPath) && new FileInfo(logger.CsvPath).Length > 0 ? File.ReadLines(logger.CsvPath).First().Split(',') : [.. history[0].Keys];
            csv = string.Join(',', columns) + "\n" + string.Concat(history.Select(m => CsvLine(columns, m) + "\n"));
        }
        foreach (var (path, text) in new[] { (logger.JsonlPath, jsonl), (logger.CsvPath, csv) })
        {
            var tmp = path + "." + Environment.ProcessId + ".tmp";
            File.WriteAllText(tmp, text);
            File.Move(tmp, path, overwrite: true);
        }
    }
}

/// <summary>
/// Progress per epoch: on an interactive terminal a Spectre.Console bar with smoothed loss, items/s and ETA; when
/// output is redirected (CI, files, tests) one line per epoch instead.
/// </summary>
public sealed class ProgressReporter : Callback
{
    private readonly bool _interactive;
    private Thread? _thread;
    private ProgressTask? _task;
    private ManualResetEventSlim? _done;
    private ManualResetEventSlim? _ready;
    private long _items;
    private DateTime _start;

    /// <summary>Creates a reporter; <paramref name="interactive"/> null decides from the console (bar only when stdout is a terminal).</summary>
    public ProgressReporter(bool? interactive = null)
    {
        _interactive = interactive ?? (!Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive);
    }

    /// <inheritdoc />
    public override int Order => 90;

    /// <inheritdoc />
    public override void BeforeTrain(Learner learner)
    {
        _items = 0;
        _start = DateTime.UtcNow;
        if (!_interactive) return;
        _done = new ManualResetEventSlim();
        _ready = new ManualResetEventSlim();
        long total = learner.BatchesPerEpoch;
        string title = $"epoch {learner.Epoch + 1}/{learner.Epochs}";
        _thread = new Thread(() =>
        {
            try
            {
            AnsiConsole.Progress().AutoClear(false).HideCompleted(false)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
                .Start(ctx =>
                {
                    _task = ctx.AddTask(title, maxValue: Math.Max(1, total));
                    _ready.Set();
                    _done.Wait();
                    _task.Value = _task.MaxValue;
                    ctx.Refresh();
                });
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // A console that cannot render a live display must not break training: fall back to epoch lines.
                _task = null;
                _ready.Set();
                Console.Error.WriteLine($"Progress bar disabled: {e.Message}");
            }
        }) { IsBackground = true, Name = "training-progress" };
        _thread.Start();
        _ready.Wait(TimeSpan.FromSeconds(5));
    }

    /// <inheritdoc />
    public override void AfterBatch(Learner learner)
    {
        _items += learner.CurrentBatchSize;
        if (_task is null) return;
        double secs = Math.Max(1e-9, (DateTime.UtcNow - _start).TotalSeconds);
        _task.Description = string.Create(CultureInfo.InvariantCulture,
            $"epoch {learner.Epoch + 1}/{learner.Epochs} loss {learner.SmoothLoss:F4} {_items / secs:F0} items/s");
        _task.Increment(1);
    }

    /// <inheritdoc />
    public override void AfterTrain(Learner learner) => Finish();

    /// <inheritdoc />
    public override void AfterFit(Learner learner) => Finish();

    /// <inheritdoc />
    public override void AfterEpoch(Learner learner)
    {
        Finish();
        var sb = new StringBuilder();
        foreach (var (k, v) in learner.EpochMetrics)
        {
            if (sb.Length > 0) sb.Append("  ");
            sb.Append(k).Append(' ').Append(k == "epoch" ? v.ToString(CultureInfo.InvariantCulture) : v.ToString("G5", CultureInfo.InvariantCulture));
        }
        learner.Log(sb.ToString());
    }

    private void Finish()
    {
        if (_thread is null) return;
        _done!.Set();
        _thread.Join();
        _thread = null;
        _task = null;
        _done.Dispose();
        _ready!.Dispose();
    }
}
