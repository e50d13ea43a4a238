using System.CommandLine;

namespace ModelZoo.Cli.Commands;

/// <summary>Verbs whose implementation has not landed yet: each says so plainly and exits with code 2.</summary>
internal static class PendingCommands
{
    public static Command Train() => Pending("train", "Run a YAML training recipe.");
    public static Command Eval() => Pending("eval", "Evaluate a checkpoint on a dataset.");
    public static Command Predict() => Pending("predict", "Predict classes for images or texts with a checkpoint.");
    public static Command Export() => Pending("export", "Export a checkpoint's weights to safetensors or .pth.");
    public static Command Quickstart() => Pending("quickstart", "From a dataset to a trained classifier in one command.");

    private static Command Pending(string name, string description)
    {
        var command = new Command(name, description + " (not available in this build yet)");
        var rest = new Argument<string[]>("args") { Arity = ArgumentArity.ZeroOrMore };
        command.Arguments.Add(rest);
        command.SetAction(_ =>
        {
            Console.Error.WriteLine($"'zoo {name}' is not available in this build yet. Run 'zoo --help' for the verbs that are.");
            return 2;
        });
        return command;
    }
}
