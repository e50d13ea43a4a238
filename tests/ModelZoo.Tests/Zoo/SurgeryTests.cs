using ModelZoo.Models.Vision;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Zoo;

/// <summary>Surgery by path, freezing with the BatchNorm policy, summary, head replacement and in_chans on a small ResNet.</summary>
public class SurgeryTests
{
    private static ResNet Tiny(int[]? layers = null, int classes = 10, int inChans = 3)
    {
        var m = new ResNet(new ResNetConfig("basic", layers ?? [1, 1, 1, 1]), new ModelOptions(classes, inChans));
        m.eval();
        return m;
    }

    /// <summary>Multiplies by a constant.</summary>
    private sealed class Scale(double factor) : nn.Module<Tensor, Tensor>("Scale")
    {
        public override Tensor forward(Tensor x) => x * factor;
    }

    private static Tensor Out(ZooModel m, Tensor x)
    {
        using var _ = no_grad();
        return m.call(x);
    }

    [Fact]
    public void ReplaceTakesEffectAndReplacingBackRestoresTheOutput()
    {
        using var scope = NewDisposeScope();
        var m = Tiny();
        var x = randn(2, 3, 64, 64);
        var y0 = Out(m, x);
        var relu = m.Get("layer4.0.relu");
        m.Replace("layer4.0.relu", nn.GELU());
        Assert.IsType<GELU>(m.Get("layer4.0.relu"));
        Assert.False(y0.allclose(Out(m, x)));
        m.Replace("layer4.0.relu", (nn.Module<Tensor, Tensor>)relu);
        Assert.True(y0.allclose(Out(m, x)));
    }

    [Fact]
    public void InsertAfterAndBeforeRunInTheForwardPass()
    {
        using var scope = NewDisposeScope();
        var m = Tiny();
        var x = randn(2, 3, 64, 64);
        var bias = ((Linear)m.Get("fc")).bias!;
        m.InsertAfter("avgpool", "zero", new Scale(0));
        Assert.True(Out(m, x).allclose(bias.unsqueeze(0).expand(2, -1)));
        Assert.Contains("zero", m.state_dict().Keys.Select(k => k.Split('.')[0]).Concat(m.named_modules().Select(n => n.name)));
        m.Remove("zero");
        var y = Out(m, x);
        m.InsertBefore("fc", "double", new Scale(2));
        var features = m.ForwardHead(m.ForwardFeatures(x), preLogits: true);
        using (no_grad())
            Assert.True(Out(m, x).allclose(((Linear)m.Get("fc")).call(features * 2), atol: 1e-5));
        Assert.False(y.allclose(Out(m, x)));
    }

    [Fact]
    public void RemoveInsideASequenceTakesEffect()
    {
        using var scope = NewDisposeScope();
        var m = Tiny([1, 1, 1, 2]);
        var x = randn(2, 3, 64, 64);
        var y0 = Out(m, x);
        m.Remove("layer4.1");
        Assert.Equal(["0"], ((ZooSequential)m.Get("layer4")).ChildNames);
        Assert.DoesNotContain(m.state_dict().Keys, k => k.StartsWith("layer4.1.", StringComparison.Ordinal));
        Assert.False(y0.allclose(Out(m, x)));
    }

