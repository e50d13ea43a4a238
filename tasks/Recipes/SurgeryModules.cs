using System.Globalization;
using System.Text.RegularExpressions;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tasks.Recipes;

/// <summary>The modules a recipe's surgery steps can name: <c>identity</c>, <c>relu</c>, <c>gelu</c>, <c>silu</c>, <c>dropout(p)</c>, ….</summary>
public static partial class SurgeryModules
{
    /// <summary>Accepted spellings.</summary>
    public static readonly IReadOnlyList<string> Names = ["identity", "relu", "gelu", "silu", "tanh", "sigmoid", "dropout(p)", "dropout2d(p)"];

    /// <summary>Throws a <see cref="RecipeException"/> prefixed with <paramref name="where"/> if <paramref name="spec"/> is not a known module.</summary>
    public static void Check(string spec, string where)
    {
        if (!TryParse(spec, out _, out var error)) throw new RecipeException($"{where}: {error}");
    }

    /// <summary>Builds the module <paramref name="spec"/> names.</summary>
    public static nn.Module<Tensor, Tensor> Create(string spec) =>
        TryParse(spec, out var factory, out var error) ? factory!() : throw new RecipeException(error!);

    private static bool TryParse(string spec, out Func<nn.Module<Tensor, Tensor>>? factory, out string? error)
    {
        var s = spec.Trim().ToLowerInvariant();
        error = null;
        factory = s switch
        {
            "identity" => () => nn.Identity(),
            "relu" => () => nn.ReLU(),
            "gelu" => () => nn.GELU(),
            "silu" => () => nn.SiLU(),
            "tanh" => () => nn.Tanh(),
            "sigmoid" => () => nn.Sigmoid(),
            _ => null,
        };
        if (factory is not null) return true;
        var m = DropoutPattern().Match(s);
        if (m.Success && double.TryParse(m.Groups[2].Value, NumberStyles.Float, CultureInfo.InvariantCulture, out double p) && p is >= 0 and < 1)
        {
            factory = m.Groups[1].Value == "dropout2d" ? () => nn.Dropout2d(p) : () => nn.Dropout(p);
            return true;
        }
        error = $"unknown module '{spec}'; use one of {string.Join(", ", Names)} (p between 0 and 1).";
        return false;
    }

    [GeneratedRegex(@"^(dropout|dropout2d)\(\s*([0-9.eE+-]+)\s*\)$")]
    private static partial Regex DropoutPattern();
}
