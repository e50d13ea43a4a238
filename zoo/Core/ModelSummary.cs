using System.Globalization;
using System.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo;

/// <summary>Builds the text table behind <see cref="ZooModel.Summary"/>.</summary>
internal static class ModelSummary
{
    public static string Build(ZooModel model, long[] inputShape, int maxDepth)
    {
        var shapes = new Dictionary<nn.Module, string>(ReferenceEqualityComparer.Instance);
        var hooks = new List<Action>();
        foreach (var (_, m) in model.named_modules())
        {
            if (m is not nn.Module<Tensor, Tensor> mm) continue;
            var h = mm.register_forward_hook((mod, _, output) =>
            {
                shapes.TryAdd(mod, "[" + string.Join(", ", output.shape) + "]");
                return output;
            });
            hooks.Add(h.remove);
        }
        bool wasTraining = model.training;
        string? failure = null;
        try
        {
            model.eval();
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var device = model.parameters().FirstOrDefault()?.device ?? CPU;
            var output = model.forward(model.InputOfShape(inputShape, device));
            shapes[model] = "[" + string.Join(", ", output.shape) + "]";
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            failure = e.Message.Split('\n')[0];
        }
        finally
        {
            foreach (var remove in hooks) remove();
            if (wasTraining) model.train();
        }

        var rows = new List<string[]> { new[] { "Layer (path)", "Type", "Output shape", "Params", "Trainable" } };
        foreach (var (path, m) in model.named_modules())
        {
            if (path.Length == 0) continue;
            int depth = path.Count(c => c == '.');
            if (depth >= maxDepth) continue;
            long own = m.named_parameters(recurse: true).Sum(p => p.parameter.numel());
            long trainable = m.named_parameters(recurse: true).Where(p => p.parameter.requires_grad).Sum(p => p.parameter.numel());
            rows.Add([new string(' ', 2 * depth) + path, m.GetType().Name, shapes.GetValueOrDefault(m, "-"), Num(own), Num(trainable)]);
        }
        var widths = Enumerable.Range(0, 5).Select(i => rows.Max(r => r[i].Length)).ToArray();
        var sb = new StringBuilder();
        string Line(string[] r) => string.Join("  ", r.Select((c, i) => i >= 3 ? c.PadLeft(widths[i]) : c.PadRight(widths[i]))).TrimEnd();
        sb.AppendLine(CultureInfo.InvariantCulture, $"{model.Entry?.Name ?? model.GetType().Name} — input [{string.Join(", ", inputShape)}] → {shapes.GetValueOrDefault(model, "?")}");
        sb.AppendLine(Line(rows[0]));
        sb.AppendLine(new string('-', widths.Sum() + 8));
        foreach (var r in rows.Skip(1)) sb.AppendLine(Line(r));
        sb.AppendLine(new string('-', widths.Sum() + 8));
        long total = model.CountParameters(), train = model.CountParameters(trainableOnly: true);
        sb.AppendLine(CultureInfo.InvariantCulture, $"Total params: {Num(total)}   Trainable: {Num(train)}   Frozen: {Num(total - train)}");
        if (failure is not null) sb.AppendLine(CultureInfo.InvariantCulture, $"Forward failed for this input: {failure}");
        return sb.ToString();
    }

    private static string Num(long n) => n.ToString("N0", CultureInfo.InvariantCulture);
}
