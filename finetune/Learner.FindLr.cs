using TorchSharp;
using static TorchSharp.torch;

namespace ModelZoo.FineTune;

// The LR range test (fastai's lr_find).
public sealed partial class Learner
{
    /// <summary>
    /// LR range test (fastai's <c>lr_find</c>): trains for up to <paramref name="numIterations"/> batches with the rate
    /// rising exponentially from <paramref name="startLr"/> to <paramref name="endLr"/>, records the smoothed loss, stops
    /// when it exceeds 4× the best (or is not finite), then restores the weights and RNG state.
    /// </summary>
    public LrFinderResult FindLr(double startLr = 1e-7, double endLr = 10, int numIterations = 100, bool stopOnDivergence = true)
    {
        if (_inFit) throw new InvalidOperationException("FindLr cannot run inside a fit.");
        ArgumentOutOfRangeException.ThrowIfLessThan(numIterations, 2);
        using var restore = new ModelStateGuard(Model);
        using var opt = TrainOptimizer.Create(Model, Model.ParameterGroups(), _options.Optimizer);
        var peaks = Enumerable.Repeat(1.0, opt.ModelGroupCount).ToArray();
        var lrs = new List<double>();
        var smooth = new List<double>();
        var raws = new List<double>();
        double avg = 0, best = double.PositiveInfinity;
        bool diverged = false;
        Model.train();
        int it = 0;
        for (int epoch = 0; it < numIterations && !diverged; epoch++)
        {
            int before = it;
            foreach (var raw in TrainSource(epoch))
            {
                using var scope = NewDisposeScope();
                var b = raw.To(Device);
                try
                {
                    if (it >= numIterations || diverged) continue;
                    double lr = startLr * Math.Pow(endLr / startLr, it / (double)(numIterations - 1));
                    opt.SetLr(peaks, lr);
                    var loss = LossFunction.Mean(TrainForward(b.Input), b.Target);
                    double lv = loss.to(ScalarType.Float64).item<double>();
                    if (double.IsFinite(lv))
                    {
                        loss.backward();
                        opt.Step();
                    }
                    opt.ZeroGrad();
                    avg = 0.98 * avg + 0.02 * lv;
                    double s = avg / (1 - Math.Pow(0.98, it + 1));
                    lrs.Add(lr);
                    raws.Add(lv);
                    smooth.Add(s);
                    it++;
                    if (double.IsFinite(s)) best = Math.Min(best, s);
                    if (!double.IsFinite(s) || (stopOnDivergence && s > 4 * best)) diverged = true;
                }
                finally
                {
                    if (!ReferenceEquals(b, raw)) b.Dispose();
                    raw.Dispose();
                }
            }
            if (it == before) throw new InvalidOperationException("The training loader yielded no batches.");
        }
        return LrFinderResult.From(lrs, smooth, raws, diverged);
    }
}