    [Fact]
    public void ShapeBreakingEditsThrowNamingPathAndShapesAndAreUndone()
    {
        using var scope = NewDisposeScope();
        var m = Tiny();
        var x = randn(2, 3, 64, 64);
        var y0 = Out(m, x);
        var e = Assert.Throws<SurgeryException>(() => m.Replace("fc", nn.Linear(3, 10)));
        Assert.Contains("'fc'", e.Message, StringComparison.Ordinal);
        Assert.Contains("[1, 512] → [1, 10]", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<SurgeryException>(() => m.Remove("layer4.0"));
        Assert.Contains("layer4.0", e.Message, StringComparison.Ordinal);
        Assert.Contains("[1, 256, 4, 4] → [1, 512, 2, 2]", e.Message, StringComparison.Ordinal);
        Assert.Throws<SurgeryException>(() => m.InsertAfter("layer2", "bad", nn.Conv2d(3, 3, 1)));
        Assert.Throws<InvalidOperationException>(() => m.Remove("conv1"));
        Assert.True(y0.allclose(Out(m, x)));
        Assert.Equal(["0"], ((ZooSequential)m.Get("layer4")).ChildNames);
        Assert.DoesNotContain(m.named_modules(), n => n.name.EndsWith("bad", StringComparison.Ordinal));
    }

    [Fact]
    public void FreezeExceptHeadAndGlobsAndUnfreeze()
    {
        using var scope = NewDisposeScope();
        var m = Tiny();
        m.Freeze(except: "fc");
        Assert.All(m.named_parameters(), p => Assert.Equal(p.name.StartsWith("fc.", StringComparison.Ordinal), p.parameter.requires_grad));
        Assert.Equal(512 * 10 + 10, m.CountParameters(trainableOnly: true));
        m.Unfreeze("layer4.*.conv?");
        Assert.True(m.named_parameters().Single(p => p.name == "layer4.0.conv2.weight").parameter.requires_grad);
        Assert.False(m.named_parameters().Single(p => p.name == "layer4.0.bn2.weight").parameter.requires_grad);
        Assert.False(m.named_parameters().Single(p => p.name == "layer3.0.conv2.weight").parameter.requires_grad);
        m.Unfreeze();
        Assert.All(m.parameters(), p => Assert.True(p.requires_grad));
        m.Freeze(["layer1", "layer2.0.bn*"]);
        Assert.False(m.named_parameters().Single(p => p.name == "layer1.0.conv1.weight").parameter.requires_grad);
        Assert.False(m.named_parameters().Single(p => p.name == "layer2.0.bn1.bias").parameter.requires_grad);
        Assert.True(m.named_parameters().Single(p => p.name == "layer2.0.conv1.weight").parameter.requires_grad);
    }

    [Theory]
    [InlineData(BatchNormPolicy.FreezeStats, false)]
    [InlineData(BatchNormPolicy.TrainStats, true)]
    public void FrozenBatchNormFollowsThePolicyInTrainMode(BatchNormPolicy policy, bool statsMove)
    {
        using var scope = NewDisposeScope();
        var m = Tiny();
        m.Freeze(except: "fc", batchNorm: policy);
        m.train();
        var bn = (BatchNorm2d)m.Get("bn1");
        var before = bn.running_mean!.clone();
        using (no_grad()) m.call(randn(4, 3, 64, 64) + 3);
        Assert.Equal(statsMove, !before.allclose(bn.running_mean!));
        Assert.Equal(!statsMove, !bn.training);
        Assert.True(m.Get("fc").training);
    }

    [Fact]
    public void SummaryShowsShapesAndCounts()
    {
        using var scope = NewDisposeScope();
        var m = Tiny();
        m.Freeze(except: "fc");
        string s = m.Summary([1, 3, 64, 96]);
        Assert.Contains("→ [1, 10]", s, StringComparison.Ordinal);
        Assert.Contains("[1, 512, 2, 3]", s, StringComparison.Ordinal);
        Assert.Contains("layer4.0.conv1", s, StringComparison.Ordinal);
        Assert.Contains($"Trainable: {5130:N0}", s, StringComparison.Ordinal);
    }

    [Fact]
    public void ReplaceHeadSetsClassesOrGivesFeatures()
    {
        using var scope = NewDisposeScope();
        var m = Tiny(classes: 1000);
        var x = randn(2, 3, 64, 64);
        m.ReplaceHead(10);
        Assert.Equal([2, 10], Out(m, x).shape);
        Assert.Equal(10, m.NumClasses);
        m.ReplaceHead(0);
        Assert.Equal([2, m.NumFeatures], Out(m, x).shape);
        Assert.DoesNotContain(m.state_dict().Keys, k => k.StartsWith("fc.", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    public void OtherInputChannelCountsBuildAndRun(int inChans)
    {
        using var scope = NewDisposeScope();
        var m = (ZooModel)global::ModelZoo.Zoo.Create("resnet18", new ModelOptions(NumClasses: 5, InChans: inChans));
        m.eval();
        Assert.Equal([inChans], [((Conv2d)m.Get("conv1")).weight!.shape[1]]);
        Assert.Equal([2, 5], Out(m, randn(2, inChans, 64, 64)).shape);
    }
}
