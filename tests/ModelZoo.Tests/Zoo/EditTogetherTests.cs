using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Zoo;

public class EditTogetherTests
{
    private static ZooModel Tiny() => ModelZoo.Zoo.Create("resnet18", new ModelOptions(NumClasses: 5));

    [Fact]
    public void DetachingAPrefixRunsTheRestOnPrefixOutputs()
    {
        using var scope = NewDisposeScope();
        manual_seed(1);
        var model = Tiny();
        model.eval();
        var x = rand(2, 3, 64, 64);
        Tensor full, prefix;
        using (no_grad())
        {
            full = model.call(x);
            prefix = x;
            foreach (var name in new[] { "conv1", "bn1", "relu", "maxpool", "layer1" })
                prefix = ((nn.Module<Tensor, Tensor>)model.GetChild(name)).call(prefix);
        }
        var kept = new[] { "conv1", "bn1", "relu", "maxpool", "layer1" }.ToDictionary(n => n, n => (nn.Module<Tensor, Tensor>)model.GetChild(n));
        model.EditTogether(m => { foreach (var n in kept.Keys) m.Replace(n, nn.Identity()); }, [1, 64, 16, 16]);
        using (no_grad()) Assert.True(model.call(prefix).allclose(full, rtol: 1e-5, atol: 1e-5));
        model.EditTogether(m => { foreach (var (n, mod) in kept) m.Replace(n, mod); });
        using (no_grad()) Assert.True(model.call(x).allclose(full, rtol: 1e-5, atol: 1e-5));
    }

    [Fact]
    public void AFailingCombinationIsUndoneWhole()
    {
        using var scope = NewDisposeScope();
        var model = Tiny();
        var conv1 = model.GetChild("conv1");
        var e = Assert.Throws<SurgeryException>(() => model.EditTogether(m =>
        {
            m.Replace("conv1", nn.Identity());
            m.Replace("layer1", nn.Identity());
        }));
        Assert.Contains("2 edits together break the model", e.Message);
        Assert.Same(conv1, model.GetChild("conv1"));
        Assert.IsNotType<TorchSharp.Modules.Identity>(model.GetChild("layer1"));
        model.DryRun();
    }
}
