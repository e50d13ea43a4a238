using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelZoo.Tests.Zoo;

/// <summary>The race-free training forward of batch norm equals TorchSharp's own, state included.</summary>
public class BatchNormTrainingTests
{
    [Fact]
    public void TrainingForwardEqualsTorchSharpsOutputRunningStatisticsAndCount()
    {
        using var scope = NewDisposeScope();
        manual_seed(11);
        var ours = nn.BatchNorm2d(6);
        var theirs = nn.BatchNorm2d(6);
        using (no_grad())
        {
            ours.weight!.uniform_(0.5, 1.5);
            ours.bias!.uniform_(-0.5, 0.5);
            theirs.weight!.copy_(ours.weight);
            theirs.bias!.copy_(ours.bias);
        }
        ours.train();
        theirs.train();
        for (int step = 0; step < 3; step++)
        {
            var x = randn(4, 6, 5, 5).mul(2).add(1).requires_grad_();
            Assert.True(BatchNormTraining.Applies(ours));
            var a = BatchNormTraining.Forward(ours, x);
            var b = theirs.call(x);
            Assert.True(a.allclose(b, rtol: 1e-6, atol: 1e-6));
            var ga = autograd.grad([a.square().sum()], [x])[0];
            var gb = autograd.grad([b.square().sum()], [x])[0];
            Assert.True(ga.allclose(gb, rtol: 1e-5, atol: 1e-5));
        }
        Assert.True(ours.running_mean!.allclose(theirs.running_mean!));
        Assert.True(ours.running_var!.allclose(theirs.running_var!));
        Assert.Equal(3L, ours.num_batches_tracked!.item<long>());
        Assert.Equal(theirs.num_batches_tracked!.item<long>(), ours.num_batches_tracked!.item<long>());
    }

    [Fact]
    public void EvalModeNoGradAndCumulativeMomentumAreLeftToTorchSharp()
    {
        using var scope = NewDisposeScope();
        var bn = nn.BatchNorm2d(3);
        bn.eval();
        Assert.False(BatchNormTraining.Applies(bn));
        bn.train();
        using (no_grad()) Assert.False(BatchNormTraining.Applies(bn));
        var cumulative = nn.BatchNorm2d(3);
        cumulative.momentum = null;
        cumulative.train();
        Assert.False(BatchNormTraining.Applies(cumulative));
        Assert.False(BatchNormTraining.Applies(nn.ReLU()));
    }
}
