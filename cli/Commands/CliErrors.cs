using ModelZoo.Tasks.Recipes;

namespace ModelZoo.Cli.Commands;

/// <summary>Turns the expected failures of a verb (bad recipe, missing file, wrong input) into one message on stderr and exit code 1.</summary>
internal static class CliErrors
{
    public static int Run(string verb, Func<int> action)
    {
        try
        {
            return action();
        }
        catch (Exception e) when (e is RecipeException or FileNotFoundException or DirectoryNotFoundException or InvalidDataException
                                   or ArgumentException or KeyNotFoundException or NotSupportedException
                                   or IOException or UnauthorizedAccessException or ModelZoo.FineTune.TrainingDivergedException or ModelZoo.FineTune.LabelOutOfRangeException)
        {
            Console.Error.WriteLine($"zoo {verb}: {e.Message}");
            return 1;
        }
    }
}
