using System.CommandLine;

namespace ModelZoo.Cli.Commands;

/// <summary>The verbs of the <c>zoo</c> command, in the order <c>--help</c> lists them.</summary>
internal static class CommandRegistry
{
    public static IEnumerable<Command> All() =>
    [
        CatalogCommands.List(),
        CatalogCommands.Info(),
        FetchCommand.Create(),
        CacheCommand.Create(),
        TrainCommand.Create(),
        EvalCommand.Create(),
        PredictCommand.Create(),
        ExportCommand.Create(),
        TorchrunCommands.Import(),
        QuickstartCommand.Create(),
        DoctorCommand.Create(),
        SmokeCommand.Create(),
    ];
}
