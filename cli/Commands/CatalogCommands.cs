using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Spectre.Console;

namespace ModelZoo.Cli.Commands;

/// <summary><c>zoo list</c> and <c>zoo info</c>: the catalog.</summary>
internal static class CatalogCommands
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    public static Command List()
    {
        var task = new Option<ModelTask?>("--task") { Description = "Only models for this task: vision or nlp." };
        var filter = new Option<string?>("--filter") { Description = "Only names matching this glob, e.g. 'resnet*'." };
        var json = new Option<bool>("--json") { Description = "Print JSON instead of a table." };
        var command = new Command("list", "List the models in the catalog.") { task, filter, json };
        command.SetAction(r =>
        {
            var entries = Zoo.Catalog.Filter(r.GetValue(task), r.GetValue(filter)).ToList();
            if (r.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(entries.Select(Summary), Json));
                return 0;
            }
            var table = new Table().Border(TableBorder.Simple);
            foreach (var c in new[] { "Name", "Family", "Task", "Params", "Input", "Weights (default first)" }) table.AddColumn(c);
            foreach (var e in entries)
                table.AddRow(Markup.Escape(e.Name), e.Family, e.Task.ToString().ToLowerInvariant(),
                    (e.ParameterCount / 1e6).ToString("0.0", CultureInfo.InvariantCulture) + "M",
                    string.Join("×", e.InputSize), Markup.Escape(string.Join(", ", Tags(e))));
            AnsiConsole.Write(table);
            AnsiConsole.MarkupLine($"[grey]{entries.Count} model(s).[/]");
            return 0;
        });
        return command;
    }

    public static Command Info()
    {
        var name = new Argument<string>("name") { Description = "Catalog name, e.g. resnet50." };
        var json = new Option<bool>("--json") { Description = "Print JSON instead of text." };
        var command = new Command("info", "Show one model: configuration, parameters, weight tags, preprocessing, metrics.") { name, json };
        command.SetAction(r =>
        {
            var e = Zoo.Catalog.Get(r.GetValue(name)!);
            if (r.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(Detail(e), Json));
                return 0;
            }
            AnsiConsole.MarkupLine($"[bold]{Markup.Escape(e.Name)}[/]  family [aqua]{e.Family}[/]  task {e.Task.ToString().ToLowerInvariant()}");
            if (e.Description is not null) AnsiConsole.WriteLine(e.Description);
            AnsiConsole.WriteLine($"config:     {e.Config}");
            AnsiConsole.WriteLine($"parameters: {e.ParameterCount.ToString("N0", CultureInfo.InvariantCulture)}");
            AnsiConsole.WriteLine($"input:      {string.Join("×", e.InputSize)}");
            foreach (var w in e.Weights)
            {
                AnsiConsole.MarkupLine($"\n[bold]weights {Markup.Escape(w.Tag)}[/]{(w == e.Default ? " [green](default)[/]" : "")}");
                if (w.Description is not null) AnsiConsole.WriteLine($"  {w.Description}");
                AnsiConsole.WriteLine($"  format:        {w.Format}");
                foreach (var s in w.Sources) AnsiConsole.WriteLine($"  source:        {s}");
                if (w.Sha256 is not null) AnsiConsole.WriteLine($"  sha256:        {w.Sha256}");
                if (w.HashPrefix is not null) AnsiConsole.WriteLine($"  hash prefix:   {w.HashPrefix}");
                AnsiConsole.WriteLine($"  license:       {w.License}");
                AnsiConsole.WriteLine($"  classes:       {w.NumClasses}");
                if (w.Preprocessing is not null) AnsiConsole.WriteLine($"  preprocessing: {w.Preprocessing}");
                if (w.Metrics is not null)
                    foreach (var (k, v) in w.Metrics) AnsiConsole.WriteLine($"  {k}: {v.ToString(CultureInfo.InvariantCulture)}");
            }
            return 0;
        });
        return command;
    }

    private static IEnumerable<string> Tags(ModelEntry e) =>
        e.Default is { } d ? e.Weights.Where(w => w != d).Select(w => w.Tag).Prepend(d.Tag) : [];

    private static object Summary(ModelEntry e) => new
    {
        e.Name, e.Family, Task = e.Task.ToString().ToLowerInvariant(), e.ParameterCount, e.InputSize,
        DefaultTag = e.Default?.Tag, Tags = e.Weights.Select(w => w.Tag),
    };

    private static object Detail(ModelEntry e) => new
    {
        e.Name, e.Family, Task = e.Task.ToString().ToLowerInvariant(), Config = e.Config.ToString(), e.ParameterCount, e.InputSize,
        DefaultTag = e.Default?.Tag, e.Description,
        Weights = e.Weights.Select(w => new
        {
            w.Tag, Format = w.Format.ToString(), Sources = w.Sources.Select(s => s.ToString()), w.Sha256, w.HashPrefix, w.License,
            w.NumClasses, Preprocessing = w.Preprocessing, w.Metrics, w.Description, LabelCount = w.Labels?.Count ?? 0,
        }),
    };
}
