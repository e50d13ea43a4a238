using System.CommandLine;
using System.Diagnostics;
using TorchSharp;

namespace ModelZoo.Cli.Commands;

/// <summary><c>zoo smoke</c>: prints the catalog size and runs a small model forward and backward on the chosen device.</summary>
internal static class SmokeCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Catalog model to run.", DefaultValueFactory = _ => "resnet18" };
        var size = new Option<int>("--size") { Description = "Input side in pixels.", DefaultValueFactory = _ => 64 };
        var device = new Option<string>("--device") { Description = "auto, cpu, cuda or cuda:N.", DefaultValueFactory = _ => "auto" };
        var command = new Command("smoke", "Quick health check: list the catalog, run one model forward and backward.") { model, size, device };
        command.SetAction(r =>
        {
            var choice = DeviceSelector.Resolve(r.GetValue(device));
            Console.WriteLine($"device: {choice.Reason}");
            Console.WriteLine($"catalog: {Zoo.Catalog.Entries.Count} models: {string.Join(", ", Zoo.Catalog.Entries.Select(e => e.Name))}");
            torch.manual_seed(0);
            var sw = Stopwatch.StartNew();
            using var net = Zoo.Create(r.GetValue(model)!, new ModelOptions(NumClasses: 10));
            net.to(choice.Device);
            using var scope = torch.NewDisposeScope();
            var x = torch.randn(2, 3, r.GetValue(size), r.GetValue(size), device: choice.Device);
            var logits = net.call(x);
            var loss = torch.nn.functional.cross_entropy(logits, torch.tensor(new long[] { 1, 7 }, device: choice.Device));
            loss.backward();
            Console.WriteLine($"{r.GetValue(model)}: input [{string.Join(", ", x.shape)}] → logits [{string.Join(", ", logits.shape)}], " +
                $"loss {loss.item<float>():0.0000}, {net.CountParameters():N0} parameters, forward+backward {sw.ElapsedMilliseconds} ms");
            return 0;
        });
        return command;
    }
}
