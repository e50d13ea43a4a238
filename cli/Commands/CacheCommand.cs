using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using ModelZoo.Weights.Store;
using Spectre.Console;

namespace ModelZoo.Cli.Commands;

/// <summary><c>zoo cache list|verify|clear</c>: the weight cache and its manifest.</summary>
internal static class CacheCommand
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    public static Command Create()
    {
        var command = new Command("cache", "Manage the weight cache (ZOO_HOME, else $XDG_CACHE_HOME/modelzoo, else ~/.cache/modelzoo).");
        command.Subcommands.Add(List());
        command.Subcommands.Add(Verify());
        command.Subcommands.Add(Clear());
        return command;
    }

    private static Command List()
    {
        var json = new Option<bool>("--json") { Description = "Print JSON instead of a table." };
        var command = new Command("list", "List cached weight files with source, size and SHA-256.") { json };
        command.SetAction(r =>
        {
            var store = new WeightStore();
            var files = store.List();
            if (r.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(new { store.CacheRoot, Files = files }, Json));
                return 0;
            }
            AnsiConsole.MarkupLine($"[grey]cache: {Markup.Escape(store.CacheRoot)}[/]");
            var table = new Table().Border(TableBorder.Simple);
            foreach (var c in new[] { "File", "Model:tag", "Size", "SHA-256", "Source", "Added (UTC)" }) table.AddColumn(c);
            foreach (var f in files)
                table.AddRow(Markup.Escape(f.Path), Markup.Escape(f.Model is null ? "-" : $"{f.Model}:{f.Tag}"), FetchCommand.Size(f.Size),
                    f.Sha256[..12] + "…", Markup.Escape(f.Source), f.Added.UtcDateTime.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture));
            AnsiConsole.Write(table);
            AnsiConsole.MarkupLine($"[grey]{files.Count} file(s), {FetchCommand.Size(files.Sum(f => f.Size))}.[/]");
            return 0;
        });
        return command;
    }

    private static Command Verify()
    {
        var command = new Command("verify", "Re-hash every cached file against the manifest; exit code 1 if any is missing or corrupt.");
        command.SetAction(_ =>
        {
            var store = new WeightStore();
            var checks = store.Verify();
            AnsiConsole.MarkupLine($"[grey]cache: {Markup.Escape(store.CacheRoot)}[/]");
            foreach (var c in checks)
            {
                var color = c.State switch { CacheFileState.Ok => "green", CacheFileState.Untracked => "yellow", _ => "red" };
                AnsiConsole.MarkupLine($"[{color}]{c.State.ToString().ToLowerInvariant(),-9}[/] {Markup.Escape(c.Path)}{(c.Detail is null ? "" : " (" + Markup.Escape(c.Detail) + ")")}");
            }
            int bad = checks.Count(c => c.State is CacheFileState.Missing or CacheFileState.Corrupt);
            AnsiConsole.MarkupLine(bad == 0 ? $"[green]{checks.Count(c => c.State == CacheFileState.Ok)} file(s) ok.[/]"
                : $"[red]{bad} file(s) missing or corrupt[/]: 'zoo cache clear MODEL' then 'zoo fetch MODEL' to get them again.");
            return bad == 0 ? 0 : 1;
        });
        return command;
    }

    private static Command Clear()
    {
        var model = new Argument<string?>("model") { Description = "Only this model's files (default: all).", Arity = ArgumentArity.ZeroOrOne };
        var command = new Command("clear", "Delete cached weight files (all, or one model's) and their manifest entries.") { model };
        command.SetAction(r =>
        {
            var store = new WeightStore();
            int n = store.Clear(r.GetValue(model));
            AnsiConsole.MarkupLine($"Deleted {n} file(s) from {Markup.Escape(store.CacheRoot)}.");
            return 0;
        });
        return command;
    }
}
